// minifloat: hand-derived golden values for every alias and rounding policy, overflow/NaN/Inf/
// subnormal corners under every policy, exhaustive code tables of the <= 8-bit formats against an
// independent field decoder, and fp32/fp16/bf16 against independent bit-level conversions.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/ops.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

template <class F>
float q(float x) {
  return quantize_value<F>(x);
}
template <class F, class R>
float q_with(float x) {
  R r;
  return F::quantize_one(x, r);
}
float bits_to_float(std::uint32_t b) { return std::bit_cast<float>(b); }
std::uint32_t float_to_bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// e4m3 with the other policies (the alias saturates and rounds half to even).
using e4m3_nan = minifloat<4, 3, specials_fn, to_nan>;
using e4m3_away = minifloat<4, 3, specials_fn, nearest_away>;
using e4m3_trunc = minifloat<4, 3, specials_fn, toward_zero>;
using e4m3_flush = minifloat<4, 3, specials_fn, flush_subnormals>;
using e5m2_inf = minifloat<5, 2>;  // IEEE-like default: overflow to Inf
using e5m2_nan = minifloat<5, 2, to_nan>;
}  // namespace

TEST_CASE("minifloat traits, aliases and names") {
  static_assert(fp8_e4m3::max_value == 448.0 && fp8_e4m3::min_value == -448.0);
  static_assert(fp8_e5m2::max_value == 57344.0);
  static_assert(fp6_e3m2::max_value == 28.0 && fp6_e2m3::max_value == 7.5 && fp4_e2m1::max_value == 6.0);
  static_assert(fp16::max_value == 65504.0);
  static_assert(bf16::max_value == 3.3895313892515355e38);  // (2 - 2^-7) * 2^127
  static_assert(fp32::max_value == 3.4028234663852886e38);
  static_assert(fp8_e4m3::tuple == bit_tuple{1, 4, 3} && fp8_e4m3::bits == 8 && fp4_e2m1::bits == 4);
  static_assert(bf16::tuple == bit_tuple{1, 8, 7} && fp32::bits == 32);
  static_assert(fp8_e4m3::family == format_family::floating && fp8_e4m3::block_size == 1);
  static_assert(fp8_e4m3::bias == 7 && fp8_e4m3::emin == -6 && fp8_e4m3::emax == 8);
  static_assert(fp8_e5m2::emax == 15 && fp6_e3m2::emax == 4 && fp6_e2m3::emax == 2 && fp4_e2m1::emax == 2);
  static_assert(fp8_e4m3::has_nan && !fp8_e4m3::has_inf && fp8_e5m2::has_inf && !fp4_e2m1::has_nan);
  static_assert(!minifloat<5, 0>::has_nan && minifloat<5, 0>::has_inf);  // M = 0: Inf but no NaN code
  static_assert(scalar_format<fp8_e4m3> && scalar_format<fp32> && !block_format<fp16>);
  // policies are a set: order does not matter, defaults are canonical
  static_assert(std::is_same_v<minifloat<4, 3, saturate, specials_fn>, fp8_e4m3>);
  static_assert(std::is_same_v<minifloat<4, 3, specials_fn, saturate, keep_subnormals, nearest_even>, fp8_e4m3>);
  static_assert(std::is_same_v<minifloat<5, 10, specials_ieee, to_inf>, fp16>);
  CHECK(fp8_e4m3::name() == "fp8_e4m3");
  CHECK(fp8_e5m2::name() == "fp8_e5m2");
  CHECK(fp4_e2m1::name() == "fp4_e2m1");
  CHECK(bf16::name() == "bf16");
  CHECK(e4m3_nan::name() == "minifloat<4,3,fn,to_nan>");
  CHECK(e5m2_inf::name() == "minifloat<5,2>");
  CHECK(minifloat<3, 2, specials_finite, flush_subnormals, stochastic>::name() ==
        "minifloat<3,2,finite,flush_subnormals,stochastic>");
}

TEST_CASE("fp8_e4m3 golden values, round half to even, saturating") {
  using F = fp8_e4m3;  // binade [2^e, 2^(e+1)) has step 2^(e-3); subnormal step 2^-9
  CHECK(q<F>(0.3f) == 0.3125f);        // step 1/32: 9.6 -> 10
  CHECK(q<F>(-0.3f) == -0.3125f);
  CHECK(q<F>(0.296875f) == 0.3125f);   // 9.5 -> 10 (tie to even)
  CHECK(q<F>(0.265625f) == 0.25f);     // 8.5 -> 8 (tie to even)
  CHECK(q<F>(1.0625f) == 1.0f);        // step 1/8: 8.5 -> 8
  CHECK(q<F>(1.1875f) == 1.25f);       // 9.5 -> 10
  CHECK(q<F>(448.0f) == 448.0f);
  CHECK(q<F>(460.0f) == 448.0f);       // step 32: 14.375 -> 14
  CHECK(q<F>(464.0f) == 448.0f);       // 14.5 -> 14 (even): 448 + half a step is not an overflow
  CHECK(q<F>(464.5f) == 448.0f);       // -> 15 (480 > 448): overflow, saturates
  CHECK(q<F>(1e30f) == 448.0f);
  CHECK(q<F>(-1e30f) == -448.0f);
  CHECK(q<F>(inf) == 448.0f);          // no Inf code: Inf is an overflow
  CHECK(q<F>(-inf) == -448.0f);
  CHECK(std::isnan(q<F>(qnan)));
  // subnormals: step 2^-9 below 2^-6
  CHECK(q<F>(0x1p-9f) == 0x1p-9f);
  CHECK(q<F>(0x1.8p-9f) == 0x1p-8f);   // 1.5 steps -> 2
  CHECK(q<F>(0x1.4p-9f) == 0x1p-9f);   // 1.25 -> 1
  CHECK(q<F>(0x1p-10f) == 0.0f);       // 0.5 -> 0 (tie to even)
  CHECK(q<F>(0x1.0p-10f + 0x1p-20f) == 0x1p-9f);
  CHECK(q<F>(0x1.cp-7f) == 0x1.cp-7f); // 7 * 2^-9 = 0.875 * 2^-6: largest subnormal
  CHECK(q<F>(1e-30f) == 0.0f);
  CHECK(std::signbit(q<F>(-1e-30f)));  // sign of zero kept
  CHECK(q<F>(0x1p-6f) == 0x1p-6f);     // smallest normal
}

TEST_CASE("fp8_e4m3 under the other rounding and overflow policies") {
  // nearest_away: ties away from zero
  CHECK(q<e4m3_away>(0.265625f) == 0.28125f);  // 8.5 -> 9
  CHECK(q<e4m3_away>(-0.265625f) == -0.28125f);
  CHECK(q<e4m3_away>(0x1p-10f) == 0x1p-9f);    // 0.5 -> 1
  CHECK(q<e4m3_away>(464.0f) == 448.0f);       // 14.5 -> 15 = 480: overflow, saturates
  // toward_zero: truncation; never rounds past max
  CHECK(q<e4m3_trunc>(0.3f) == 0.28125f);      // 9.6 -> 9
  CHECK(q<e4m3_trunc>(-0.3f) == -0.28125f);
  CHECK(q<e4m3_trunc>(479.0f) == 448.0f);
  CHECK(q<e4m3_trunc>(0x1.fp-9f) == 0x1p-9f);  // 1.94 -> 1
  // to_nan: overflow (after rounding) becomes NaN; Inf has no code, so it is an overflow too
  CHECK(q<e4m3_nan>(464.0f) == 448.0f);        // tie to even stays in range
  CHECK(std::isnan(q<e4m3_nan>(464.5f)));
  CHECK(std::isnan(q<e4m3_nan>(-1000.0f)));
  CHECK(std::isnan(q<e4m3_nan>(inf)));
  CHECK(q<e4m3_nan>(447.0f) == 448.0f);
  // to_nan with toward_zero: a finite input truncates to max (IEEE 754 7.4), Inf is still NaN
  using TN = minifloat<4, 3, specials_fn, to_nan, toward_zero>;
  CHECK(q<TN>(1000.0f) == 448.0f);
  CHECK(std::isnan(q<TN>(inf)));
}

TEST_CASE("flush_subnormals rounds on the grid {0, 2^emin}") {
  using F = e4m3_flush;  // emin = -6: below 2^-6 only 0 and 2^-6 remain (nearest_even)
  CHECK(q<F>(0x1p-9f) == 0.0f);
  CHECK(q<F>(0x1p-7f) == 0.0f);                // exactly half of 2^-6: tie -> 0 (even)
  CHECK(q<F>(0x1.01p-7f) == 0x1p-6f);          // just above half -> 2^-6
  CHECK(q<F>(0.75f * 0x1p-6f) == 0x1p-6f);
  CHECK(std::signbit(q<F>(-0x1p-9f)));
  CHECK(q<F>(0x1.2p-6f) == 0x1.2p-6f);         // normals untouched
  CHECK(F::decode_one(0x01) == 0.0f);          // subnormal codes decode to zero
  CHECK(std::signbit(F::decode_one(0x81)));
  CHECK(values<F>().size() == 253 - 14);       // 7 positive and 7 negative subnormals gone
  using FA = minifloat<4, 3, specials_fn, flush_subnormals, nearest_away>;
  CHECK(q<FA>(0x1p-7f) == 0x1p-6f);            // the tie goes away from zero
}

TEST_CASE("fp8_e5m2 and IEEE-like overflow: saturate, to_inf, to_nan") {
  // max 57344 = 1.75 * 2^15, step 2^13 = 8192 in the top binade; max + step/2 = 61440 is a tie
  // between 57344 (mantissa 11, odd) and 65536 (even): it rounds up, an overflow.
  CHECK(q<fp8_e5m2>(61439.0f) == 57344.0f);
  CHECK(q<fp8_e5m2>(61440.0f) == 57344.0f);  // saturates
  CHECK(q<e5m2_inf>(61439.0f) == 57344.0f);
  CHECK(q<e5m2_inf>(61440.0f) == inf);
  CHECK(q<e5m2_inf>(-61440.0f) == -inf);
  CHECK(std::isnan(q<e5m2_nan>(61440.0f)));
  CHECK(q<e5m2_nan>(61439.0f) == 57344.0f);
  // Inf is a value of an IEEE-like format: kept under every overflow policy
  CHECK(q<fp8_e5m2>(inf) == inf);
  CHECK(q<e5m2_inf>(-inf) == -inf);
  CHECK(q<e5m2_nan>(inf) == inf);
  // toward_zero never overflows a finite input, even with to_inf
  CHECK(q<minifloat<5, 2, toward_zero>>(1e9f) == 57344.0f);
  CHECK(q<minifloat<5, 2, toward_zero>>(inf) == inf);
  // rounding: 0.3 in [0.25, 0.5), step 2^-4: 4.8 -> 5
  CHECK(q<fp8_e5m2>(0.3f) == 0.3125f);
  CHECK(q<fp8_e5m2>(0x1p-16f) == 0x1p-16f);   // smallest subnormal
  CHECK(q<fp8_e5m2>(0x1p-17f) == 0.0f);       // tie to even
  CHECK(q<fp8_e5m2>(0x1.8p-17f) == 0x1p-16f);
}

TEST_CASE("fp6 and fp4 golden values, round half to even, saturating") {
  // fp6_e3m2: bias 3, emin -2, subnormal step 2^-4, max 28
  CHECK(q<fp6_e3m2>(0.3f) == 0.3125f);  // [0.25, 0.5) step 1/16: 4.8 -> 5
  CHECK(q<fp6_e3m2>(0.03125f) == 0.0f); // 0.5 subnormal steps -> 0
  CHECK(q<fp6_e3m2>(0.09375f) == 0.125f);  // 1.5 -> 2
  CHECK(q<fp6_e3m2>(26.0f) == 24.0f);   // [16, 32) step 4: 6.5 -> 6
  CHECK(q<fp6_e3m2>(30.0f) == 28.0f);   // 7.5 -> 8 = 32: overflow, saturates
  CHECK(q<fp6_e3m2>(inf) == 28.0f);
  CHECK(std::isnan(q<fp6_e3m2>(qnan)));  // NaN propagates through quantize (encode refuses it)
  // fp6_e2m3: bias 1, emin 0, subnormal step 1/8, max 7.5
  CHECK(q<fp6_e2m3>(0.3f) == 0.25f);    // 2.4 -> 2
  CHECK(q<fp6_e2m3>(0.3125f) == 0.25f); // 2.5 -> 2 (even)
  CHECK(q<fp6_e2m3>(0.4375f) == 0.5f);  // 3.5 -> 4 (even)
  CHECK(q<fp6_e2m3>(7.75f) == 7.5f);    // [4, 8) step 1/2: 15.5 -> 16: overflow, saturates
  CHECK(q<fp6_e2m3>(-9.0f) == -7.5f);
  // fp4_e2m1: 0, 0.5, 1, 1.5, 2, 3, 4, 6
  CHECK(q<fp4_e2m1>(0.25f) == 0.0f);    // 0.5 subnormal steps -> 0
  CHECK(q<fp4_e2m1>(0.75f) == 1.0f);    // 1.5 -> 2
  CHECK(q<fp4_e2m1>(1.25f) == 1.0f);    // [1, 2) step 1/2: 2.5 -> 2
  CHECK(q<fp4_e2m1>(1.75f) == 2.0f);    // 3.5 -> 4
  CHECK(q<fp4_e2m1>(2.5f) == 2.0f);     // [2, 4) step 1: 2.5 -> 2
  CHECK(q<fp4_e2m1>(3.5f) == 4.0f);     // 3.5 -> 4
  CHECK(q<fp4_e2m1>(5.0f) == 4.0f);     // [4, 8) step 2: 2.5 -> 2
  CHECK(q<fp4_e2m1>(5.1f) == 6.0f);
  CHECK(q<fp4_e2m1>(7.0f) == 6.0f);     // 3.5 -> 4 = 8: overflow, saturates
  CHECK(q<fp4_e2m1>(-100.0f) == -6.0f);
  // the other policies on fp4
  using A = minifloat<2, 1, specials_finite, nearest_away>;
  using Z = minifloat<2, 1, specials_finite, toward_zero>;
  CHECK(q<A>(2.5f) == 3.0f);
  CHECK(q<A>(0.25f) == 0.5f);
  CHECK(q<A>(5.0f) == 6.0f);
  CHECK(q<Z>(5.9f) == 4.0f);
  CHECK(q<Z>(-1.4f) == -1.0f);
  CHECK(q<Z>(100.0f) == 6.0f);
}

TEST_CASE("fp16 and bf16 golden values, round half to even, overflow to Inf") {
  CHECK(q<fp16>(65504.0f) == 65504.0f);
  CHECK(q<fp16>(65519.0f) == 65504.0f);
  CHECK(q<fp16>(65520.0f) == inf);       // max + half ulp (ulp 32): tie, rounds to even 2^16
  CHECK(q<fp16>(0x1p-24f) == 0x1p-24f);  // smallest subnormal
  CHECK(q<fp16>(0x1p-25f) == 0.0f);      // tie to even
  CHECK(q<fp16>(0x1.8p-25f) == 0x1p-24f);
  CHECK(q<fp16>(1.0f + 0x1p-11f) == 1.0f);  // tie to even
  CHECK(q<fp16>(1.0f + 0x1.8p-10f) == 1.0f + 0x1p-9f);
  CHECK(q<bf16>(1.0f + 0x1p-8f) == 1.0f);   // tie to even
  CHECK(q<bf16>(1.0f + 0x3p-8f) == 1.0f + 0x1p-6f);  // 1.5 steps -> 2
  CHECK(q<bf16>(0x1p-133f) == 0x1p-133f);   // smallest bf16 subnormal
  CHECK(q<bf16>(0x1p-134f) == 0.0f);
  CHECK(q<bf16>(0x1.8p-134f) == 0x1p-133f);
  CHECK(q<bf16>(3.4e38f) == inf);
  CHECK(q<minifloat<8, 7, saturate>>(3.4e38f) == static_cast<float>(bf16::max_value));
}

TEST_CASE("stochastic rounding on fp8_e4m3 is unbiased and reproducible") {
  using S = minifloat<4, 3, specials_fn, stochastic>;
  xt::xarray<float> x = xt::ones<float>({20000}) * 0.3f;  // between 0.28125 and 0.3125: 60% up
  std::mt19937 e1(7), e2(7);
  auto a = quantize<S>(x, last_axis, e1);
  auto b = quantize<S>(x, last_axis, e2);
  CHECK(a == b);
  double sum = 0;
  for (float v : a) {
    REQUIRE((v == 0.28125f || v == 0.3125f));
    sum += v;
  }
  CHECK(sum / static_cast<double>(a.size()) == doctest::Approx(0.3).epsilon(0.002));
  std::mt19937 e3(1);
  stochastic_rounder<std::mt19937> r(e3);
  CHECK(S::quantize_one(0.3125f, r) == 0.3125f);  // values on the grid never move
}

namespace {
enum class enc { ieee, fn, finite };

/// Independent decoder: the value of code c from its sign/exponent/mantissa fields (double).
double field_value(std::uint32_t c, int E, int M, enc sp) {
  const int bias = (1 << (E - 1)) - 1;
  const bool neg = (c >> (E + M)) & 1u;
  const std::uint32_t e = (c >> M) & ((1u << E) - 1u);
  const std::uint32_t m = c & ((1u << M) - 1u);
  const std::uint32_t top = (1u << E) - 1u;
  double v;
  if (sp == enc::ieee && e == top)
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else if (sp == enc::fn && e == top && m == (1u << M) - 1u)
    v = std::numeric_limits<double>::quiet_NaN();
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), 1 - bias - M);
  else
    v = std::ldexp(static_cast<double>((1u << M) + m), static_cast<int>(e) - bias - M);
  return neg ? -v : v;
}

template <class F>
void exhaustive_table(int E, int M, enc sp, std::size_t expected_values, int expected_nan_codes, int expected_inf_codes) {
  CAPTURE(F::name());
  nearest_even round;
  int nans = 0, infs = 0;
  for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
    CAPTURE(c);
    const double want = field_value(c, E, M, sp);
    const float got = F::decode_one(c);
    if (std::isnan(want)) {
      ++nans;
      CHECK(std::isnan(got));
      CHECK(std::isnan(F::decode_one(F::encode_one(got, round))));  // the canonical NaN code
      continue;
    }
    if (std::isinf(want)) ++infs;
    CHECK(static_cast<double>(got) == want);
    CHECK(std::signbit(got) == std::signbit(want));
    CHECK(F::encode_one(got, round) == c);          // every non-NaN code round-trips
    CHECK(quantize_value<F>(got) == got);           // values are fixed points of quantize
  }
  CHECK(nans == expected_nan_codes);
  CHECK(infs == expected_inf_codes);
  const auto v = values<F>();
  CHECK(v.size() == expected_values);
  CHECK(static_cast<double>(v.back()) == F::max_value);
  CHECK(static_cast<double>(v.front()) == F::min_value);
}
}  // namespace

TEST_CASE("exhaustive code tables of the 8-bit and smaller formats") {
  // finite values counted once for +-0: 2^bits - NaN codes - Inf codes - 1
  exhaustive_table<fp8_e4m3>(4, 3, enc::fn, 256 - 2 - 0 - 1, 2, 0);        // 253
  exhaustive_table<fp8_e5m2>(5, 2, enc::ieee, 256 - 6 - 2 - 1, 6, 2);      // 247
  exhaustive_table<e5m2_inf>(5, 2, enc::ieee, 247, 6, 2);
  exhaustive_table<fp6_e3m2>(3, 2, enc::finite, 64 - 1, 0, 0);             // 63
  exhaustive_table<fp6_e2m3>(2, 3, enc::finite, 64 - 1, 0, 0);             // 63
  exhaustive_table<fp4_e2m1>(2, 1, enc::finite, 16 - 1, 0, 0);             // 15
  exhaustive_table<minifloat<2, 0>>(2, 0, enc::ieee, 2 * 2 + 1, 0, 2);     // 0, +-1, +-2, +-Inf
  exhaustive_table<minifloat<4, 0, specials_fn>>(4, 0, enc::fn, 2 * 14 + 1, 2, 0);

  const std::vector<float> fp4 = {-6, -4, -3, -2, -1.5f, -1, -0.5f, 0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  CHECK(values<fp4_e2m1>() == fp4);
  const auto e4m3 = values<fp8_e4m3>();
  CHECK(e4m3[e4m3.size() / 2 + 1] == 0x1p-9f);  // smallest positive: subnormal 2^-9
}

TEST_CASE("encode: NaN, Inf and signed zero codes") {
  nearest_even r;
  CHECK(fp8_e4m3::encode_one(qnan, r) == 0x7F);
  CHECK(fp8_e4m3::encode_one(-qnan, r) == 0xFF);
  CHECK(fp8_e4m3::encode_one(1e9f, r) == 0x7E);   // saturates at 448
  CHECK(fp8_e4m3::encode_one(-0.0f, r) == 0x80);
  CHECK(fp8_e5m2::encode_one(inf, r) == 0x7C);
  CHECK(fp8_e5m2::encode_one(-inf, r) == 0xFC);
  CHECK(fp8_e5m2::encode_one(qnan, r) == 0x7E);    // quiet NaN: mantissa MSB set
  CHECK(fp16::encode_one(1.0f, r) == 0x3C00);
  CHECK(fp16::encode_one(65520.0f, r) == 0x7C00);
  CHECK(bf16::encode_one(-2.0f, r) == 0xC000);
  CHECK(fp32::encode_one(1.0f, r) == 0x3F800000u);
  CHECK(fp4_e2m1::encode_one(-6.0f, r) == 0xF);
  CHECK_THROWS_WITH_AS(fp4_e2m1::encode_one(qnan, r), doctest::Contains("has no NaN code"), qnas::invalid_argument);
  xt::xarray<float> x = {1.0f, qnan};
  CHECK_THROWS_WITH_AS(encode<fp6_e3m2>(x), doctest::Contains("input element 1 is NaN"), qnas::invalid_argument);
  // fp4 codes 0x2 (1.0), 0xB (-1.5) packed LSB first in one byte
  xt::xarray<float> y = {1.0f, -1.5f};
  const auto e = encode<fp4_e2m1>(y);
  REQUIRE(e.codes.size() == 1);
  CHECK(e.codes[0] == 0xB2);
  CHECK(decode(e) == quantize<fp4_e2m1>(y));
}

namespace {
/// Independent float -> binary16 conversion (round half to even, overflow to Inf): integer
/// rounding of the mantissa for normal results, double arithmetic for subnormal ones.
std::uint16_t ref_half(float f) {
  const std::uint32_t b = float_to_bits(f);
  const auto sign = static_cast<std::uint16_t>((b >> 16) & 0x8000u);
  const std::uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u;
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 = 65504 + 16: Inf
  if (a < 0x38800000u) {                          // below 2^-14: a multiple of 2^-24
    const double steps = std::fabs(static_cast<double>(f)) * 0x1p24;
    return sign | static_cast<std::uint16_t>(std::nearbyint(steps));  // FE_TONEAREST: ties to even
  }
  std::uint32_t h = ((((a >> 23) - 127 + 15) << 10) | ((a & 0x7FFFFFu) >> 13));
  const std::uint32_t rest = a & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent
  return static_cast<std::uint16_t>(sign | h);
}
float half_value(std::uint16_t h) {
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? std::nan("") : INFINITY) : std::ldexp(1024 + m, e - 25);
  return static_cast<float>((h & 0x8000) ? -v : v);
}
bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || float_to_bits(a) == float_to_bits(b); }
}  // namespace

TEST_CASE("fp32 is the identity on every float (random bit patterns)") {
  std::mt19937 engine(2024);
  nearest_even r;
  for (int i = 0; i < 1 << 20; ++i) {
    const std::uint32_t b = engine();
    const float x = bits_to_float(b);
    const float y = q<fp32>(x);
    if (std::isnan(x)) {
      REQUIRE(std::isnan(y));
      continue;
    }
    REQUIRE(float_to_bits(y) == b);
    REQUIRE(fp32::encode_one(x, r) == b);
    REQUIRE(float_to_bits(fp32::decode_one(b)) == b);
  }
}

TEST_CASE("fp16 matches an independent float -> half conversion") {
  std::mt19937 engine(99);
  auto check_one = [](float x) {
    const float want = half_value(ref_half(x));
    const float got = q<fp16>(x);
    if (!same(got, want)) {
      CAPTURE(x);
      CHECK(got == want);
      return false;
    }
    return true;
  };
  bool ok = true;
  for (int i = 0; i < 1 << 20 && ok; ++i) ok = check_one(bits_to_float(engine()));
  // every float in the binades around the subnormal boundary, the top binade and beyond it
  for (std::uint32_t exp_field : {127u - 25u, 127u - 15u, 127u - 14u, 127u + 15u, 127u + 16u})
    for (std::uint32_t m = 0; m < (1u << 23) && ok; m += 3) ok = check_one(bits_to_float((exp_field << 23) | m));
  CHECK(ok);
}

TEST_CASE("bf16 matches the bit-level round-half-even truncation of float") {
  std::mt19937 engine(7);
  bool ok = true;
  for (int i = 0; i < 1 << 21 && ok; ++i) {
    const std::uint32_t b = engine();
    const float x = bits_to_float(b);
    const float got = q<bf16>(x);
    if (std::isnan(x)) {
      ok = std::isnan(got);
      continue;
    }
    const std::uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;  // carries reach Inf
    ok = float_to_bits(got) == rounded;
    if (!ok) CHECK(got == bits_to_float(rounded));
  }
  CHECK(ok);
}

TEST_CASE("quantize along any axis is elementwise for a scalar format") {
  xt::xarray<float> x = {{0.3f, -700.0f, 1e-3f}, {5.0f, 0.1f, -0.2f}};
  CHECK(quantize<fp8_e4m3>(x, 0) == quantize<fp8_e4m3>(x, 1));
  const auto y = quantize<fp8_e4m3>(x);
  CHECK(y(0, 1) == -448.0f);
  CHECK(y(0, 0) == 0.3125f);
}
