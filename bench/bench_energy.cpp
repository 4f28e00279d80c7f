// Run-time pricing of a search candidate: a 10-layer model whose formats are chosen at run
// time (from a pool of format_info values, as a search strategy's ask() would), priced by the
// same constexpr functions a static_assert uses. Target: < 2 us per candidate.
//
// Prints the median over repeats of the mean time per candidate (batches of distinct
// candidates, so nothing is hoisted out of the loop), for horowitz_45nm and qtools_compat,
// plus the size metric and the roofline latency for comparison.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "qnas/energy.hpp"
#include "qnas/formats/fixed_point.hpp"

namespace en = qnas::energy;
using qnas::format_info;

namespace {
std::array<en::layer_desc, 10> base_model() {
  return {en::conv2d("c1", {32, 32, 3}, 32, 3),        en::activation("r1", {32, 32, 32}),
          en::conv2d("c2", {32, 32, 32}, 32, 3, 2),    en::activation("r2", {16, 16, 32}),
          en::depthwise_conv2d("dw", {16, 16, 32}, 3), en::conv2d("pw", {16, 16, 32}, 64, 1),
          en::activation("r3", {16, 16, 64}),          en::pool("p", en::layer_kind::avg_pool, {16, 16, 64}, 2, 2),
          en::flatten("f", {8, 8, 64}),                en::dense("d", {1, 1, 4096}, 10)};
}

template <class F>
double median_ns_per_call(F&& f, int calls_per_repeat, int repeats) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::nano>(b - a).count() / calls_per_repeat);
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}
}  // namespace

int main() {
  const format_info f32 = qnas::float32_info;
  const std::array<format_info, 8> pool{
      qnas::info_of<qnas::int8>(),
      qnas::info_of<qnas::int4>(),
      qnas::info_of<qnas::fixed_relu<8, 8>>(),
      qnas::info_of<qnas::fixed_point<2, 1>>(),
      format_info{"ternary", qnas::format_family::ternary, {1, 0, 1}, 2, 1, 0, 1.0, -1.0, true},
      format_info{"po2", qnas::format_family::po2, {1, 3, 0}, 4, 1, 0, 8.0, -8.0, true},
      format_info{"bfp", qnas::format_family::block_fp, {1, 0, 7}, 8, 16, 8, 1e38, -1e38, true},
      f32};
  constexpr int n_candidates = 1024;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(pool.size()) - 1);
  std::vector<std::array<en::layer_desc, 10>> candidates(n_candidates, base_model());
  for (auto& c : candidates)
    for (auto& l : c) {
      const format_info& x = pool[pick(rng)];
      l = l.has_weights() ? l.with_formats(pool[pick(rng)], qnas::info_of<qnas::int8>(), x, pool[pick(rng)])
                          : l.with_formats(x, pool[pick(rng)]);
    }
  const en::energy_options opts{en::memory_kind::sram, en::memory_kind::dram, 1 << 20, true};
  volatile double sink = 0;

  const double h = median_ns_per_call(
      [&] {
        double s = 0;
        for (const auto& c : candidates) s += en::price_model<en::horowitz_45nm>(c, opts).total_pj;
        sink = s;
      },
      n_candidates, 201);
  const double q = median_ns_per_call(
      [&] {
        double s = 0;
        for (const auto& c : candidates) s += en::price_model<en::qtools_compat>(c, opts).total_pj;
        sink = s;
      },
      n_candidates, 201);
  const double z = median_ns_per_call(
      [&] {
        double s = 0;
        for (const auto& c : candidates) s += en::size_bits(c).total();
        sink = s;
      },
      n_candidates, 201);
  const en::accelerator acc{};
  const double l = median_ns_per_call(
      [&] {
        long long s = 0;
        for (const auto& c : candidates) s += en::model_cycles(c, acc).cycles;
        sink = static_cast<double>(s);
      },
      n_candidates, 201);
  std::printf("10-layer model, formats chosen at run time, median of 201 repeats x %d candidates\n", n_candidates);
  std::printf("  price_model<horowitz_45nm>  %8.1f ns per candidate  (target < 2000 ns: %s)\n", h,
              h < 2000 ? "met" : "MISSED");
  std::printf("  price_model<qtools_compat>  %8.1f ns per candidate  (target < 2000 ns: %s)\n", q,
              q < 2000 ? "met" : "MISSED");
  std::printf("  size_bits                   %8.1f ns per candidate\n", z);
  std::printf("  model_cycles (roofline)     %8.1f ns per candidate\n", l);
  std::printf("  horowitz / qtools ratio     %8.2f\n", h / q);
  (void)sink;
  return (h < 2000 && q < 2000) ? 0 : 1;
}
