// po2 / relu_po2: hand-derived golden values (QKeras quantized_po2 / quantized_relu_po2),
// every rounding policy, exhaustive code tables, corners and the format laws.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
template <class F>
float q(float x) {
  return quantize_value<F>(x);
}

/// Every value of a po2 format listed by hand from its exponent range: +-2^e (or 2^e).
std::vector<float> po2_values(int lo, int hi, bool is_signed) {
  std::vector<float> v;
  for (int e = hi; is_signed && e >= lo; --e) v.push_back(-std::ldexp(1.0f, e));
  for (int e = lo; e <= hi; ++e) v.push_back(std::ldexp(1.0f, e));
  return v;
}

/// Exhaustive table: decode derived from the documented layout [sign | e - exponent_min],
/// encode(decode(c)) == c for every used code, values() equal to the hand-listed set.
template <class F>
void check_code_table(int lo, int hi) {
  constexpr int field = F::is_signed ? F::bits - 1 : F::bits;
  nearest_even r;
  for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
    const int e = static_cast<int>(c & ((1u << field) - 1u)) + lo;
    const bool neg = F::is_signed && ((c >> field) & 1u);
    const float expect = neg ? -std::ldexp(1.0f, e) : std::ldexp(1.0f, e);
    CAPTURE(c);
    CHECK(F::decode_one(c) == expect);
    if (e <= hi) CHECK(F::encode_one(F::decode_one(c), r) == c);
  }
  CHECK(values<F>() == po2_values(lo, hi, F::is_signed));
}
}  // namespace

TEST_CASE("po2 traits and exponent ranges (QKeras _get_min_max_exponents)") {
  using P4 = po2<4>;  // no max_value: exponent sign bit; 3 exponent bits -> [-4, 3]
  static_assert(P4::tuple == bit_tuple{1, 3, 0});  // e-quant with e bits is (1, e-1, 0)
  static_assert(P4::family == format_family::po2 && P4::bits == 4 && amortized_bits_v<P4> == 4.0);
  static_assert(P4::exponent_min == -4 && P4::exponent_max == 3);
  static_assert(P4::max_value == 8.0 && P4::min_value == -8.0 && !P4::has_zero);
  static_assert(po2<8>::exponent_min == -64 && po2<8>::exponent_max == 63);
  static_assert(po2<2>::exponent_min == -1 && po2<2>::exponent_max == 0);
  // max_value <= 1: no exponent sign bit; QKeras [-8, 0] has 9 exponents, qnas keeps [-7, 0]
  static_assert(po2<4, 1.0>::exponent_min == -7 && po2<4, 1.0>::exponent_max == 0);
  // max_value = 0.25: QKeras [-8, -2] fits in 3 bits and is kept exactly
  static_assert(po2<4, 0.25>::exponent_min == -8 && po2<4, 0.25>::exponent_max == -2);
  // max_value = 6 under "rnd": log2(6) = 2.58 rounds to 3 -> the largest value is 8 (as QKeras)
  static_assert(po2<4, 6.0>::exponent_max == 3 && po2<4, 6.0>::max_value == 8.0);
  // under "floor" the clip value 6 floors to 4
  static_assert(po2<4, 6.0, toward_zero>::max_value == 4.0);
  static_assert(po2<4, 2.0>::exponent_min == -4 && po2<4, 2.0>::exponent_max == 1);
  // relu flavour: all Bits are exponent bits; QKeras [-2^(Bits-1), 2^(Bits-1) - 1]
  using R4 = relu_po2<4>;
  static_assert(R4::tuple == bit_tuple{0, 4, 0} && R4::exponent_min == -8 && R4::exponent_max == 7);
  static_assert(R4::min_value == 1.0 / 256 && R4::max_value == 128.0);
  static_assert(relu_po2<4, 1.0>::exponent_min == -15 && relu_po2<4, 1.0>::exponent_max == 0);
  static_assert(number_format<P4> && scalar_format<R4>);
  CHECK(P4::name() == "po2<4>");
  CHECK(po2<4, 1.0>::name() == "po2<4,max=1>");
  CHECK(po2<4, 0.5, toward_zero>::name() == "po2<4,max=0.5,toward_zero>");
  CHECK(relu_po2<3>::name() == "relu_po2<3>");
}

TEST_CASE("po2<4> golden values, log2_nearest (QKeras log2_rounding='rnd')") {
  // rule: round(log2|x|): up iff |x| > sqrt(2) * 2^floor(log2|x|); clip to [2^-4, 8]
  using F = po2<4>;
  CHECK(q<F>(1.0f) == 1.0f);
  CHECK(q<F>(1.4f) == 1.0f);    // 1.4 < sqrt(2) = 1.41421
  CHECK(q<F>(1.42f) == 2.0f);   // 1.42 > sqrt(2)
  CHECK(q<F>(1.45f) == 2.0f);   // linear nearest would say 1
  CHECK(q<F>(3.0f) == 4.0f);    // 3 = 1.5 * 2 > sqrt(2) * 2
  CHECK(q<F>(2.8f) == 2.0f);    // 1.4 * 2
  CHECK(q<F>(0.7f) == 0.5f);    // 1.4 * 2^-1
  CHECK(q<F>(0.71f) == 1.0f);   // 1.42 * 2^-1
  CHECK(q<F>(-3.0f) == -4.0f);  // sign kept
  CHECK(q<F>(-0.3f) == -0.25f); // 1.2 * 2^-2
  CHECK(q<F>(100.0f) == 8.0f);  // saturates at 2^3
  CHECK(q<F>(-100.0f) == -8.0f);
  CHECK(q<F>(inf) == 8.0f);
  CHECK(q<F>(-inf) == -8.0f);
  // zero and anything below the smallest magnitude: +-2^-4 (QKeras: |x| < eps -> min_exp, sign(0) = +1)
  CHECK(q<F>(0.0f) == 0.0625f);
  CHECK(q<F>(-0.0f) == 0.0625f);
  CHECK(q<F>(0.01f) == 0.0625f);
  CHECK(q<F>(-0.01f) == -0.0625f);
  CHECK(q<F>(0.04f) == 0.0625f);  // 1.28 * 2^-5 would round down to 2^-5, clipped up to 2^-4
  CHECK(std::isnan(q<F>(qnan)));
}

TEST_CASE("po2 golden values, other rounding policies") {
  // rule: toward_zero = QKeras log2_rounding='floor': 2^floor(log2|x|)
  using Z = po2<4, no_max_value, toward_zero>;
  CHECK(q<Z>(1.9f) == 1.0f);
  CHECK(q<Z>(3.0f) == 2.0f);
  CHECK(q<Z>(7.99f) == 4.0f);
  CHECK(q<Z>(0.7f) == 0.5f);
  CHECK(q<Z>(-1.9f) == -1.0f);
  CHECK(q<Z>(20.0f) == 8.0f);
  CHECK(q<Z>(0.0f) == 0.0625f);
  // rule: nearest_even = linear nearest; the tie 1.5 * 2^e goes up (1.5 rounds to 2)
  using E = po2<4, no_max_value, nearest_even>;
  CHECK(q<E>(1.45f) == 1.0f);
  CHECK(q<E>(1.49f) == 1.0f);
  CHECK(q<E>(1.5f) == 2.0f);
  CHECK(q<E>(2.9f) == 2.0f);
  CHECK(q<E>(3.0f) == 4.0f);
  CHECK(q<E>(-0.375f) == -0.5f);  // 1.5 * 2^-2
  using A = po2<4, no_max_value, nearest_away>;
  CHECK(q<A>(1.5f) == 2.0f);
  CHECK(q<A>(1.49f) == 1.0f);
}

TEST_CASE("po2 with max_value (QKeras clips x to max_value before rounding)") {
  using M1 = po2<4, 1.0>;  // values +-2^[-7, 0]
  CHECK(q<M1>(0.9f) == 1.0f);
  CHECK(q<M1>(5.0f) == 1.0f);
  CHECK(q<M1>(0.0f) == 0.0078125f);  // 2^-7
  CHECK(q<M1>(-0.3f) == -0.25f);
  using M6 = po2<4, 6.0>;  // "rnd": the clip value 6 rounds to 8
  CHECK(q<M6>(7.0f) == 8.0f);
  CHECK(q<M6>(5.0f) == 4.0f);  // 1.25 * 4
  CHECK(q<M6>(1000.0f) == 8.0f);
  using M6f = po2<4, 6.0, toward_zero>;
  CHECK(q<M6f>(7.0f) == 4.0f);
  CHECK(q<M6f>(5.9f) == 4.0f);
  using Q = po2<4, 0.25>;  // values +-2^[-8, -2]
  CHECK(q<Q>(0.2f) == 0.25f);  // 1.6 * 2^-3 > sqrt(2) * 2^-3
  CHECK(q<Q>(3.0f) == 0.25f);
  CHECK(q<Q>(0.0f) == 0.00390625f);
}

TEST_CASE("relu_po2 golden values (QKeras quantized_relu_po2)") {
  using R = relu_po2<4>;  // values 2^[-8, 7]
  CHECK(q<R>(3.0f) == 4.0f);
  CHECK(q<R>(1.4f) == 1.0f);
  CHECK(q<R>(1000.0f) == 128.0f);
  CHECK(q<R>(inf) == 128.0f);
  // relu then the zero rule: every x <= 0 is the smallest magnitude
  CHECK(q<R>(-5.0f) == 0.00390625f);
  CHECK(q<R>(0.0f) == 0.00390625f);
  CHECK(q<R>(-inf) == 0.00390625f);
  CHECK(std::isnan(q<R>(qnan)));
  using R1 = relu_po2<3, 1.0, toward_zero>;  // values 2^[-7, 0]
  CHECK(q<R1>(0.9f) == 0.5f);
  CHECK(q<R1>(3.0f) == 1.0f);
}

TEST_CASE("po2 exhaustive code tables") {
  check_code_table<po2<4>>(-4, 3);
  check_code_table<po2<8>>(-64, 63);
  check_code_table<po2<2>>(-1, 0);
  check_code_table<relu_po2<4>>(-8, 7);
  check_code_table<relu_po2<8>>(-128, 127);  // 2^-128 is a float subnormal
  check_code_table<po2<4, 0.25>>(-8, -2);    // field 7 unused
  check_code_table<po2<8, 1.0>>(-127, 0);
  CHECK(values<po2<4>>().size() == 16);
  CHECK(values<po2<8>>().size() == 256);
  CHECK(values<po2<4, 0.25>>().size() == 14);
  CHECK(values<po2<4, 6.0, toward_zero>>() == po2_values(-4, 2, true));
  // a few codes written out: [sign | e + 4]
  nearest_even r;
  CHECK(po2<4>::encode_one(1.0f, r) == 0b0100u);
  CHECK(po2<4>::encode_one(-0.0625f, r) == 0b1000u);
  CHECK(po2<4>::encode_one(-8.0f, r) == 0b1111u);
  CHECK(po2<4>::encode_one(0.0f, r) == 0b0000u);
}

TEST_CASE("po2 encode/decode through the generic operations; NaN refused") {
  using F = po2<4>;
  xt::xarray<float> x = {1.0f, -3.0f, 0.0f, 100.0f, 0.3f};
  auto e = encode<F>(x);
  REQUIRE(e.codes.size() == 3);
  // codes 4 (+2^0), 14 (-2^2), 0 (+2^-4), 7 (+2^3), 2 (+2^-2) packed LSB first: 0xE4, 0x70, 0x02
  CHECK(e.codes[0] == 0xE4);
  CHECK(e.codes[1] == 0x70);
  CHECK(e.codes[2] == 0x02);
  CHECK(decode(e) == quantize<F>(x));
  xt::xarray<float> bad = {1.0f, qnan};
  CHECK_THROWS_WITH_AS(encode<F>(bad), doctest::Contains("input element 1 is NaN"), qnas::invalid_argument);
  nearest_even r;
  CHECK_THROWS_AS(F::encode_one(qnan, r), qnas::invalid_argument);
}

TEST_CASE("po2 stochastic rounding is unbiased between the two powers of two and reproducible") {
  // rule: QKeras stochastic_round_po2: up with probability (|x| - 2^e) / 2^e
  using S = po2<4, no_max_value, stochastic>;
  xt::xarray<float> x = xt::ones<float>({20000}) * 1.25f;  // 25% to 2, 75% to 1
  std::mt19937 e1(11), e2(11);
  auto a = quantize<S>(x, last_axis, e1);
  auto b = quantize<S>(x, last_axis, e2);
  CHECK(a == b);
  double sum = 0;
  for (float v : a) {
    REQUIRE((v == 1.0f || v == 2.0f));
    sum += v;
  }
  CHECK(sum / a.size() == doctest::Approx(1.25).epsilon(0.01));
  xt::xarray<float> neg = xt::ones<float>({20000}) * -3.0f;  // 50% to -4, 50% to -2
  auto c = quantize<S>(neg, last_axis, e1);
  double csum = 0;
  for (float v : c) {
    REQUIRE((v == -4.0f || v == -2.0f));
    csum += v;
  }
  CHECK(csum / c.size() == doctest::Approx(-3.0).epsilon(0.01));
}

TEST_CASE("po2 log2_nearest: log-domain half-step bound and the kit's linear one") {
  // Own law check: |log2|q| - log2|x|| <= 1/2 inside the range (log-domain nearest).
  using F = po2<6>;  // exponents [-16, 15]
  std::mt19937 eng(3);
  std::uniform_real_distribution<double> u(-15.9, 14.9);
  for (int i = 0; i < 20000; ++i) {
    const auto x = static_cast<float>(std::exp2(u(eng))) * ((i & 1) ? -1.0f : 1.0f);
    const float qx = q<F>(x);
    REQUIRE(std::fabs(std::log2(std::fabs(double(qx))) - std::log2(std::fabs(double(x)))) <= 0.5);
    REQUIRE(std::signbit(qx) == std::signbit(x));
  }
  // The conformance kit assumes linear nearest for every policy but toward_zero/stochastic, so
  // for log2_nearest it reports exactly the inputs in (sqrt(2), 1.5) * 2^e and nothing else.
  testing::check_options opt;
  opt.max_failures = 1000000;
  const auto report = testing::check_format<po2<4>>(opt);
  CHECK(!report.failures.empty());
  for (const auto& f : report.failures) CHECK_MESSAGE(f.find("(half-step bound)") != std::string::npos, f);
}

TEST_CASE("po2 laws (check_format)") {
  auto check = [](auto t) {
    using F = typename decltype(t)::type;
    const auto report = testing::check_format<F>();
    CHECK_MESSAGE(static_cast<bool>(report), report);
  };
  check(std::type_identity<po2<4, no_max_value, nearest_even>>{});
  check(std::type_identity<po2<8, no_max_value, toward_zero>>{});
  check(std::type_identity<po2<4, no_max_value, stochastic>>{});
  check(std::type_identity<po2<5, 1.0, nearest_away>>{});
  check(std::type_identity<po2<3, 6.0, toward_zero>>{});
  check(std::type_identity<relu_po2<4, no_max_value, nearest_even>>{});
  check(std::type_identity<relu_po2<8, no_max_value, toward_zero>>{});
  check(std::type_identity<relu_po2<2, 0.5, stochastic>>{});
}

// ---------------------------------------------------------------------------------------------
// Quadratic approximation and negative slope (issue #18; QKeras _clip_power_of_two,
// quantized_po2 / quantized_relu_po2 with quadratic_approximation=True, negative_slope=s).
// ---------------------------------------------------------------------------------------------

namespace {
/// Runs check_format and requires every failure it reports to belong to one of the laws the
/// format is documented to break (`allowed`: substrings of the kit's messages): the other laws
/// (decode(encode(x)) == q(x), NaN propagation, range) are thereby checked by the kit.
template <class F>
void check_laws_except(std::initializer_list<const char*> allowed, bool expect_failures = true) {
  testing::check_options opt;
  opt.max_failures = 1000000;
  const auto report = testing::check_format<F>(opt);
  if (expect_failures) CHECK_MESSAGE(!report.failures.empty(), F::name());
  for (const auto& f : report.failures) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || f.find(a) != std::string::npos;
    CHECK_MESSAGE(ok, F::name() << ": " << f);
  }
}

/// Floats spread over the whole line: random magnitudes 2^[-40, 40], both signs, specials.
std::vector<float> spread_inputs(std::uint64_t seed, int n) {
  std::mt19937_64 eng(seed);
  std::uniform_real_distribution<double> u(-40.0, 40.0);
  std::vector<float> xs = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-7f, -1e-7f, 1e-38f, -1e-38f, inf, -inf};
  for (int i = 0; i < n; ++i) xs.push_back(static_cast<float>(std::exp2(u(eng))) * ((i & 1) ? -1.0f : 1.0f));
  for (int e = -40; e <= 40; ++e) {  // powers of two and their neighbours: ties of both rules
    const float p = std::ldexp(1.0f, e);
    for (float v : {p, std::nextafter(p, inf), std::nextafter(p, 0.0f), p * 1.4142135f, p * 1.4142137f})
      xs.insert(xs.end(), {v, -v});
  }
  return xs;
}

/// decode(encode(x)) == q(x) bit for bit, and q(NaN) is NaN.
template <class F>
void check_round_trip(const std::vector<float>& xs) {
  auto r = detail::make_rounder<F>();
  for (float x : xs) {
    CAPTURE(x);
    const float v = F::quantize_one(x, r);
    const float d = F::decode_one(F::encode_one(x, r));
    REQUIRE(v == d);
    REQUIRE(std::signbit(v) == std::signbit(d));
    REQUIRE(F::encode_one(x, r) < (1u << F::bits));
  }
  CHECK(std::isnan(F::quantize_one(qnan, r)));
}

/// q is non-decreasing over the sorted inputs, skipping those `skip` says to.
template <class F, class Skip>
void check_monotone(std::vector<float> xs, Skip skip) {
  auto r = detail::make_rounder<F>();
  std::sort(xs.begin(), xs.end());
  float prev = -inf;
  float prev_x = -inf;
  for (float x : xs) {
    if (skip(x)) continue;
    const float v = F::quantize_one(x, r);
    CAPTURE(prev_x);
    CAPTURE(x);
    REQUIRE(v >= prev);
    prev = v;
    prev_x = x;
  }
}
}  // namespace

TEST_CASE("po2 quadratic approximation: traits and exponent ranges (QKeras _get_min_max_exponents)") {
  // QKeras: min_exp = -2^(field - sign), max_exp = 2 * ((2^(field - sign) - 1) // 2); the clip is
  // on round(log2|x| / 2), doubled after: exponents 2 * [min_exp, max_exp]; 0 -> 2^min_exp.
  using Q4 = po2_quadratic<4>;  // field 3 with exponent sign: [-4, 2] -> exponents -8, -6, ..., 4
  static_assert(std::is_same_v<Q4, po2<4, no_max_value, log2_nearest, true, true>>);
  static_assert(Q4::bits == 4 && Q4::tuple == bit_tuple{1, 3, 0} && Q4::family == format_family::po2);
  static_assert(Q4::exponent_min == -8 && Q4::exponent_max == 4 && Q4::zero_exponent == -4);
  static_assert(Q4::exponent_step == 2 && Q4::quadratic_approximation);
  static_assert(Q4::max_value == 16.0 && Q4::min_value == -16.0 && !Q4::has_zero);
  static_assert(po2_quadratic<8>::exponent_min == -128 && po2_quadratic<8>::exponent_max == 124 &&
                po2_quadratic<8>::zero_exponent == -64);
  static_assert(po2_quadratic<3>::exponent_min == -4 && po2_quadratic<3>::exponent_max == 0 &&
                po2_quadratic<3>::zero_exponent == -2);
  // max_value 2: round(log2(2) / 2) = round(0.5) = 0 (ties to even) -> the largest value is 1
  static_assert(po2_quadratic<4, 2.0>::exponent_max == 0 && po2_quadratic<4, 2.0>::max_value == 1.0);
  // max_value 8: round(1.5) = 2 -> 16, above max_value (as the plain format's 6 -> 8)
  static_assert(po2_quadratic<4, 8.0>::exponent_max == 4);
  static_assert(po2_quadratic<4, 8.0, toward_zero>::exponent_max == 2);  // floor(1.5) = 1
  // max_value <= 1 (no exponent sign bit): QKeras min_exp = -2^field = -8
  static_assert(po2_quadratic<4, 0.25>::exponent_min == -16 && po2_quadratic<4, 0.25>::exponent_max == -2 &&
                po2_quadratic<4, 0.25>::zero_exponent == -8);
  // max_value 1: QKeras j in [-8, 0] is 9 values; qnas keeps [-7, 0] (as the plain format)
  static_assert(po2_quadratic<4, 1.0>::exponent_min == -14 && po2_quadratic<4, 1.0>::exponent_max == 0 &&
                po2_quadratic<4, 1.0>::zero_exponent == -8);
  static_assert(po2_quadratic<2, 1.0>::exponent_min == -2 && po2_quadratic<2, 1.0>::zero_exponent == -2);
  using RQ = relu_po2<4, no_max_value, log2_nearest, 0.0, true>;  // field 4: [-8, 6] -> -16..12
  static_assert(RQ::exponent_min == -16 && RQ::exponent_max == 12 && RQ::zero_exponent == -8);
  static_assert(RQ::tuple == bit_tuple{0, 4, 0} && RQ::bits == 4 && !RQ::is_signed);
  CHECK(Q4::name() == "po2<4,quadratic>");
  CHECK(po2_quadratic<4, 2.0, toward_zero>::name() == "po2<4,max=2,toward_zero,quadratic>");
  CHECK(RQ::name() == "relu_po2<4,quadratic>");
  CHECK(po2<4>::name() == "po2<4>");  // unchanged
}

TEST_CASE("po2 quadratic approximation: golden values, log2_nearest (QKeras 'rnd')") {
  // rule: e = floor(log2|x|); even e = 2m -> 4^m; odd e = 2m + 1 -> 4^(m+1) above 2^e, and at
  // |x| = 2^e exactly (log2|x| / 2 = m + 1/2) the even one of m, m + 1; clip m to [-4, 2]
  using F = po2_quadratic<4>;
  CHECK(q<F>(1.0f) == 1.0f);
  CHECK(q<F>(1.9f) == 1.0f);               // e = 0
  CHECK(q<F>(2.0f) == 1.0f);               // log2 / 2 = 0.5 -> 0 (even)
  CHECK(q<F>(std::nextafter(2.0f, 3.0f)) == 4.0f);
  CHECK(q<F>(3.0f) == 4.0f);
  CHECK(q<F>(7.9f) == 4.0f);               // e = 2
  CHECK(q<F>(8.0f) == 16.0f);              // 1.5 -> 2 (even)
  CHECK(q<F>(std::nextafter(8.0f, 0.0f)) == 4.0f);
  CHECK(q<F>(100.0f) == 16.0f);            // clipped to 2
  CHECK(q<F>(inf) == 16.0f);
  CHECK(q<F>(-inf) == -16.0f);
  CHECK(q<F>(0.5f) == 1.0f);               // -0.5 -> 0 (even): 0.5 goes up to 1
  CHECK(q<F>(0.3f) == 0.25f);              // 1.2 * 2^-2
  CHECK(q<F>(0.2f) == 0.25f);              // 1.6 * 2^-3 > 2^-3
  CHECK(q<F>(0.125f) == 0.0625f);          // -1.5 -> -2 (even)
  CHECK(q<F>(-3.0f) == -4.0f);
  CHECK(q<F>(-0.3f) == -0.25f);
  CHECK(q<F>(1e-6f) == 0.00390625f);       // 1.05 * 2^-20 -> m = -10, clipped to -4: 2^-8
  CHECK(q<F>(1e-7f) == 0.00390625f);       // not below QKeras's epsilon (1e-7f itself)
  // the zero rule: |x| < 1e-7 -> +-2^min_exp = 2^-4, not doubled (sign(0) = +1)
  CHECK(q<F>(0.0f) == 0.0625f);
  CHECK(q<F>(-0.0f) == 0.0625f);
  CHECK(!std::signbit(q<F>(-0.0f)));
  CHECK(q<F>(std::nextafter(1e-7f, 0.0f)) == 0.0625f);
  CHECK(q<F>(1e-45f) == 0.0625f);
  CHECK(q<F>(-1e-8f) == -0.0625f);
  CHECK(std::isnan(q<F>(qnan)));
  // hence not monotone: q(0) > q(1e-6)
  CHECK(q<F>(0.0f) > q<F>(1e-6f));
  // max_value 2 clips x to 2 first, so everything from 2 up is 1
  using M2 = po2_quadratic<4, 2.0>;
  CHECK(q<M2>(1.5f) == 1.0f);
  CHECK(q<M2>(3.0f) == 1.0f);
  CHECK(q<M2>(1e30f) == 1.0f);
  CHECK(q<M2>(0.2f) == 0.25f);
  using Q = po2_quadratic<4, 0.25>;  // values +-4^[-8, -1]; 0 -> 2^-8
  CHECK(q<Q>(1.0f) == 0.25f);
  CHECK(q<Q>(0.1f) == 0.0625f);  // 1.6 * 2^-4
  CHECK(q<Q>(0.0f) == 0.00390625f);
  CHECK(q<Q>(1e-6f) == std::ldexp(1.0f, -16));  // m = -10 clipped to -8
}

TEST_CASE("po2 quadratic approximation: toward_zero (QKeras 'floor') and stochastic") {
  // rule: floor(log2 sqrt|x|) = floor(floor(log2|x|) / 2)
  using Z = po2_quadratic<4, no_max_value, toward_zero>;
  CHECK(q<Z>(3.0f) == 1.0f);
  CHECK(q<Z>(3.99f) == 1.0f);
  CHECK(q<Z>(4.0f) == 4.0f);
  CHECK(q<Z>(15.9f) == 4.0f);
  CHECK(q<Z>(0.3f) == 0.25f);
  CHECK(q<Z>(0.2f) == 0.0625f);
  CHECK(q<Z>(-0.2f) == -0.0625f);
  CHECK(q<Z>(1000.0f) == 16.0f);
  CHECK(q<Z>(0.0f) == 0.0625f);
  // rule: sqrt|x| between 2^m and 2^(m+1) goes up with probability sqrt|x| / 2^m - 1
  // (QKeras stochastic_round_po2 of sqrt|x|): x = 2.25 -> sqrt 1.5: half 1, half 4
  using S = po2_quadratic<4, no_max_value, stochastic>;
  xt::xarray<float> x = xt::ones<float>({20000}) * 2.25f;
  std::mt19937 e1(13), e2(13);
  auto a = quantize<S>(x, last_axis, e1);
  CHECK(a == quantize<S>(x, last_axis, e2));
  double ups = 0;
  for (float v : a) {
    REQUIRE((v == 1.0f || v == 4.0f));
    ups += v == 4.0f;
  }
  CHECK(ups / a.size() == doctest::Approx(0.5).epsilon(0.03));
  auto z = quantize<S>(xt::xarray<float>{0.0f, 4.0f, 16.0f, 1000.0f}, last_axis, e1);
  CHECK(z == xt::xarray<float>{0.0625f, 4.0f, 16.0f, 16.0f});
}

TEST_CASE("po2 quadratic approximation: exhaustive code tables") {
  // layout [sign | (e - exponent_min) / 2]
  auto table = [](auto t, int lo, int hi, int zero) {
    using F = typename decltype(t)::type;
    constexpr int field = F::is_signed ? F::bits - 1 : F::bits;
    nearest_even r;
    std::vector<float> expect_values;
    for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
      const int e = lo + 2 * static_cast<int>(c & ((1u << field) - 1u));
      const bool neg = F::is_signed && ((c >> field) & 1u);
      const float v = neg ? -std::ldexp(1.0f, e) : std::ldexp(1.0f, e);
      CAPTURE(c);
      CHECK(F::decode_one(c) == v);
      if (e > hi) continue;
      // a value below QKeras's epsilon re-encodes to +-2^min_exp (not idempotent, but for
      // 2^min_exp itself)
      const std::uint32_t back = std::fabs(v) >= 1e-7f
                                     ? c
                                     : (c & ~((1u << field) - 1u)) + static_cast<std::uint32_t>((zero - lo) / 2);
      CHECK(F::encode_one(v, r) == back);
      if (back == c) expect_values.push_back(v);
    }
    std::sort(expect_values.begin(), expect_values.end());
    CHECK(values<F>() == expect_values);
    CHECK(F::encode_one(0.0f, r) == static_cast<std::uint32_t>((zero - lo) / 2));
  };
  table(std::type_identity<po2_quadratic<4>>{}, -8, 4, -4);
  table(std::type_identity<po2_quadratic<3>>{}, -4, 0, -2);
  table(std::type_identity<po2_quadratic<2, 1.0>>{}, -2, 0, -2);
  table(std::type_identity<po2_quadratic<4, 0.25>>{}, -16, -2, -8);
  table(std::type_identity<po2_quadratic<8>>{}, -128, 124, -64);  // 4^[-64, 62]; field 127 unused; 4^-64..4^-12 < 1e-7
  table(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 0.0, true>>{}, -16, 12, -8);
  nearest_even r;
  CHECK(po2_quadratic<4>::encode_one(1.0f, r) == 0b0100u);     // (0 + 8) / 2
  CHECK(po2_quadratic<4>::encode_one(-16.0f, r) == 0b1110u);
  CHECK(po2_quadratic<4>::encode_one(-0.0f, r) == 0b0010u);    // 2^-4: field 2
  CHECK(po2_quadratic<4>::encode_one(-1e-9f, r) == 0b1010u);   // -2^-4
  CHECK_THROWS_AS(po2_quadratic<4>::encode_one(qnan, r), qnas::invalid_argument);
}

TEST_CASE("po2 quadratic approximation: the laws QKeras keeps, and the two it breaks") {
  // decode(encode(x)) == q(x) everywhere; monotone and idempotent away from QKeras's epsilon
  const auto xs = spread_inputs(21, 20000);
  auto laws = [&](auto t) {
    using F = typename decltype(t)::type;
    check_round_trip<F>(xs);
    // away from the zero rule: |x| < 1e-7 (relu flavour: x < 1e-7) give 2^min_exp
    check_monotone<F>(xs, [](float x) { return F::is_signed ? std::fabs(x) < 1e-7f : x < 1e-7f; });
    auto r = detail::make_rounder<F>();
    for (float x : xs) {
      const float v = F::quantize_one(x, r);
      CAPTURE(x);
      if (std::fabs(v) >= 1e-7f) REQUIRE(F::quantize_one(v, r) == v);  // idempotent on values >= eps
      if (std::fabs(x) < 1e-7f) REQUIRE(v == std::ldexp(1.0f, F::zero_exponent) * ((F::is_signed && x < 0) ? -1.0f : 1.0f));
      // log domain: log2 sqrt is rounded to nearest, so |log2|q| - log2|x|| <= 1 inside the range
      if (std::is_same_v<typename F::rounding, log2_nearest> && (F::is_signed || x > 0.0f) &&
          std::fabs(x) >= std::ldexp(1.0, F::exponent_min) && std::fabs(x) <= F::max_value && std::fabs(x) >= 1e-7f)
        REQUIRE(std::fabs(std::log2(std::fabs(double(v))) - std::log2(std::fabs(double(x)))) <= 1.0);
    }
  };
  laws(std::type_identity<po2_quadratic<4>>{});
  laws(std::type_identity<po2_quadratic<6>>{});
  laws(std::type_identity<po2_quadratic<8>>{});
  laws(std::type_identity<po2_quadratic<5, 0.5, toward_zero>>{});
  laws(std::type_identity<po2_quadratic<3, 6.0>>{});
  laws(std::type_identity<relu_po2<5, no_max_value, log2_nearest, 0.0, true>>{});
  // the two broken laws, by example: monotonicity where 2^min_exp > q(1e-7) (min_exp > -24),
  // idempotence where values 4^j < 1e-7 other than 2^min_exp exist (jlo <= -12)
  using F6 = po2_quadratic<6>;  // j in [-16, 14]: 4^-12 = 2^-24 < 1e-7 is a value; both break
  static_assert(F6::exponent_min == -32 && F6::zero_exponent == -16);
  CHECK(q<F6>(1e-7f) == std::ldexp(1.0f, -24));
  CHECK(q<F6>(std::ldexp(1.0f, -24)) == std::ldexp(1.0f, -16));  // not idempotent
  CHECK(q<F6>(0.0f) > q<F6>(1e-6f));                              // not monotone
  using F8 = po2_quadratic<8>;  // 0 -> 2^-64, below q(1e-7) = 2^-24: monotone, not idempotent
  CHECK(q<F8>(0.0f) == std::ldexp(1.0f, -64));
  CHECK(q<F8>(std::ldexp(1.0f, -64)) == std::ldexp(1.0f, -64));
  CHECK(q<F8>(std::ldexp(1.0f, -100)) == std::ldexp(1.0f, -64));
  check_monotone<F8>(xs, [](float) { return false; });
  // the kit agrees: everything it reports is one of those laws, its neighbour / half-step
  // consequences (q(0) is no neighbour of 0; log-domain rounding is not linear nearest) or
  // values() leaving out the non-idempotent values below 1e-7
  check_laws_except<po2_quadratic<4>>({"monotonicity", "neighbours", "half-step"});
  check_laws_except<po2_quadratic<6>>(
      {"monotonicity", "idempotence", "neighbours", "half-step", "values() spans", "decode(encode(decode("});
  check_laws_except<po2_quadratic<4, no_max_value, toward_zero>>({"monotonicity", "neighbours"});
  check_laws_except<po2_quadratic<8>>({"idempotence", "neighbours", "half-step", "values() spans", "decode(encode(decode("});
}

TEST_CASE("relu_po2 negative slope: traits and golden values (QKeras quantized_relu_po2)") {
  // rule: x >= 0 (and -0) as relu_po2; x < 0 -> -2^e(|x| * s), same range [-8, 7], Bits + 1 bits
  using L = relu_po2<4, no_max_value, log2_nearest, 0.25>;
  static_assert(L::bits == 5 && L::tuple == bit_tuple{1, 4, 0} && L::is_signed && L::exponent_bits == 4);
  static_assert(L::exponent_min == -8 && L::exponent_max == 7 && L::negative_slope == 0.25);
  static_assert(L::max_value == 128.0 && L::min_value == -128.0 && !L::has_zero);
  static_assert(relu_po2<4>::bits == 4 && !relu_po2<4>::is_signed);  // no slope: unchanged
  CHECK(L::name() == "relu_po2<4,negative_slope=2^-2>");
  CHECK(relu_po2<3, 6.0, toward_zero, 0.5, true>::name() == "relu_po2<3,max=6,toward_zero,negative_slope=2^-1,quadratic>");
  CHECK(relu_po2<4, no_max_value, log2_nearest, 1.0>::name() == "relu_po2<4,negative_slope=2^0>");
  CHECK(q<L>(3.0f) == 4.0f);
  CHECK(q<L>(0.0f) == 0.00390625f);
  CHECK(q<L>(-0.0f) == 0.00390625f);   // -0 >= 0: the positive path
  CHECK(q<L>(-1.0f) == -0.25f);        // 0.25
  CHECK(q<L>(-0.25f) == -0.0625f);     // not idempotent: q(q(-1)) != q(-1)
  CHECK(q<L>(-3.0f) == -1.0f);         // 0.75 = 1.5 * 2^-1 > sqrt(2) * 2^-1
  CHECK(q<L>(-2.8f) == -0.5f);         // 0.7 = 1.4 * 2^-1
  CHECK(q<L>(-1e-9f) == -0.00390625f); // |x| s below the range: -2^-8
  CHECK(q<L>(-1e-45f) == -0.00390625f);
  CHECK(q<L>(-300.0f) == -64.0f);      // 75 = 1.17 * 2^6
  CHECK(q<L>(-400.0f) == -128.0f);     // 100 = 1.56 * 2^6
  CHECK(q<L>(-1000.0f) == -128.0f);    // 250, clipped to 2^7
  CHECK(q<L>(-inf) == -128.0f);
  CHECK(q<L>(inf) == 128.0f);
  CHECK(std::isnan(q<L>(qnan)));
  // max_value clips |x| * s too (QKeras clips relu(-x) * s to max_value)
  using M = relu_po2<3, 6.0, log2_nearest, 0.5>;  // field 3, exponent sign: [-4, min(3, 3)]
  static_assert(M::exponent_min == -4 && M::exponent_max == 3 && M::bits == 4);
  CHECK(q<M>(-100.0f) == -8.0f);
  CHECK(q<M>(-7.0f) == -4.0f);  // 3.5 = 1.75 * 2
  CHECK(q<M>(100.0f) == 8.0f);
  // quadratic and slope together: x < 0 -> -4^j of |x| * s, |x| * s < 1e-7 -> -2^min_exp
  using LQ = relu_po2<4, no_max_value, log2_nearest, 0.25, true>;  // exponents -16..12, zero -8
  static_assert(LQ::bits == 5 && LQ::exponent_min == -16 && LQ::exponent_max == 12);
  CHECK(q<LQ>(-8.0f) == -1.0f);    // 2 -> tie -> 4^0
  CHECK(q<LQ>(-12.0f) == -4.0f);   // 3
  CHECK(q<LQ>(-1e-7f) == -0.00390625f);
  CHECK(q<LQ>(-0.0f) == 0.00390625f);
  CHECK(q<LQ>(12.0f) == 16.0f);
}

TEST_CASE("relu_po2 negative slope: exhaustive code tables") {
  // layout [sign | e - exponent_min]: every code decodes by the layout; a positive code
  // re-encodes to itself, a negative one to the code of -2^clip(e + log2 s)
  auto table = [](auto t, int lo, int hi, int slope_exp) {
    using F = typename decltype(t)::type;
    constexpr int field = F::bits - 1;
    nearest_even r;
    for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
      const int e = lo + static_cast<int>(c & ((1u << field) - 1u));
      const bool neg = (c >> field) & 1u;
      const float v = neg ? -std::ldexp(1.0f, e) : std::ldexp(1.0f, e);
      CAPTURE(c);
      CHECK(F::decode_one(c) == v);
      if (e > hi) continue;
      const int e2 = neg ? std::clamp(e + slope_exp, lo, hi) : e;
      CHECK(F::encode_one(v, r) == ((neg ? 1u : 0u) << field | static_cast<std::uint32_t>(e2 - lo)));
    }
  };
  table(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 0.25>>{}, -8, 7, -2);
  table(std::type_identity<relu_po2<3, 6.0, log2_nearest, 0.5>>{}, -4, 3, -1);
  table(std::type_identity<relu_po2<2, 1.0, toward_zero, 0.125>>{}, -3, 0, -3);
  table(std::type_identity<relu_po2<8, no_max_value, log2_nearest, 0.0078125>>{}, -128, 127, -7);
  table(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 4.0>>{}, -8, 7, 2);  // QKeras allows s > 1
  nearest_even r;
  using L = relu_po2<4, no_max_value, log2_nearest, 0.25>;
  CHECK(L::encode_one(-1.0f, r) == 0b10110u);  // -2^-2: sign, field 6
  CHECK(L::encode_one(3.0f, r) == 0b01010u);
  CHECK(L::encode_one(0.0f, r) == 0u);
  CHECK(L::encode_one(-1e-9f, r) == 0b10000u);
  CHECK_THROWS_AS(L::encode_one(qnan, r), qnas::invalid_argument);
  // values() lists the codes with encode(decode(c)) == c: the positives and -2^-8 only
  std::vector<float> v = po2_values(-8, 7, false);
  v.insert(v.begin(), -0.00390625f);
  CHECK(values<L>() == v);
}

TEST_CASE("relu_po2 negative slope == leaky_relu(s) then the signed po2 of Bits + 1") {
  // QKeras fact checked on every input: same min_exp / max_exp (Bits non-sign bits), same
  // max_value clip, same zero rule; only where s * x underflows to -0 does the float
  // composition lose the sign (qnas follows quantized_relu_po2: the sign of x)
  const auto xs = spread_inputs(33, 20000);
  auto same = [&](auto t, auto u, float s) {
    using L = typename decltype(t)::type;
    using P = typename decltype(u)::type;
    static_assert(L::bits == P::bits && L::exponent_min == P::exponent_min && L::exponent_max == P::exponent_max);
    for (float x : xs) {
      const float leaky = x < 0.0f ? x * s : x;
      if (x < 0.0f && leaky == 0.0f) continue;
      CAPTURE(x);
      REQUIRE(q<L>(x) == q<P>(leaky));
      REQUIRE(std::signbit(q<L>(x)) == std::signbit(q<P>(leaky)));
      nearest_even r;
      REQUIRE(L::encode_one(x, r) == P::encode_one(leaky, r));
    }
  };
  same(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 0.25>>{}, std::type_identity<po2<5>>{}, 0.25f);
  same(std::type_identity<relu_po2<3, 6.0, toward_zero, 0.5>>{}, std::type_identity<po2<4, 6.0, toward_zero>>{}, 0.5f);
  same(std::type_identity<relu_po2<4, 0.5, nearest_even, 0.125>>{}, std::type_identity<po2<5, 0.5, nearest_even>>{}, 0.125f);
  same(std::type_identity<relu_po2<8, no_max_value, log2_nearest, 0.0078125>>{}, std::type_identity<po2<9>>{}, 0.0078125f);
  same(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 0.25, true>>{}, std::type_identity<po2_quadratic<5>>{}, 0.25f);
  same(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 4.0>>{}, std::type_identity<po2<5>>{}, 4.0f);
  // the underflow case: s * x = -0 in float, yet QKeras's relu_po2 (and qnas) keep the sign of x
  CHECK(q<relu_po2<4, no_max_value, log2_nearest, 0.25>>(-1e-45f) == -0.00390625f);
  CHECK(q<po2<5>>(-1e-45f * 0.25f) == 0.00390625f);
}

TEST_CASE("relu_po2 negative slope: laws") {
  const auto xs = spread_inputs(44, 20000);
  auto laws = [&](auto t) {
    using F = typename decltype(t)::type;
    check_round_trip<F>(xs);
    check_monotone<F>(xs, [](float) { return false; });  // monotone: leaky_relu and po2 are
    check_laws_except<F>({"idempotence", "neighbours", "half-step", "values() spans", "decode(encode(decode("});
  };
  laws(std::type_identity<relu_po2<4, no_max_value, log2_nearest, 0.25>>{});
  laws(std::type_identity<relu_po2<3, 6.0, toward_zero, 0.5>>{});
  laws(std::type_identity<relu_po2<8, no_max_value, nearest_even, 0.0078125>>{});
  // s = 1 is po2<Bits + 1>: every law holds
  const auto report = testing::check_format<relu_po2<4, no_max_value, nearest_even, 1.0>>();
  CHECK_MESSAGE(static_cast<bool>(report), report);
  const auto report2 = testing::check_format<relu_po2<4, no_max_value, toward_zero, 1.0>>();
  CHECK_MESSAGE(static_cast<bool>(report2), report2);
}
