// fixed_point / fixed_relu: hand-derived golden values (QKeras quantized_bits, alpha = 1),
// every rounding policy, exhaustive 8-bit code tables, corners and the format laws.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
template <class F>
float q(float x) {
  return quantize_value<F>(x);
}
}  // namespace

TEST_CASE("fixed_point traits") {
  using F = fixed_point<4, 0>;
  static_assert(F::tuple == bit_tuple{1, 0, 3});  // m-quant with m bits is (1, 0, m-1)
  static_assert(F::bits == 4 && F::block_size == 1 && amortized_bits_v<F> == 4.0);
  static_assert(F::step == 0.125f && F::max_value == 0.875 && F::min_value == -1.0);
  static_assert(fixed_point<4, 0, true, true>::min_value == -0.875);
  static_assert(fixed_relu<4, 0>::tuple == bit_tuple{0, 0, 4});
  static_assert(fixed_relu<4, 0>::max_value == 0.9375 && fixed_relu<4, 0>::min_value == 0.0);
  static_assert(fixed_point<8, 3>::step == 0.0625f && fixed_point<8, 3>::max_value == 7.9375);
  static_assert(int8::max_value == 127.0 && int8::min_value == -128.0);
  static_assert(number_format<F> && scalar_format<F> && !block_format<F>);
  CHECK(F::name() == "fixed_point<4,0>");
  CHECK(fixed_relu<3, 1>::name() == "fixed_relu<3,1>");
  CHECK(fixed_point<8, 0, true, true, stochastic>::name() == "fixed_point<8,0,symmetric,stochastic>");
}

TEST_CASE("fixed_point<4,0> golden values, round half to even") {
  using F = fixed_point<4, 0>;  // step 1/8, codes -8..7
  CHECK(q<F>(0.3f) == 0.25f);      // 2.4 -> 2
  CHECK(q<F>(0.3125f) == 0.25f);   // 2.5 -> 2 (tie to even)
  CHECK(q<F>(0.4375f) == 0.5f);    // 3.5 -> 4 (tie to even)
  CHECK(q<F>(-0.3125f) == -0.25f); // -2.5 -> -2
  CHECK(q<F>(-0.4375f) == -0.5f);  // -3.5 -> -4
  CHECK(q<F>(1.5f) == 0.875f);     // 12 -> saturates at 7
  CHECK(q<F>(-2.0f) == -1.0f);     // -16 -> saturates at -8
  CHECK(q<F>(inf) == 0.875f);
  CHECK(q<F>(-inf) == -1.0f);
  CHECK(std::isnan(q<F>(std::numeric_limits<float>::quiet_NaN())));
  CHECK(q<F>(1e-30f) == 0.0f);
  CHECK(!std::signbit(q<F>(-0.01f)));  // rounds to a zero code: +0, as decode gives (no -0 code)
  CHECK(!std::signbit(q<F>(-0.0f)));
  CHECK(q<fixed_point<4, 0, true, true>>(-2.0f) == -0.875f);  // symmetric: codes -7..7
}

TEST_CASE("fixed_point rounding policies on ties and fractions") {
  // rule: nearest_away rounds ties away from zero; toward_zero truncates.
  using A = fixed_point<4, 0, true, false, nearest_away>;
  using Z = fixed_point<4, 0, true, false, toward_zero>;
  CHECK(q<A>(0.3125f) == 0.375f);   // 2.5 -> 3
  CHECK(q<A>(-0.3125f) == -0.375f); // -2.5 -> -3
  CHECK(q<A>(0.3f) == 0.25f);       // 2.4 -> 2
  CHECK(q<Z>(0.3125f) == 0.25f);    // 2.5 -> 2
  CHECK(q<Z>(0.37f) == 0.25f);      // 2.96 -> 2
  CHECK(q<Z>(-0.37f) == -0.25f);    // -2.96 -> -2
  CHECK(q<Z>(5.0f) == 0.875f);
}

TEST_CASE("fixed_relu golden values (QKeras quantized_relu)") {
  using R = fixed_relu<4, 0>;  // step 1/16, codes 0..15
  CHECK(q<R>(0.3f) == 0.3125f);  // 4.8 -> 5
  CHECK(q<R>(-0.5f) == 0.0f);
  CHECK(q<R>(2.0f) == 0.9375f);
  using R2 = fixed_relu<3, 1>;  // step 2^(1-3) = 1/4, codes 0..7, max 1.75
  CHECK(q<R2>(1.3f) == 1.25f);
  CHECK(q<R2>(9.0f) == 1.75f);
}

TEST_CASE("fixed_point stochastic rounding is unbiased and reproducible") {
  using S = fixed_point<4, 0, true, false, stochastic>;
  xt::xarray<float> x = xt::ones<float>({20000}) * 0.3f;  // between 0.25 and 0.375, 40% up
  std::mt19937 e1(7), e2(7);
  auto a = quantize<S>(x, last_axis, e1);
  auto b = quantize<S>(x, last_axis, e2);
  CHECK(a == b);
  double sum = 0;
  for (float v : a) {
    REQUIRE((v == 0.25f || v == 0.375f));
    sum += v;
  }
  CHECK(sum / a.size() == doctest::Approx(0.3).epsilon(0.01));
}

TEST_CASE("fixed_point encode/decode codes") {
  using F = fixed_point<4, 0>;
  xt::xarray<float> x = {0.25f, -0.25f, -1.0f, 0.875f, 0.0f};
  auto e = encode<F>(x);
  REQUIRE(e.codes.size() == 3);  // 5 codes x 4 bits, packed
  // codes 2, 14, 8, 7, 0 packed LSB first: bytes 0xE2, 0x78, 0x00
  CHECK(e.codes[0] == 0xE2);
  CHECK(e.codes[1] == 0x78);
  CHECK(e.codes[2] == 0x00);
  CHECK(decode(e) == quantize<F>(x));
  xt::xarray<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(encode<F>(bad), doctest::Contains("input element 1 is NaN"), qnas::invalid_argument);
}

TEST_CASE("fixed_point<8,0>: exhaustive code table") {
  using F = fixed_point<8, 0>;
  for (std::uint32_t c = 0; c < 256; ++c) {
    const auto k = static_cast<std::int8_t>(static_cast<std::uint8_t>(c));
    CHECK(F::decode_one(c) == static_cast<float>(k) / 128.0f);
    nearest_even r;
    CHECK(F::encode_one(F::decode_one(c), r) == c);
  }
  CHECK(values<F>().size() == 256);
  CHECK(values<fixed_point<8, 0, true, true>>().size() == 255);  // -128/128 unused
  CHECK(values<fixed_relu<8, 0>>().size() == 256);
  CHECK(values<fixed_relu<8, 0>>().back() == 255.0f / 256.0f);
}

TEST_CASE("fixed_point quantizes along any axis identically (scalar format)") {
  using F = fixed_point<6, 1>;
  xt::xarray<float> x = {{0.1f, 0.2f}, {0.3f, -0.4f}};
  CHECK(quantize<F>(x, 0) == quantize<F>(x, 1));
  CHECK_THROWS_AS(quantize<F>(x, 2), qnas::invalid_argument);
}

TEST_CASE("fixed_point laws (check_format)") {
  auto check = [](auto t) {
    using F = typename decltype(t)::type;
    const auto report = testing::check_format<F>();
    CHECK_MESSAGE(static_cast<bool>(report), report);
  };
  check(std::type_identity<fixed_point<8, 0>>{});
  check(std::type_identity<fixed_point<4, 2, true, true>>{});
  check(std::type_identity<fixed_point<2, 0>>{});
  check(std::type_identity<fixed_relu<4, 0>>{});
  check(std::type_identity<fixed_point<8, 0, true, false, nearest_away>>{});
  check(std::type_identity<fixed_point<8, 0, true, false, toward_zero>>{});
  check(std::type_identity<fixed_point<8, 0, true, false, stochastic>>{});
  check(std::type_identity<fixed_point<16, 4>>{});
  check(std::type_identity<int8>{});
}

// ---------------------------------------------------------------------------------------------
// Above 24 bits (issue #18): exact int32 / uint32 codes; a code's value is the float nearest to
// k * step. Hand-derived below: k = x * 2^-step_exponent rounded (ties to even), clamped to
// [lo, hi]; a float has 24 significant bits, so between 2^24 and 2^25 only even k are floats.
// ---------------------------------------------------------------------------------------------

namespace {
template <class F>
std::uint32_t enc(float x) {
  auto r = detail::make_rounder<F>();
  return F::encode_one(x, r);
}
}  // namespace

TEST_CASE("fixed_point above 24 bits: traits") {
  using F25 = fixed_point<25, 24>;  // integer-valued, k in [-2^24, 2^24 - 1], step 1
  using F31 = fixed_point<31, 0>;   // step 2^-30
  using F32 = fixed_point<32, 0>;   // step 2^-31
  using I32 = fixed_point<32, 31>;  // int32
  using U32 = fixed_relu<32, 32>;   // uint32
  static_assert(F25::bits == 25 && F25::step == 1.0f && F25::hi_code == (1 << 24) - 1 && F25::lo_code == -(1 << 24));
  static_assert(F25::max_value == 16777215.0 && F25::min_value == -16777216.0);  // still exact at 25 bits
  static_assert(F31::step_exponent == -30 && F31::hi_code == 1073741823 && F31::lo_code == -1073741824);
  static_assert(F32::tuple == bit_tuple{1, 0, 31} && F32::step == 0x1p-31f);
  static_assert(F32::hi_code == 2147483647 && F32::lo_code == -2147483648LL);
  // max_value is the float value of hi_code: the nearest float to 1 - 2^-31 is 1
  static_assert(F32::max_value == 1.0 && F32::min_value == -1.0);
  static_assert(fixed_point<32, 0, true, true>::min_value == -1.0);  // -(1 - 2^-31) rounds to -1 too
  static_assert(I32::max_value == 2147483648.0 && I32::min_value == -2147483648.0);
  static_assert(U32::hi_code == 4294967295LL && U32::lo_code == 0 && U32::max_value == 4294967296.0);
  static_assert(U32::tuple == bit_tuple{0, 0, 32});
  static_assert(number_format<F32> && scalar_format<U32>);
  CHECK(F32::name() == "fixed_point<32,0>");
  CHECK(U32::name() == "fixed_relu<32,32>");
  CHECK(fixed_point<31, 3, true, true, toward_zero>::name() == "fixed_point<31,3,symmetric,toward_zero>");
}

TEST_CASE("fixed_point<25, 24>: integer values, ties to even, the first width above float's 24-bit integers") {
  using F = fixed_point<25, 24>;
  CHECK(q<F>(2.5f) == 2.0f);
  CHECK(q<F>(3.5f) == 4.0f);
  CHECK(q<F>(-2.5f) == -2.0f);
  CHECK(q<F>(-0.4f) == 0.0f);
  CHECK(!std::signbit(q<F>(-0.4f)));
  CHECK(!std::signbit(q<F>(-0.0f)));
  CHECK(q<F>(16777215.0f) == 16777215.0f);  // hi = 2^24 - 1 is a float
  CHECK(q<F>(16777216.0f) == 16777215.0f);  // 2^24 clamps to hi
  CHECK(q<F>(1e30f) == 16777215.0f);
  CHECK(q<F>(inf) == 16777215.0f);
  CHECK(q<F>(-16777216.0f) == -16777216.0f);
  CHECK(q<F>(-inf) == -16777216.0f);
  CHECK(std::isnan(q<F>(std::numeric_limits<float>::quiet_NaN())));
  CHECK(enc<F>(16777215.0f) == 0x0FFFFFFu);
  CHECK(enc<F>(-16777216.0f) == 0x1000000u);  // the sign bit alone
  CHECK(enc<F>(-1.0f) == 0x1FFFFFFu);
  CHECK(enc<F>(inf) == 0x0FFFFFFu);
  CHECK(enc<F>(-inf) == 0x1000000u);
  CHECK(F::decode_one(0x1000000u) == -16777216.0f);
  CHECK(F::decode_one(0x1FFFFFFu) == -1.0f);
  CHECK(F::decode_one(0x0FFFFFFu) == 16777215.0f);
  // a NaN reaching encode_one directly gives code 0 (encode<F>() refuses it first)
  CHECK(enc<F>(std::numeric_limits<float>::quiet_NaN()) == 0u);
  // the relu flavour at 25 bits: k in [0, 2^25 - 1]; 2^25 - 1 is not a float (its value is 2^25)
  using R = fixed_relu<25, 25>;
  static_assert(R::hi_code == 33554431 && R::max_value == 33554432.0);
  CHECK(enc<R>(inf) == 0x1FFFFFFu);
  CHECK(R::decode_one(0x1FFFFFFu) == 33554432.0f);
  CHECK(q<R>(inf) == 33554432.0f);
  CHECK(q<R>(33554430.0f) == 33554430.0f);
  CHECK(enc<R>(33554430.0f) == 0x1FFFFFEu);
  CHECK(q<R>(-5.0f) == 0.0f);
  CHECK(enc<R>(-inf) == 0u);
}

TEST_CASE("fixed_point<31, 0> and <32, 0>: ties, extremes, saturation") {
  using F31 = fixed_point<31, 0>;  // step 2^-30
  // ties below 2^-7 (where x / step has a fraction): 2.5 steps -> 2, 3.5 -> 4
  CHECK(q<F31>(2.5f * 0x1p-30f) == 2.0f * 0x1p-30f);
  CHECK(q<F31>(3.5f * 0x1p-30f) == 4.0f * 0x1p-30f);
  CHECK(q<F31>(-2.5f * 0x1p-30f) == -2.0f * 0x1p-30f);
  CHECK(enc<F31>(-3.5f * 0x1p-30f) == 0x7FFFFFFCu);  // k = -4 in 31 bits
  CHECK(F31::decode_one(0x7FFFFFFCu) == -4.0f * 0x1p-30f);
  CHECK(q<F31>(0.4f * 0x1p-30f) == 0.0f);
  // every float of magnitude >= 2^-7 is a multiple of 2^-30 below 1: q is the identity there
  CHECK(q<F31>(0.7f) == 0.7f);
  CHECK(q<F31>(-0.123456f) == -0.123456f);
  // ends: hi = 2^30 - 1 steps = 1 - 2^-30, whose nearest float is 1; lo = -1 exactly
  CHECK(q<F31>(0.99999994f) == 0.99999994f);  // the float below 1 is 2^30 - 64 steps
  CHECK(q<F31>(1.0f) == 1.0f);                // clamped to hi, whose value is the float 1
  CHECK(q<F31>(inf) == 1.0f);
  CHECK(q<F31>(-inf) == -1.0f);
  CHECK(enc<F31>(1.0f) == 0x3FFFFFFFu);
  CHECK(enc<F31>(inf) == 0x3FFFFFFFu);
  CHECK(enc<F31>(-inf) == 0x40000000u);
  CHECK(enc<F31>(0.99999994f) == 0x3FFFFFC0u);
  CHECK(F31::decode_one(0x3FFFFFFFu) == 1.0f);
  CHECK(F31::decode_one(0x40000000u) == -1.0f);
  CHECK(F31::decode_one(0x7FFFFFFFu) == -0x1p-30f);  // k = -1

  using F32 = fixed_point<32, 0>;  // step 2^-31
  CHECK(q<F32>(0.5f * 0x1p-31f) == 0.0f);  // tie 0.5 -> 0 (even)
  CHECK(q<F32>(1.5f * 0x1p-31f) == 2.0f * 0x1p-31f);
  CHECK(q<F32>(-1.5f * 0x1p-31f) == -2.0f * 0x1p-31f);
  CHECK(!std::signbit(q<F32>(-0.5f * 0x1p-31f)));  // -0.5 -> -0 -> +0, as decode(0) gives
  CHECK(!std::signbit(q<F32>(-0.0f)));
  CHECK(enc<F32>(-0.0f) == 0u);
  CHECK(enc<F32>(1e-30f) == 0u);
  CHECK(q<F32>(inf) == 1.0f);
  CHECK(q<F32>(3.0e38f) == 1.0f);
  CHECK(q<F32>(-inf) == -1.0f);
  CHECK(q<F32>(-1.0f) == -1.0f);
  CHECK(q<F32>(-2.0f) == -1.0f);
  CHECK(enc<F32>(inf) == 0x7FFFFFFFu);
  CHECK(enc<F32>(1.0f) == 0x7FFFFFFFu);  // k = 2^31 clamps to 2^31 - 1
  CHECK(enc<F32>(-1.0f) == 0x80000000u);
  CHECK(enc<F32>(-inf) == 0x80000000u);
  CHECK(enc<F32>(-0x1p-31f) == 0xFFFFFFFFu);
  CHECK(enc<F32>(0.5f) == 0x40000000u);
  CHECK(F32::decode_one(0x7FFFFFFFu) == 1.0f);
  CHECK(F32::decode_one(0x80000000u) == -1.0f);
  CHECK(F32::decode_one(0xFFFFFFFFu) == -0x1p-31f);
  CHECK(F32::decode_one(0x40000000u) == 0.5f);
  CHECK(F32::decode_one(0x00000001u) == 0x1p-31f);
  // 2^24 + 1 steps is not a float: decode gives the nearest, 2^24 steps (tie to even)
  CHECK(F32::decode_one(0x01000001u) == 0x1p-7f);
  CHECK(F32::decode_one(0x01000003u) == (16777220.0f * 0x1p-31f));  // 2^24 + 3 -> 2^24 + 4
  CHECK(std::isnan(q<F32>(std::numeric_limits<float>::quiet_NaN())));
  // symmetric: lo = -(2^31 - 1), whose float is -2^31 too; the code differs
  using S32 = fixed_point<32, 0, true, true>;
  CHECK(enc<S32>(-inf) == 0x80000001u);
  CHECK(q<S32>(-inf) == -1.0f);
  CHECK(S32::decode_one(0x80000001u) == -1.0f);
}

TEST_CASE("fixed_point<32, 31> (int32) and fixed_relu<32, 32> (uint32)") {
  using I = fixed_point<32, 31>;  // step 1
  CHECK(q<I>(2.5f) == 2.0f);
  CHECK(q<I>(-3.5f) == -4.0f);
  CHECK(q<I>(123456789.0f) == 123456792.0f);  // already a float (the input itself)
  CHECK(enc<I>(123456789.0f) == 123456792u);
  CHECK(q<I>(2147483520.0f) == 2147483520.0f);  // the largest float below 2^31
  CHECK(enc<I>(2147483520.0f) == 2147483520u);
  CHECK(enc<I>(2147483648.0f) == 0x7FFFFFFFu);  // 2^31 clamps to 2^31 - 1 ...
  CHECK(q<I>(2147483648.0f) == 2147483648.0f);  // ... whose value is the float 2^31
  CHECK(enc<I>(-2147483648.0f) == 0x80000000u);
  CHECK(enc<I>(-1e20f) == 0x80000000u);
  CHECK(I::decode_one(0x80000000u) == -2147483648.0f);
  CHECK(I::decode_one(0xFFFFFFFFu) == -1.0f);
  CHECK(I::decode_one(0x7FFFFFFFu) == 2147483648.0f);
  using U = fixed_relu<32, 32>;
  CHECK(enc<U>(inf) == 0xFFFFFFFFu);
  CHECK(enc<U>(4294967040.0f) == 4294967040u);  // the largest float below 2^32
  CHECK(enc<U>(4294967296.0f) == 0xFFFFFFFFu);
  CHECK(q<U>(4294967296.0f) == 4294967296.0f);
  CHECK(U::decode_one(0xFFFFFFFFu) == 4294967296.0f);
  CHECK(U::decode_one(0x80000000u) == 2147483648.0f);  // no sign extension
  CHECK(q<U>(-1.0f) == 0.0f);
  CHECK(enc<U>(-inf) == 0u);
  CHECK(q<U>(0.5f) == 0.0f);
  CHECK(q<U>(1.5f) == 2.0f);
  // stochastic and toward_zero above 24 bits: the float rounding is exact, the clamp is in double
  using Z = fixed_point<32, 31, true, false, toward_zero>;
  CHECK(q<Z>(-2.9f) == -2.0f);
  CHECK(enc<Z>(-2.9f) == 0xFFFFFFFEu);
  std::mt19937 eng(5);
  auto sr = detail::make_rounder<fixed_point<32, 31, true, false, stochastic>>(eng);
  for (int i = 0; i < 100; ++i) {
    const float v = fixed_point<32, 31, true, false, stochastic>::quantize_one(1073741952.0f, sr);  // 2^30 + 128
    REQUIRE(v == 1073741952.0f);  // already an integer: never moved
  }
}

TEST_CASE("fixed_point above 24 bits: q == decode(encode), idempotent, monotone over the float line") {
  // Every law holds; check_format covers the random inputs, this walks the float grid near the
  // ends and across the 2^24-step boundary, where codes and floats part ways.
  auto walk = [](auto t) {
    using F = typename decltype(t)::type;
    nearest_even r;
    std::vector<float> xs;
    for (float c : {static_cast<float>(F::max_value), static_cast<float>(F::min_value), 0.0f,
                    static_cast<float>(16777216.0 * F::step), static_cast<float>(-16777216.0 * F::step),
                    static_cast<float>(F::step)}) {
      float x = c;
      for (int i = 0; i < 300; ++i) x = std::nextafter(x, -inf);
      for (int i = 0; i < 600; ++i, x = std::nextafter(x, inf)) xs.push_back(x);
    }
    std::sort(xs.begin(), xs.end());
    float prev = -inf;
    for (float x : xs) {
      const float v = F::quantize_one(x, r);
      CAPTURE(x);
      REQUIRE(v == F::decode_one(F::encode_one(x, r)));
      REQUIRE(std::signbit(v) == std::signbit(F::decode_one(F::encode_one(x, r))));
      REQUIRE(F::quantize_one(v, r) == v);
      REQUIRE(v >= prev);
      REQUIRE(v <= F::max_value);
      REQUIRE(v >= F::min_value);
      prev = v;
    }
  };
  walk(std::type_identity<fixed_point<25, 0>>{});
  walk(std::type_identity<fixed_point<26, 2>>{});
  walk(std::type_identity<fixed_point<31, 0>>{});
  walk(std::type_identity<fixed_point<32, 0>>{});
  walk(std::type_identity<fixed_point<32, 31>>{});
  walk(std::type_identity<fixed_point<32, -8, true, true>>{});
  walk(std::type_identity<fixed_relu<25, 0>>{});
  walk(std::type_identity<fixed_relu<32, 32>>{});
}

TEST_CASE("fixed_point above 24 bits: encode/decode through the generic operations") {
  using F = fixed_point<32, 0>;
  xt::xarray<float> x = {0.5f, -1.0f, 1.0f, -0x1p-31f, 0.0f};
  auto e = encode<F>(x);
  REQUIRE(e.codes.size() == 20);  // 5 codes x 32 bits
  // codes 0x40000000, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF, 0, each LSB first
  const std::vector<std::uint8_t> expect = {0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x80, 0xFF, 0xFF,
                                            0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00};
  for (std::size_t i = 0; i < expect.size(); ++i) CHECK(e.codes[i] == expect[i]);
  CHECK(decode(e) == quantize<F>(x));
  xt::xarray<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(encode<F>(bad), doctest::Contains("input element 1 is NaN"), qnas::invalid_argument);
}

TEST_CASE("fixed_point above 24 bits: laws (check_format)") {
  auto check = [](auto t) {
    using F = typename decltype(t)::type;
    const auto report = testing::check_format<F>();
    CHECK_MESSAGE(static_cast<bool>(report), report);
  };
  check(std::type_identity<fixed_point<25, 0>>{});
  check(std::type_identity<fixed_point<31, 0>>{});
  check(std::type_identity<fixed_point<32, 0>>{});
  check(std::type_identity<fixed_point<32, 31>>{});
  check(std::type_identity<fixed_point<32, 16, true, true>>{});
  check(std::type_identity<fixed_point<32, 0, true, false, toward_zero>>{});
  check(std::type_identity<fixed_point<32, 0, true, false, nearest_away>>{});
  // (stochastic 32-bit cases: tests/formats/test_stochastic_rounding_large.cpp)
  check(std::type_identity<fixed_relu<25, 0>>{});
  check(std::type_identity<fixed_relu<32, 32>>{});
}
