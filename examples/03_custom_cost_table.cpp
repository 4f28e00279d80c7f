// A user-supplied cost table: price a network under your own process node by writing a type
// that satisfies qnas::energy::cost_table, then use it exactly like the built-in tables.
//
// The table below derives a 7 nm-class estimate from horowitz_45nm with explicit scaling
// factors (logic energy x0.35, SRAM x0.5 because wire energy scales worse than gates, and
// HBM-class DRAM at 4 pJ/bit). The factors are this example's stated assumptions, not a
// published table: replace them with your library's characterisation.
//
// Claim checked (exit code 1 if it fails): under SRAM-only placement the 7 nm op energy is
// exactly 0.35x and the memory energy exactly 0.5x the 45 nm figures, layer by layer, so the
// network total lies between the two ratios; the same table prices the network in a
// static_assert and at run time.
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "qnas/energy.hpp"
#include "qnas/formats/fixed_point.hpp"

#include "search_cli.hpp"

namespace en = qnas::energy;

struct example_7nm {
  static constexpr std::string_view name = "example_7nm";
  static constexpr double logic_scale = 0.35, sram_scale = 0.5;
  static constexpr double add_pj(double bits) { return logic_scale * en::horowitz_45nm::add_pj(bits); }
  static constexpr double mul_pj(double bits) { return logic_scale * en::horowitz_45nm::mul_pj(bits); }
  static constexpr double float_add_pj(int bits) { return logic_scale * en::horowitz_45nm::float_add_pj(bits); }
  static constexpr double float_mul_pj(int bits) { return logic_scale * en::horowitz_45nm::float_mul_pj(bits); }
  static constexpr int sram_word_bits = 64;
  static constexpr double sram_access_pj(double array_bits) {
    return sram_scale * en::horowitz_45nm::sram_access_pj(array_bits);
  }
  static constexpr double dram_pj_per_bit = 4.0;
};
static_assert(en::cost_table<example_7nm>);

constexpr qnas::format_info i8 = qnas::info_of<qnas::int8>();
constexpr qnas::format_info i4 = qnas::info_of<qnas::int4>();
constexpr qnas::format_info u8 = qnas::info_of<qnas::fixed_relu<8, 8>>();
constexpr qnas::format_info i16 = qnas::info_of<qnas::fixed_point<16, 15>>();

constexpr std::array<en::layer_desc, 8> net{
    en::conv2d("conv1", {28, 28, 1}, 16, 3, 2).with_formats(i8, i8, i8, i16),
    en::activation("relu1", {14, 14, 16}).with_formats(i16, u8),
    en::conv2d("conv2", {14, 14, 16}, 32, 3, 2).with_formats(i4, i8, u8, i16),
    en::activation("relu2", {7, 7, 32}).with_formats(i16, u8),
    en::conv2d("conv3", {7, 7, 32}, 64, 3, 2).with_formats(i4, i8, u8, i16),
    en::activation("relu3", {4, 4, 64}).with_formats(i16, u8),
    en::flatten("flatten", {4, 4, 64}).with_formats(u8, u8),
    en::dense("dense", {1, 1, 1024}, 10).with_formats(i8, i8, u8, i16),
};
constexpr en::energy_options opts{en::memory_kind::sram, en::memory_kind::sram, 1 << 20, false};

// Compile time: the custom table prices the fixed network in a constant expression.
constexpr en::model_energy at_7nm = en::price_model<example_7nm>(net, opts);
constexpr en::model_energy at_45nm = en::price_model<en::horowitz_45nm>(net, opts);
static_assert(at_7nm.total_pj < at_45nm.total_pj);

namespace {

int run() {
  bool ok = true;
  const auto r7 = en::estimate<example_7nm>(net, opts);
  const auto r45 = en::estimate<en::horowitz_45nm>(net, opts);
  std::cout << r45 << '\n' << r7 << '\n';
  for (std::size_t i = 0; i < net.size(); ++i) {
    const auto& a = r7.energies[i];
    const auto& b = r45.energies[i];
    auto same_ratio = [](double x, double y, double k) { return y == 0 ? x == 0 : std::abs(x / y - k) < 1e-12; };
    if (!same_ratio(a.op, b.op, 0.35) || !same_ratio(a.inputs, b.inputs, 0.5) ||
        !same_ratio(a.parameters, b.parameters, 0.5) || !same_ratio(a.outputs, b.outputs, 0.5)) {
      std::printf("FAIL: layer %s does not scale by the table's factors\n", net[i].name);
      ok = false;
    }
  }
  const double ratio = r7.totals.total_pj / r45.totals.total_pj;
  std::printf("7 nm / 45 nm total: %.4f (op share scales 0.35, memory 0.5)\n", ratio);
  if (!(ratio > 0.35 && ratio < 0.5)) ok = false;
  if (r7.totals.total_pj != at_7nm.total_pj) {  // run time equals compile time, bit for bit
    std::printf("FAIL: run-time total %.17g differs from compile-time %.17g\n", r7.totals.total_pj, at_7nm.total_pj);
    ok = false;
  }
  std::puts(ok ? "OK: custom cost table" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("03_custom_cost_table", [&] {
    // No options: anything on the command line is a mistake, not something to ignore.
    qnas::examples::parse_cli(argc, argv, {"03_custom_cost_table", "03_custom_cost_table"}, {});
    return run();
  });
}
