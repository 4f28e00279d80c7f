// bfp_nonuniform: golden blocks for the log2 default and a custom codebook (nearest level,
// ties to the even index), equality with bfp for uniform levels, corners, round trips, laws.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/formats/bfp_nonuniform.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

template <class F>
std::vector<float> qblock(const std::vector<float>& in) {
  std::vector<float> out(in.size());
  typename F::rounding round;
  F::quantize_block(in.data(), out.data(), in.size(), round);
  return out;
}

template <class F>
void check_laws() {
  const auto report = testing::check_format<F>();
  CHECK_MESSAGE(static_cast<bool>(report), report);
}

struct four_levels {  // a user codebook for 3-bit elements (sign + 2 index bits)
  static constexpr std::array<double, 4> magnitudes{0.0, 0.1, 0.25, 0.55};
};
struct no_zero_levels {  // no zero level: 0 is not representable
  static constexpr std::array<double, 2> magnitudes{0.2, 0.6};
};

using L = bfp_nonuniform<4, 16>;  // log2 levels {0, 2^-7, ..., 2^-1}
}  // namespace

TEST_CASE("bfp_nonuniform traits") {
  static_assert(L::family == format_family::codebook && L::tuple == bit_tuple{1, 0, 3});
  static_assert(L::bits == 4 && L::scale_bits == 8 && amortized_bits_v<L> == 4.5);
  static_assert(L::level_count == 8 && L::has_zero);
  static_assert(log2_levels<4>::magnitudes[1] == 0x1p-7 && log2_levels<4>::magnitudes[7] == 0.5);
  static_assert(L::scale_min == -128 && L::scale_max == 127 && L::max_value == 0x1p127);
  static_assert(bfp_nonuniform<2, 4, no_zero_levels>::has_zero == false);
  static_assert(bfp_nonuniform<3, 8, four_levels>::level_count == 4);
  static_assert(block_format<L>);
  CHECK(L::name() == "bfp_nonuniform<4,16,log2>");
  CHECK(bfp_nonuniform<4, 16, uniform_levels<4>>::name() == "bfp_nonuniform<4,16,uniform>");
  CHECK(bfp_nonuniform<3, 8, four_levels, 6>::name() == "bfp_nonuniform<3,8,{0,0.1,0.25,0.55},scale_bits=6>");
}

TEST_CASE("bfp_nonuniform<4,16> (log2 levels) golden block") {
  // rule: X = floor(log2 1.5) = 0, scale 2^(X+1) = 2; nearest level of |x| / 2, ties to the even index
  const std::vector<float> in = {1.5f, 0.3f, -0.1f, 0.01f, 0.75f, 0.0f, -0.0f, 0.002f};
  const std::vector<float> expect = {1.0f, 0.25f, -0.125f, 0.015625f, 0.5f, 0.0f, 0.0f, 0.0f};
  // 0.75 -> 0.5 (top level); 0.15 -> 0.125 (mid 0.1875 to 0.25); 0.05 -> 0.0625 (mid 0.046875);
  // 0.005 -> 2^-7 (mid 2^-8); 0.375 is the tie of 0.25 (index 6) and 0.5 (index 7) -> 0.25;
  // 0.001 < 2^-8 -> 0
  CHECK(qblock<L>(in) == expect);
  std::uint32_t codes[8];
  nearest_even r;
  CHECK(L::encode_block(in.data(), codes, 8, r) == 0x00u);
  const std::uint32_t expect_codes[8] = {7, 5, 8 | 4, 1, 6, 0, 0, 0};
  for (int i = 0; i < 8; ++i) CHECK(codes[i] == expect_codes[i]);
}

TEST_CASE("bfp_nonuniform custom codebook golden block") {
  using C = bfp_nonuniform<3, 8, four_levels>;
  // rule: X = 0 (max 1.0), scale 2; midpoints 0.05, 0.175, 0.4 between the levels
  const std::vector<float> in = {1.0f, 0.3f, 0.12f, -0.05f, -0.9f, 0.36f};
  const std::vector<float> expect = {0.55f * 2, 0.1f * 2, 0.1f * 2, 0.0f, -0.55f * 2, 0.25f * 2};
  // 0.5 -> 0.55; 0.15 -> 0.1; 0.06 -> 0.1; 0.025 -> 0; 0.45 -> 0.55; 0.18 -> 0.25
  CHECK(qblock<C>(in) == expect);
  // no zero level: zeros and tiny values become +-0.2 * 2^(X+1)
  using Z = bfp_nonuniform<2, 4, no_zero_levels>;
  CHECK(qblock<Z>({1.0f, 0.0f, -0.01f}) == std::vector<float>{1.2f, 0.4f, -0.4f});
  const auto zq = qblock<Z>({0.0f, 0.0f});
  CHECK(zq[0] == static_cast<float>(0.2f * std::ldexp(1.0, Z::scale_min + 1)));
}

TEST_CASE("bfp_nonuniform with uniform levels equals bfp") {
  // same shared exponent, levels k/8 * 2^(X+1) = k * 2^(X-2), ties to even k = RNE
  using U = bfp_nonuniform<4, 16, uniform_levels<4>>;
  static_assert(U::scale_min == msfp12::scale_min && U::scale_max == msfp12::scale_max &&
                U::max_value == msfp12::max_value);
  std::mt19937 eng(29);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ed(-140, 120);
  for (int b = 0; b < 2000; ++b) {
    std::vector<float> in(16);
    const int e = ed(eng);
    for (auto& v : in) v = std::ldexp(nd(eng), e);
    if (b % 5 == 0) in[3] = in[0] * 0.5f + std::ldexp(0.125f, e);  // exercise ties
    CHECK(qblock<U>(in) == qblock<msfp12>(in));
  }
}

TEST_CASE("bfp_nonuniform corners and round trips") {
  std::vector<float> in(16, 1.0f);
  in[2] = qnan;
  for (float v : qblock<L>(in)) CHECK(std::isnan(v));
  std::uint32_t codes[16];
  nearest_even r;
  CHECK_THROWS_WITH_AS(L::encode_block(in.data(), codes, 16, r), doctest::Contains("block element 2 is NaN"),
                       qnas::invalid_argument);
  // Inf: X = scale_max, the top level
  const auto qi = qblock<L>({-inf, 1.0f});
  CHECK(qi[0] == -0x1p127f);
  CHECK(qi[1] == 0.0f);
  // ragged tail and blocking axis, bit-exact decode(encode)
  std::mt19937 eng(31);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  xt::xarray<float> t = xt::zeros<float>({6, 37});
  for (auto& v : t) v = nd(eng);
  for (std::ptrdiff_t axis : {0, 1}) {
    CHECK(decode(encode<L>(t, axis)) == quantize<L>(t, axis));
    CHECK(decode(encode<bfp_nonuniform<3, 8, four_levels, 6>>(t, axis)) ==
          quantize<bfp_nonuniform<3, 8, four_levels, 6>>(t, axis));
  }
  xt::xarray<float> col = quantize<L>(t, 0);
  xt::xarray<float> tt = xt::transpose(t);
  xt::xarray<float> back = xt::transpose(quantize<L>(tt, 1));
  CHECK(col == back);
}

TEST_CASE("bfp_nonuniform laws (check_format)") {
  check_laws<L>();
  check_laws<bfp_nonuniform<3, 8, four_levels>>();
  check_laws<bfp_nonuniform<2, 4, no_zero_levels>>();
  check_laws<bfp_nonuniform<6, 32>>();
  check_laws<bfp_nonuniform<4, 16, uniform_levels<4>, 5>>();
}
