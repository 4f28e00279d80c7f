// Per-layer pricing under horowitz_45nm, memory kinds, impossible layers, the size metric,
// the forgiving factor and the roofline latency model (hand-derived values).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>

#include "qnas/energy.hpp"
#include "qnas/formats/fixed_point.hpp"

using namespace qnas;
namespace en = qnas::energy;

namespace {
constexpr format_info i8 = info_of<int8>();
constexpr format_info i4 = info_of<int4>();
constexpr format_info u8 = info_of<fixed_relu<8, 8>>();
constexpr format_info i16 = info_of<fixed_point<16, 15>>();

constexpr en::energy_options sram_opts{en::memory_kind::sram, en::memory_kind::sram, 0.0, false};

// dense 1024 -> 10, int8 everywhere, derived accumulator: 16 + ceil(log2(1024 + 1)) = 27 bits.
constexpr en::layer_desc fc = en::dense("fc", {1, 1, 1024}, 10).with_formats(i8, i8, i8, i16);
constexpr en::layer_energy fc_e = en::price_layer<en::horowitz_45nm>(fc, sram_opts);
static_assert(fc_e.accumulator_bits == 27 && fc_e.macs == 10240);
// op = 10240 * (0.2 + 27 * 0.003125) + 10 bias adds * 27 * 0.003125 = 2912.84375 pJ
static_assert(fc_e.op > 2912.84375 - 1e-9 && fc_e.op < 2912.84375 + 1e-9);
// qtools_compat charges no bias add: 10240 * (0.2 + 0.084375) = 2912 (+2.5e-7 from its decimals).
static_assert(en::price_layer<en::qtools_compat>(fc, sram_opts).op > 2912.0 - 1e-6 &&
              en::price_layer<en::qtools_compat>(fc, sram_opts).op < 2912.0 + 1e-6);
}  // namespace

TEST_CASE("horowitz_45nm memory: 64-bit words at the size-dependent SRAM price") {
  // 8192 input bits: 128 words from a 1 KB array: 10 pJ * sqrt(1 KB / 8 KB) each.
  CHECK(fc_e.inputs == doctest::Approx(128 * 10.0 * std::sqrt(1.0 / 8.0)).epsilon(1e-12));
  // 81,920 weight bits (1280 words, 10 KB array) + 80 bias bits (2 words, 80-bit array).
  const double w = 1280 * en::horowitz_45nm::sram_access_pj(81920) + 2 * en::horowitz_45nm::sram_access_pj(80);
  CHECK(fc_e.parameters == doctest::Approx(w).epsilon(1e-12));
  CHECK(en::horowitz_45nm::sram_access_pj(81920) == doctest::Approx(10.0 * std::pow(1.25, 0.5)).epsilon(1e-12));
}

TEST_CASE("memory kinds and rd_wr_on_io follow qtools") {
  using T = en::qtools_compat;
  en::energy_options o;
  o.min_sram_size = 1 << 20;
  o.rd_wr_on_io = true;
  const double bits = 6400;  // 100 words
  const double sram = 100 * T::sram_access_pj(1 << 20);
  CHECK(en::read_pj<T>(bits, en::memory_kind::sram, false, o) == doctest::Approx(sram));
  CHECK(en::read_pj<T>(bits, en::memory_kind::dram, false, o) == doctest::Approx(bits * 20.3125 + sram));
  CHECK(en::read_pj<T>(bits, en::memory_kind::fixed, false, o) == 0.0);
  CHECK(en::read_pj<T>(bits, en::memory_kind::fixed, true, o) == doctest::Approx(bits * 20.3125 + sram));  // model input
  o.rd_wr_on_io = false;
  CHECK(en::read_pj<T>(bits, en::memory_kind::dram, false, o) == doctest::Approx(bits * 20.3125));
  CHECK(en::write_pj<T>(bits, en::memory_kind::dram, true, o) == doctest::Approx(sram));  // model output -> sram
}

TEST_CASE("qtools quirks: depthwise accumulator and bias, average pooling, max pooling") {
  const auto dw = en::depthwise_conv2d("dw", {8, 8, 4}, 3).with_formats(i8, i8, i8, i16);
  CHECK(dw.macs() == 8 * 8 * 4 * 9);
  // qnas: fan-in 9 (+ bias) -> 16 + 4; qtools: kh*kw*channels = 36 (+ bias) -> 16 + 6.
  CHECK(en::price_layer<en::horowitz_45nm>(dw, sram_opts).accumulator_bits == 20);
  CHECK(en::price_layer<en::qtools_compat>(dw, sram_opts).accumulator_bits == 22);
  const auto ap = en::pool("ap", en::layer_kind::avg_pool, {8, 8, 4}, 2, 2).with_formats(i8, i8);
  // 8-bit input + ceil(log2 4) = 10-bit adds; qnas: 4x4x4 outputs x 4; qtools: 4 channels x 4.
  CHECK(en::price_layer<en::horowitz_45nm>(ap, sram_opts).op == doctest::Approx(256 * 10 * 0.003125));
  CHECK(en::price_layer<en::qtools_compat>(ap, sram_opts).op == doctest::Approx(16 * 10 * 0.003125));
  const auto mp = en::pool("mp", en::layer_kind::max_pool, {8, 8, 4}, 2, 2).with_formats(i8, i8);
  CHECK(en::price_layer<en::horowitz_45nm>(mp, sram_opts).op == doctest::Approx(64 * 3 * 8 * 0.003125));
  CHECK(en::price_layer<en::qtools_compat>(mp, sram_opts).op == 0.0);
  const auto sum = en::add("sum", {4, 4, 8}).with_formats(i8, i16);
  CHECK(en::price_layer<en::qtools_compat>(sum, sram_opts).op == doctest::Approx(128 * 9 * 0.003125));
}

TEST_CASE("impossible layer descriptions throw qnas::invalid_argument with where and what") {
  auto bad = en::conv2d("c0", {8, 8, 3}, 4, 3);
  bad.kernel_h = 0;
  try {
    en::validate(bad);
    FAIL("no exception");
  } catch (const qnas::invalid_argument& e) {
    CHECK(e.where().find("c0") != std::string::npos);
    CHECK(std::string(e.what()).find("zero fan-in") != std::string::npos);
  }
  auto mism = en::conv2d("c1", {8, 8, 3}, 4, 3, 2);
  mism.out.h = 5;  // same padding, stride 2: 4
  CHECK_THROWS_WITH_AS(en::price_layer<en::horowitz_45nm>(mism), doctest::Contains("mismatched shapes"),
                       qnas::invalid_argument);
  auto empty = en::dense("d", {1, 1, 0}, 10);
  CHECK_THROWS_WITH_AS(en::validate(empty), doctest::Contains("empty tensor"), qnas::invalid_argument);
  auto relu = en::activation("r", {2, 2, 2});
  relu.out.c = 3;
  CHECK_THROWS_WITH_AS(en::validate(relu), doctest::Contains("mismatched shapes"), qnas::invalid_argument);
  auto fmt = en::dense("d2", {1, 1, 4}, 2).with_formats(i8, i8, i8, i8);
  fmt.weights.block_size = 0;
  CHECK_THROWS_WITH_AS(en::validate(fmt), doctest::Contains("weight format"), qnas::invalid_argument);
  auto one = en::add("a", {2, 2, 2}, 1);
  CHECK_THROWS_WITH_AS(en::validate(one), doctest::Contains("inputs >= 2"), qnas::invalid_argument);
}

TEST_CASE("a grouped conv2d reads in.c / groups channels per output") {
  constexpr auto full = en::conv2d("c", en::image(7, 7, 8), 16, 3, 1, en::padding::same, false);
  constexpr auto grouped = en::conv2d("g", en::image(7, 7, 8), 16, 3, 1, en::padding::same, false, 4);
  static_assert(full.fan_in() == 3 * 3 * 8 && grouped.fan_in() == 3 * 3 * 2);
  static_assert(grouped.macs() == 7 * 7 * 16 * 3 * 3 * 2 && grouped.macs() * 4 == full.macs());
  static_assert(grouped.weight_count() == 3 * 3 * 2 * 16);
  const auto e_full = en::price_layer<en::horowitz_45nm>(full.with_formats(i8, i8, i8, i8));
  const auto e_grouped = en::price_layer<en::horowitz_45nm>(grouped.with_formats(i8, i8, i8, i8));
  CHECK(e_grouped.op < e_full.op);
  CHECK(e_grouped.parameters < e_full.parameters);
  auto bad = grouped;
  bad.groups = 3;  // divides neither 8 nor 16
  CHECK_THROWS_WITH_AS(en::validate(bad), doctest::Contains("groups = 3 must be >= 1 and divide"), qnas::invalid_argument);
  bad.groups = 0;
  CHECK_THROWS_WITH_AS(en::validate(bad), doctest::Contains("groups = 0"), qnas::invalid_argument);
}

TEST_CASE("size metric: parameter and activation bits") {
  constexpr std::array<en::layer_desc, 3> net{
      en::conv2d("c", {8, 8, 1}, 4, 3).with_formats(i4, i8, i8, i16),
      en::activation("r", {8, 8, 4}).with_formats(i16, u8),
      en::dense("d", {8, 8, 4}, 10).with_formats(i8, i8, u8, i16),
  };
  constexpr en::model_size s = en::size_bits(net);
  // params: 36 x 4 + 4 x 8 + 2560 x 8 + 10 x 8; activations: input 64 x 8 + relu 256 x 8.
  static_assert(s.parameter_bits == 144 + 32 + 20480 + 80);
  static_assert(s.activation_bits == 512 + 2048);
  CHECK(s.total() == 23296);
  // A block format pays its shared scale once per block: 64 elements of 8 bits, 16 per block, 8-bit scale.
  const format_info bfp{"bfp", format_family::block_fp, {1, 0, 7}, 8, 16, 8, 1e38, -1e38, true};
  CHECK(en::tensor_bits(64, bfp) == 64 * 8 + 4 * 8);
}

TEST_CASE("forgiving factor: delta and score") {
  constexpr en::forgiving_factor ff{8.0, 8.0, 2.0, 1.0};
  static_assert(ff.delta(100, 50) > 0.08 - 1e-12 && ff.delta(100, 50) < 0.08 + 1e-12);  // one rate-fold
  CHECK(ff.delta(100, 200) == doctest::Approx(-0.08));
  CHECK(ff.score(0.9, 100, 50) == doctest::Approx(0.972));
  const en::forgiving_factor asym{8.0, 2.0, 4.0, 1.0};
  CHECK(asym.delta(100, 25) == doctest::Approx(0.08));   // 4-fold reduction, delta_p
  CHECK(asym.delta(100, 400) == doctest::Approx(-0.02)); // 4-fold increase, delta_n
  const en::forgiving_factor stressed{8.0, 8.0, 2.0, 0.5};
  CHECK(stressed.delta(100, 50) == doctest::Approx(0.0).epsilon(1e-12));  // reference scaled to 50
  CHECK_THROWS_AS((void)ff.delta(100, 0), qnas::invalid_argument);
  const en::forgiving_factor flat{8, 8, 1.0, 1};
  CHECK_THROWS_AS((void)flat.delta(1, 1), qnas::invalid_argument);
}

TEST_CASE("roofline latency: compute- and memory-bound layers") {
  en::accelerator a;  // 16x16 PEs, 8-bit native, widths 1/2/4/8, 128 DRAM bits/cycle, 1 MiB buffer
  // dense 1024 -> 10 int8: compute 10240 / 256 = 40 cycles; weights 81,920 + 80 bias bits
  // over 128 bits/cycle = 641 cycles: memory bound.
  constexpr en::layer_desc d8 = en::dense("d", {1, 1, 1024}, 10).with_formats(i8, i8, i8, i16);
  constexpr en::layer_latency l8 = en::layer_cycles(d8, en::accelerator{});
  static_assert(l8.compute_cycles == 40 && l8.memory_cycles == 641 && l8.cycles == 641 && !l8.compute_bound());
  // int4 weights and inputs pack 2 MACs per PE: 20 cycles; 40,960 + 80 bits -> 321 cycles.
  const auto d4 = d8.with_formats(i4, i8, i4, i16);
  const en::layer_latency l4 = en::layer_cycles(d4, a);
  CHECK(l4.exec_bits == 4);
  CHECK(l4.compute_cycles == 20);
  CHECK(l4.memory_cycles == 321);
  // The model input (8192 bits) and output (160 bits) cross DRAM too: 90,352 bits -> 706 cycles.
  const std::array<en::layer_desc, 1> one{d8};
  CHECK(en::model_cycles(one, a).cycles == 706);
  CHECK(en::model_cycles(one, a).seconds == doctest::Approx(706e-9));
  // A conv: 32x32x16 -> 32x32x32, 3x3: 4,718,592 MACs / 256 = 18,432 cycles, compute bound.
  const auto c = en::conv2d("c", {32, 32, 16}, 32, 3).with_formats(i8, i8, i8, i8);
  const en::layer_latency lc = en::layer_cycles(c, a);
  CHECK(lc.compute_cycles == 18432);
  CHECK(lc.compute_bound());
  // Unsupported precision: 16-bit operands on an 8-bit array are flagged (and bit-sliced: 4 passes).
  const auto w16 = c.with_formats(i16, i8, i8, i8);
  CHECK_FALSE(en::layer_cycles(w16, a).supported);
  CHECK(en::layer_cycles(w16, a).compute_cycles == 4 * 18432);
  // A bigger array halves compute time.
  en::accelerator big = a;
  big.pe_cols = 32;
  CHECK(en::layer_cycles(c, big).compute_cycles == 9216);
  en::accelerator broken = a;
  broken.pe_rows = 0;
  CHECK_THROWS_AS(en::layer_cycles(c, broken), qnas::invalid_argument);
}
