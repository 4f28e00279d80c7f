// po2 / relu_po2: hand-derived golden values (QKeras quantized_po2 / quantized_relu_po2),
// every rounding policy, exhaustive code tables, corners and the format laws.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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
