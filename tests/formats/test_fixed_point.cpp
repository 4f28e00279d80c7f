// fixed_point / fixed_relu: hand-derived golden values (QKeras quantized_bits, alpha = 1),
// every rounding policy, exhaustive 8-bit code tables, corners and the format laws.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

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
