// Quantize throughput over 2^24 floats, single thread, against memcpy of the same buffer in the
// same run. Prints GB/s of input and the ratio to memcpy (median of repeated runs) per format.
//
//   cmake --preset bench && cmake --build --preset bench --target bench_quantize
//   ./build/bench/bench/bench_quantize [repeats]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qnas/formats.hpp"

namespace {

constexpr std::size_t n = std::size_t{1} << 24;

template <class Fn>
double median_seconds(int repeats, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

volatile float sink;

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 15;
  std::vector<float> in(n), out(n);
  std::mt19937 engine(1);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (auto& v : in) v = normal(engine);
  std::fill(out.begin(), out.end(), 1.0f);  // fault the pages in
  const std::size_t shape[] = {n / 1024, 1024};

  const double t_memcpy = median_seconds(repeats, [&] {
    std::memcpy(out.data(), in.data(), n * sizeof(float));
    sink = out[12345];
  });
  const double gbs = [](double t) { return static_cast<double>(n * sizeof(float)) / t / 1e9; }(t_memcpy);
  std::printf("%-28s %10s %10s %8s\n", "format", "ms", "GB/s in", "x memcpy");
  std::printf("%-28s %10.2f %10.2f %8.2f\n", "memcpy", t_memcpy * 1e3, gbs, 1.0);

  auto run = [&]<class F>(std::type_identity<F>, double target) {
    const double t = median_seconds(repeats, [&] {
      qnas::quantize_into<F>(in, out, shape);
      sink = out[12345];
    });
    const double ratio = t_memcpy / t;
    std::printf("%-28s %10.2f %10.2f %8.2f  %s (target >= %.2f)\n", F::name().c_str(), t * 1e3,
                static_cast<double>(n * sizeof(float)) / t / 1e9, ratio, ratio >= target ? "ok" : "BELOW", target);
    return ratio >= target;
  };
  bool ok = true;
  // the list first: fixed_point, po2, ternary (>= 0.25x), bfp<4,16> (>= 0.15x), and the MX
  // formats (>= 0.30x, issue #20 item 4)
  ok &= run(std::type_identity<qnas::fixed_point<8, 0>>{}, 0.25);
  ok &= run(std::type_identity<qnas::po2<4>>{}, 0.25);
  ok &= run(std::type_identity<qnas::ternary<>>{}, 0.25);
  ok &= run(std::type_identity<qnas::msfp12>{}, 0.15);
  ok &= run(std::type_identity<qnas::mxfp8_e4m3>{}, 0.30);
  ok &= run(std::type_identity<qnas::mxint8>{}, 0.30);
  // further formats, same targets by kind
  ok &= run(std::type_identity<qnas::fixed_relu<4, 0>>{}, 0.25);
  ok &= run(std::type_identity<qnas::fixed_point<8, 0, true, false, qnas::toward_zero>>{}, 0.25);
  ok &= run(std::type_identity<qnas::fp8_e4m3>{}, 0.25);
  ok &= run(std::type_identity<qnas::bf16>{}, 0.25);
  ok &= run(std::type_identity<qnas::fp4_e2m1>{}, 0.25);
  ok &= run(std::type_identity<qnas::mxfp4>{}, 0.30);
  ok &= run(std::type_identity<qnas::mxfp8_e5m2>{}, 0.30);
  ok &= run(std::type_identity<qnas::mxfp6_e3m2>{}, 0.30);
  ok &= run(std::type_identity<qnas::mxfp6_e2m3>{}, 0.30);
  ok &= run(std::type_identity<qnas::binary<>>{}, 0.25);
  ok &= run(std::type_identity<qnas::msfp16>{}, 0.15);
  // block formats with outliers and with a codebook (issue #20 item 4)
  ok &= run(std::type_identity<qnas::bfp_outlier<4, 16, 1, 4>>{}, 0.25);
  ok &= run(std::type_identity<qnas::bfp_nonuniform<4, 16>>{}, 0.15);

  // Scales that follow the data (formats/scaled.hpp), against the fixed-scale fixed_point of the
  // same bits in the same run: at most 2x its time per tensor, 2.5x per channel (issue #18).
  // The shape is [16384, 1024]: per channel means 1024 scales over 16384 rows each.
  auto time_of = [&]<class F>(std::type_identity<F>) {
    return median_seconds(repeats, [&] {
      qnas::quantize_into<F>(in, out, shape);
      sink = out[12345];
    });
  };
  auto versus = [&]<class F, class Fixed>(std::type_identity<F>, std::type_identity<Fixed>, double limit) {
    const double t_fixed = time_of(std::type_identity<Fixed>{});
    const double t = time_of(std::type_identity<F>{});
    const double cost = t / t_fixed;
    std::printf("%-58s %10.2f %10.2f %8.2f  %.2fx %s (%s %.2f ms", F::name().c_str(), t * 1e3,
                static_cast<double>(n * sizeof(float)) / t / 1e9, t_memcpy / t, cost,
                limit <= 0 ? "-" : cost <= limit ? "ok" : "ABOVE", Fixed::name().c_str(), t_fixed * 1e3);
    if (limit > 0)
      std::printf("; target <= %.1fx)\n", limit);
    else
      std::printf("; no target)\n");
    return limit <= 0 || cost <= limit;
  };
  using fx4 = qnas::fixed_point<4, 0, true, true>;
  using fx8 = qnas::fixed_point<8, 0, true, true>;
  using qnas::alpha_auto;
  using qnas::alpha_auto_po2;
  using qnas::per_tensor;
  std::printf("%-58s %10s %10s %8s  %s\n", "scaled format", "ms", "GB/s in", "x memcpy", "x fixed-scale");
  ok &= versus(std::type_identity<qnas::scaled<fx4, alpha_auto_po2<>, per_tensor>>{}, std::type_identity<fx4>{}, 2.0);
  ok &= versus(std::type_identity<qnas::scaled<fx4, alpha_auto_po2<>>>{}, std::type_identity<fx4>{}, 2.5);
  ok &= versus(std::type_identity<qnas::scaled<fx8, alpha_auto_po2<>, per_tensor>>{}, std::type_identity<fx8>{}, 2.0);
  ok &= versus(std::type_identity<qnas::scaled<fx8, alpha_auto_po2<>>>{}, std::type_identity<fx8>{}, 2.5);
  ok &= versus(std::type_identity<qnas::scaled<fx4, alpha_auto, per_tensor>>{}, std::type_identity<fx4>{}, 2.0);
  ok &= versus(std::type_identity<qnas::scaled<fx4, alpha_auto>>{}, std::type_identity<fx4>{}, 2.5);
  // not in the acceptance (no target): ternary and binary against their fixed alpha
  ok &= versus(std::type_identity<qnas::scaled<qnas::ternary<>, alpha_auto_po2<>>>{},
               std::type_identity<qnas::ternary<>>{}, 0.0);
  ok &= versus(std::type_identity<qnas::scaled<qnas::binary<>, alpha_auto>>{}, std::type_identity<qnas::binary<>>{}, 0.0);
  return ok ? 0 : 1;
}
