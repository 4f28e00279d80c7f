// Cost tables, operator mapping and accumulator widths: static_assert checks on constexpr
// evaluations (if it builds, it passes) plus run-time checks of the same functions.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "qnas/energy.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"

using namespace qnas;
namespace en = qnas::energy;

namespace {
constexpr bool near(double a, double b, double tol = 1e-9) { return (a > b ? a - b : b - a) <= tol; }

// ---- table values (Horowitz 45 nm: add 0.03/0.1 pJ, mult 0.2/3.1 pJ at 8/32 bits) ----------
static_assert(near(en::horowitz_45nm::add_pj(8), 0.025) && near(en::horowitz_45nm::add_pj(32), 0.1));
static_assert(near(en::horowitz_45nm::mul_pj(8), 0.2) && near(en::horowitz_45nm::mul_pj(32), 3.1));
static_assert(near(en::qtools_compat::add_pj(8), 0.025) && near(en::qtools_compat::add_pj(32), 0.1));
static_assert(near(en::qtools_compat::mul_pj(8), 0.2) && near(en::qtools_compat::mul_pj(32), 3.1));
static_assert(en::horowitz_45nm::float_add_pj(16) == 0.4 && en::horowitz_45nm::float_add_pj(32) == 0.9);
static_assert(en::horowitz_45nm::float_mul_pj(16) == 1.1 && en::horowitz_45nm::float_mul_pj(32) == 3.7);
static_assert(en::horowitz_45nm::float_mul_pj(8) == 1.1);  // fp8 priced as fp16 (documented)
static_assert(en::horowitz_45nm::dram_pj_per_bit == 20.3125 && en::qtools_compat::dram_pj_per_bit == 20.3125);
// SRAM: exact at Horowitz's 8 KB / 32 KB / 1 MB points, square-root law outside.
static_assert(near(en::horowitz_45nm::sram_access_pj(65536), 10.0, 1e-9));
static_assert(near(en::horowitz_45nm::sram_access_pj(262144), 20.0, 1e-9));
static_assert(near(en::horowitz_45nm::sram_access_pj(8388608), 100.0, 1e-8));
static_assert(near(en::horowitz_45nm::sram_access_pj(16384), 5.0, 1e-9));        // 2 KB: 10 / 2
static_assert(near(en::horowitz_45nm::sram_access_pj(4.0 * 8388608), 200.0, 1e-7));  // 4 MB
// qtools' cubic is the per-bit Horowitz energy (10/64, 20/64, 100/64 pJ) to about 1%.
static_assert(near(en::qtools_compat::sram_access_pj(65536), 10.0 / 64, 0.002));
static_assert(near(en::qtools_compat::sram_access_pj(262144), 20.0 / 64, 0.004));
static_assert(near(en::qtools_compat::sram_access_pj(8388608), 100.0 / 64, 0.02));
static_assert(en::qtools_compat::sram_access_pj(0) == 0.0);
static_assert(en::cost_table<en::horowitz_45nm> && en::cost_table<en::qtools_compat>);

// ---- operator kinds for every pair of operand classes ---------------------------------------
constexpr format_info i8 = info_of<int8>();
constexpr format_info u8 = info_of<fixed_relu<8, 8>>();
constexpr format_info i4 = info_of<int4>();
constexpr format_info p4 = info_of<po2<4>>();           // signed, exponents -4..3, max 8
constexpr format_info t2 = info_of<ternary<>>();
constexpr format_info b1 = info_of<binary<>>();
constexpr format_info b01 = info_of<binary01<>>();
constexpr format_info f32 = float32_info;
constexpr format_info f16{"fp16", format_family::floating, {1, 5, 10}, 16, 1, 0, 65504.0, -65504.0, true};
// BFP: 8-bit sign+mantissa elements, 16 per block, 8-bit shared exponent.
constexpr format_info bfp8{"bfp", format_family::block_fp, {1, 0, 7}, 8, 16, 8, 1e38, -1e38, true};
// MX fp8 e4m3: 32 elements per block, E8M0 shared scale.
constexpr format_info mxfp8{"mx", format_family::block_fp, {1, 4, 3}, 8, 32, 8, 448.0 * 1.7e38, -448.0 * 1.7e38, true};
constexpr format_info fixed1u{"fixed_point", format_family::fixed_point, {0, 0, 1}, 1, 1, 0, 1.0, 0.0, true};

constexpr en::op_kind k(const format_info& w, const format_info& x) { return en::select_operator(w, x).kind; }
using ok = en::op_kind;
//            fixed                   po2                     ternary              binary               binary01               float
static_assert(k(i8, i8) == ok::multiplier && k(i8, p4) == ok::shifter && k(i8, t2) == ok::mux && k(i8, b1) == ok::mux && k(i8, b01) == ok::and_gate && k(i8, f32) == ok::float_multiplier);
static_assert(k(p4, i8) == ok::shifter && k(p4, p4) == ok::adder && k(p4, t2) == ok::mux && k(p4, b1) == ok::mux && k(p4, b01) == ok::and_gate && k(p4, f32) == ok::float_multiplier);
static_assert(k(t2, i8) == ok::mux && k(t2, p4) == ok::mux && k(t2, t2) == ok::mux && k(t2, b1) == ok::mux && k(t2, b01) == ok::and_gate && k(t2, f32) == ok::float_multiplier);
static_assert(k(b1, i8) == ok::mux && k(b1, p4) == ok::mux && k(b1, t2) == ok::mux && k(b1, b1) == ok::xor_gate && k(b1, b01) == ok::and_gate && k(b1, f32) == ok::float_multiplier);
static_assert(k(b01, i8) == ok::and_gate && k(b01, p4) == ok::and_gate && k(b01, t2) == ok::and_gate && k(b01, b1) == ok::and_gate && k(b01, b01) == ok::and_gate && k(b01, f32) == ok::float_multiplier);
static_assert(k(f32, i8) == ok::float_multiplier && k(f16, p4) == ok::float_multiplier && k(f32, b01) == ok::float_multiplier);
static_assert(k(bfp8, i8) == ok::multiplier && k(bfp8, bfp8) == ok::multiplier && k(bfp8, t2) == ok::mux &&
              k(mxfp8, mxfp8) == ok::multiplier && k(bfp8, f16) == ok::float_multiplier);
static_assert(k(fixed1u, i8) == ok::and_gate);  // a 1-bit unsigned fixed point is {0, s}

// ---- gate factors, gate bits, product and accumulator widths (qtools rules) ---------------
constexpr en::mac_operator m88 = en::select_operator(i8, i8);
static_assert(m88.gate_factor == 1.0 && m88.gate_bits == 8.0 && m88.product_bits == 16);
static_assert(en::accumulator_bits(m88, 9, true) == 20);      // 16 + ceil(log2(9 + 1))
static_assert(en::accumulator_bits(m88, 9, false) == 20);     // 16 + ceil(log2 9)
static_assert(en::accumulator_bits(m88, 8, false) == 19);     // 16 + 3
static_assert(en::accumulator_bits(m88, 1024, false) == 26);  // 16 + 10
static_assert(en::accumulator_bits(m88, 1024, true) == 27);   // 16 + ceil(log2 1025)
static_assert(near(en::select_operator(i8, i4).gate_bits, en::detail::sqrt(32.0)) &&
              en::select_operator(i8, i4).product_bits == 12);
// po2<4> x po2<4>: adder of max(4,4)+1 = 5 bits; product po2 with max 8*8 = 64 -> fixed
// 1 sign + 8 fraction bits + min(7, log2 64 = 6) integer bits = 15.
static_assert(en::select_operator(p4, p4).gate_bits == 5 && en::select_operator(p4, p4).product_bits == 15);
static_assert(en::accumulator_bits(en::select_operator(p4, p4), 9, true) == 19);
// po2<4> x int8: shifter, product 8 + 3 + 4 = 15; gate bits b*log10(b), b = sqrt(2^4 * 8).
static_assert(en::select_operator(p4, i8).product_bits == 15 && en::select_operator(p4, i8).gate_factor == 1.0);
static_assert(near(en::select_operator(p4, i8).gate_bits, 11.313708498984761 * 1.0536049848239607, 1e-9));
// po2 x unsigned: one more bit for the sign.
static_assert(en::select_operator(p4, u8).product_bits == 16);
// mux: ternary weights select the input (factor 0.6), binary 0.3; unsigned input gains a sign bit.
static_assert(en::select_operator(t2, i8).gate_factor == 0.6 && en::select_operator(t2, i8).gate_bits == 8 &&
              en::select_operator(t2, i8).product_bits == 8);
static_assert(en::select_operator(b1, u8).gate_factor == 0.3 && en::select_operator(b1, u8).product_bits == 9);
static_assert(en::select_operator(i8, t2).gate_factor == 0.6 && en::select_operator(i8, b1).gate_factor == 0.3);
// xor and and gates.
static_assert(en::select_operator(b1, b1).gate_factor == 0.3 && en::select_operator(b1, b1).gate_bits == 1 &&
              en::select_operator(b1, b1).product_bits == 1);
static_assert(en::select_operator(b01, i8).gate_factor == 0.1 && en::select_operator(b01, i8).gate_bits == 8);
static_assert(en::select_operator(t2, b01).product_bits == 2);  // ternary product
// float: the widest float operand, float accumulator of the same width.
static_assert(en::select_operator(f16, i8).product_bits == 16 && en::select_operator(f32, f16).product_bits == 32);
static_assert(en::accumulator_bits(en::select_operator(f32, i8), 1000, true) == 32);
// BFP x int8: 8x8 mantissa multiply + one 8-bit exponent add per 16 MACs.
static_assert(en::select_operator(bfp8, i8).block == 16 && en::select_operator(bfp8, i8).shared_exponent_bits == 8);
static_assert(near(en::multiply_pj<en::horowitz_45nm>(en::select_operator(bfp8, i8)), 0.2 + 0.025 / 16));
// MX fp8 x MX fp8: 5-bit significands (sign + 3 + implicit), 4-bit element-exponent add per
// MAC, 8-bit shared-exponent add per 32 MACs; the product spans 10 + 2 * 15 bits.
constexpr en::mac_operator mx = en::select_operator(mxfp8, mxfp8);
static_assert(mx.gate_bits == 5.0 && mx.element_exponent_bits == 4 && mx.block == 32 && mx.product_bits == 40);
static_assert(near(en::multiply_pj<en::horowitz_45nm>(mx),
                   en::horowitz_45nm::mul_pj(5) + en::horowitz_45nm::add_pj(4) + en::horowitz_45nm::add_pj(8) / 32));
// Pricing by kind: mux = factor x add(gate bits), multiplier = mul(gate bits).
static_assert(near(en::multiply_pj<en::qtools_compat>(en::select_operator(t2, i8)), 0.6 * 0.025));
static_assert(near(en::multiply_pj<en::qtools_compat>(en::select_operator(b1, b1)), 0.3 * 0.003125));
static_assert(en::multiply_pj<en::qtools_compat>(en::select_operator(f32, i8)) == 3.7);
}  // namespace

TEST_CASE("operator mapping at run time agrees with compile time") {
  volatile int which = 2;  // formats picked at run time
  const format_info pick[] = {i8, p4, t2, b1, b01, f32};
  const format_info w = pick[which];
  CHECK(en::select_operator(w, i8) == en::select_operator(t2, i8));
  CHECK(en::select_operator(w, i8).kind == en::op_kind::mux);
  CHECK(std::string(en::to_string(en::select_operator(pick[which + 1], pick[which + 1]).kind)) == "xor");
}

TEST_CASE("the constexpr math matches <cmath> closely") {
  for (double x : {1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0, 1024.0, 134217728.0, 1e12}) {
    CHECK(en::detail::log2(x) == doctest::Approx(std::log2(x)).epsilon(1e-14));
    CHECK(en::detail::sqrt(x) == doctest::Approx(std::sqrt(x)).epsilon(1e-15));
    CHECK(en::detail::exp2(en::detail::log2(x)) == doctest::Approx(x).epsilon(1e-13));
  }
  CHECK(en::detail::log2(1024.0) == 10.0);
  CHECK(en::detail::sqrt(64.0) == 8.0);
  CHECK(en::detail::ceil_log2(1) == 0);
  CHECK(en::detail::ceil_log2(1025) == 11);
  CHECK(en::round2(372.7714) == 372.77);
  CHECK(en::round2(0.125) == 0.13);  // ties away from zero
}
