// bfp / msfp: hand-derived golden blocks for every rounding and scale policy, ragged tails,
// blocking axis, NaN/Inf/zero/saturation corners, bit-exact encode/decode and the laws.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

// Shared exponent 0 (max 1.9), step 2^(0 - 2) = 0.25 for msfp12 (3 magnitude bits).
const std::vector<float> golden_in = {1.0f,   0.3f,  -0.2f, 0.125f, 0.375f, -0.625f, 1.9f, 0.0f,
                                      0.875f, 1.625f, 1.875f, -1.8f, 0.1f,  0.13f,  -0.0f, 1e-20f};

template <class F, class R = typename F::rounding>
std::vector<float> qblock(const std::vector<float>& in) {
  std::vector<float> out(in.size());
  R round;
  F::quantize_block(in.data(), out.data(), in.size(), round);
  return out;
}

template <class F>
void check_laws() {
  const auto report = testing::check_format<F>();
  CHECK_MESSAGE(static_cast<bool>(report), report);
}
}  // namespace

TEST_CASE("bfp traits") {
  using F = msfp12;
  static_assert(std::is_same_v<F, bfp<4, 16, 8, nearest_even, scale_floor>>);
  static_assert(F::tuple == bit_tuple{1, 0, 3} && F::family == format_family::block_fp);
  static_assert(F::bits == 4 && F::block_size == 16 && F::scale_bits == 8);
  static_assert(amortized_bits_v<F> == 4.5 && amortized_bits_v<msfp16> == 8.5);
  static_assert(F::scale_min == -128 && F::scale_max == 127 && F::max_code == 7);
  static_assert(F::max_value == 7.0 * 0x1p125 && F::min_value == -F::max_value);
  static_assert(bfp<24, 4>::scale_min == -127);  // the step 2^(X - 22) must stay >= 2^-149
  static_assert(bfp<4, 4, 4>::scale_min == -8 && bfp<4, 4, 4>::scale_max == 7 && bfp<4, 4, 4>::max_value == 224.0);
  static_assert(block_format<F> && !scalar_format<F>);
  CHECK(F::name() == "bfp<4,16>");
  CHECK(msfp16::name() == "bfp<8,16>");
  CHECK(bfp<4, 8, 6, stochastic, scale_fit>::name() == "bfp<4,8,scale_bits=6,stochastic,scale_fit>");
}

TEST_CASE("msfp12 golden block, round half to even, scale_floor") {
  // rule: X = floor(log2 1.9) = 0, step 0.25, k = RNE(x / 0.25) clamped to [-7, 7]
  const std::vector<float> expect = {1.0f,  0.25f, -0.25f, 0.0f,  0.5f, -0.5f, 1.75f, 0.0f,
                                     1.0f,  1.5f,  1.75f,  -1.75f, 0.0f, 0.25f, 0.0f,  0.0f};
  // 0.3 -> 1.2 -> 1; 0.125 -> 0.5 -> 0 (tie to even); 0.375 -> 1.5 -> 2; -0.625 -> -2.5 -> -2;
  // 1.9 -> 7.6 -> 8 saturates to 7; 1.625 -> 6.5 -> 6; 0.13 -> 0.52 -> 1
  CHECK(qblock<msfp12>(golden_in) == expect);
}

TEST_CASE("bfp<4,16> golden block, other rounding policies") {
  // rule: nearest_away: ties away from zero
  const std::vector<float> away = {1.0f, 0.25f, -0.25f, 0.25f, 0.5f, -0.75f, 1.75f, 0.0f,
                                   1.0f, 1.75f, 1.75f,  -1.75f, 0.0f, 0.25f, 0.0f, 0.0f};
  CHECK(qblock<bfp<4, 16, 8, nearest_away>>(golden_in) == away);
  // rule: toward_zero: truncate x / step
  const std::vector<float> trunc = {1.0f,  0.25f, 0.0f, 0.0f, 0.25f, -0.5f, 1.75f, 0.0f,
                                    0.75f, 1.5f,  1.75f, -1.75f, 0.0f, 0.0f, 0.0f,  0.0f};
  CHECK(qblock<bfp<4, 16, 8, toward_zero>>(golden_in) == trunc);
  // rule: toward_zero never rounds past 7, so scale_fit keeps X = 0
  CHECK(qblock<bfp<4, 16, 8, toward_zero, scale_fit>>(golden_in) == trunc);
}

TEST_CASE("bfp<4,16> golden block, scale_fit") {
  // rule: RNE; 1.9 / 0.25 = 7.6 would round to 8 > 7, so X = 1 and the step is 0.5
  const std::vector<float> expect = {1.0f, 0.5f, -0.0f, 0.0f, 0.5f, -0.5f, 2.0f, 0.0f,
                                     1.0f, 1.5f, 2.0f,  -2.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  // 0.3 -> 0.6 -> 1; -0.2 -> -0.4 -> 0; 0.375 -> 0.75 -> 1; -0.625 -> -1.25 -> -1;
  // 1.9 -> 3.8 -> 4; 0.875 -> 1.75 -> 2; 1.625 -> 3.25 -> 3; 1.875 -> 3.75 -> 4; -1.8 -> -4
  CHECK(qblock<bfp<4, 16, 8, nearest_even, scale_fit>>(golden_in) == expect);
  // a block whose max rounds to <= 7 steps keeps scale_floor's exponent
  const std::vector<float> in = {1.8f, 0.3f};  // 7.2 -> 7
  CHECK(qblock<bfp<4, 16, 8, nearest_even, scale_fit>>(in) == std::vector<float>{1.75f, 0.25f});
}

TEST_CASE("msfp16 golden block") {
  // rule: RNE; max 3.0 -> X = 1, step 2^(1 - 6) = 1/32, magnitudes up to 127
  const std::vector<float> in = {0.1f, 3.0f, -1.01f, 0.015625f, 0.046875f, -2.999f};
  const std::vector<float> expect = {0.09375f, 3.0f, -1.0f, 0.0f, 0.0625f, -3.0f};
  // 0.1 -> 3.2 -> 3; -1.01 -> -32.32 -> -32; 2^-6 -> 0.5 -> 0 (even); 0.046875 -> 1.5 -> 2;
  // -2.999 -> -95.97 -> -96
  CHECK(qblock<msfp16>(in) == expect);
}

TEST_CASE("bfp ragged tail blocks and the blocking axis") {
  using F = bfp<4, 4>;
  // rule: RNE, blocks of 4 along the last axis, the tail block has 2 elements
  xt::xarray<float> x = {1.0f, 0.5f, 0.25f, 0.125f, 0.1f, 0.2f, 0.3f, 3.0f, 0.01f, 0.02f};
  xt::xarray<float> expect = {1.0f, 0.5f, 0.25f, 0.0f,           // X = 0, step 1/4
                              0.0f, 0.0f, 0.5f,  3.0f,           // X = 1, step 1/2
                              0.01171875f, 0.01953125f};         // X = -6, step 2^-8: 2.56 -> 3, 5.12 -> 5
  CHECK(quantize<F>(x) == expect);

  // 4 x 2: along axis 0 each column is one block; along the last axis each row is a ragged block
  xt::xarray<float> m = {{1.0f, 0.01f}, {0.3f, 0.02f}, {0.1f, 0.03f}, {0.2f, 0.015f}};
  xt::xarray<float> along0 = {{1.0f, 0.01171875f}, {0.25f, 0.01953125f}, {0.0f, 0.02734375f}, {0.25f, 0.015625f}};
  // column 1: max 0.03 -> X = -6, step 2^-8: 2.56 -> 3, 5.12 -> 5, 7.68 -> 8 saturates to 7, 3.84 -> 4
  CHECK(quantize<F>(m, 0) == along0);
  xt::xarray<float> along1 = {{1.0f, 0.0f}, {0.3125f, 0.0f}, {0.09375f, 0.03125f}, {0.1875f, 0.0f}};
  // row 0: X = 0, 0.04 -> 0; row 1: max 0.3 -> X = -2, step 1/16: 4.8 -> 5, 0.32 -> 0;
  // row 2: max 0.1 -> X = -4, step 2^-6: 6.4 -> 6, 1.92 -> 2; row 3: X = -3, step 2^-5: 6.4 -> 6, 0.48 -> 0
  CHECK(quantize<F>(m, 1) == along1);
  CHECK(quantize<F>(m, -1) == along1);
  // blocking along axis 0 equals blocking the transpose along its last axis
  xt::xarray<float> mt = xt::transpose(m);
  xt::xarray<float> back = xt::transpose(quantize<F>(mt, 1));
  CHECK(quantize<F>(m, 0) == back);
}

TEST_CASE("bfp corners: NaN, Inf, zeros, clamping below and saturation above") {
  using F = msfp12;
  // NaN: the whole block becomes NaN, other blocks are untouched
  xt::xarray<float> x = xt::zeros<float>({32});
  x(3) = qnan;
  x(16) = 1.0f;
  x(17) = 0.3f;
  auto qx = quantize<F>(x);
  for (int i = 0; i < 16; ++i) CHECK(std::isnan(qx(i)));
  CHECK(qx(16) == 1.0f);
  CHECK(qx(17) == 0.25f);
  CHECK_THROWS_WITH_AS(encode<F>(x), doctest::Contains("input element 3 is NaN"), qnas::invalid_argument);
  std::uint32_t codes[16];
  nearest_even r;
  CHECK_THROWS_WITH_AS(F::encode_block(x.data(), codes, 16, r), doctest::Contains("block element 3 is NaN"),
                       qnas::invalid_argument);
  // Inf saturates, its block gets the largest exponent, small neighbours flush to 0
  CHECK(qblock<F>({inf, 1.0f, -inf}) == std::vector<float>{7.0f * 0x1p125f, 0.0f, -7.0f * 0x1p125f});
  CHECK(qblock<F>({3e38f, -1.0f}) == std::vector<float>{7.0f * 0x1p125f, -0.0f});  // 3e38 = 1.76 * 2^127
  // all zeros: zeros, header scale_min
  const std::vector<float> zeros(16, 0.0f);
  CHECK(qblock<F>(zeros) == zeros);
  CHECK(F::encode_block(zeros.data(), codes, 16, r) == 0x80u);  // -128, two's complement
  // below the exponent range: X = floor(log2) clamps to -128, step 2^-130
  CHECK(qblock<F>({0x1p-140f, 3 * 0x1p-130f}) == std::vector<float>{0.0f, 3 * 0x1p-130f});
  // saturation above with a 4-bit exponent (X <= 7, step <= 32)
  using S = bfp<4, 4, 4>;
  CHECK(qblock<S>({1000.0f, 100.0f, -50.0f, 10.0f}) == std::vector<float>{224.0f, 96.0f, -64.0f, 0.0f});
  // 1000 -> X = 9 clamps to 7; 100 / 32 = 3.125 -> 3; -50 / 32 = -1.56 -> -2; 10 / 32 = 0.31 -> 0
}

TEST_CASE("bfp encode: header and code layout, bit-exact round trip") {
  using F = bfp<4, 4>;
  xt::xarray<float> x = {1.0f, -0.5f, 0.3f, 0.0f, 3.0f, -0.6f};
  auto e = encode<F>(x);
  // block 0: X = 0 -> header 0x00; codes 4, 8|2 = 10, 1, 0
  // block 1: X = 1 -> header 0x01; step 0.5: 3.0 -> 6, -0.6 -> -1.2 -> -1 -> 8|1 = 9
  REQUIRE(e.headers.size() == 2);
  CHECK(e.headers[0] == 0x00);
  CHECK(e.headers[1] == 0x01);
  REQUIRE(e.codes.size() == 3);
  CHECK(e.codes[0] == 0xA4);  // 4 | 10 << 4
  CHECK(e.codes[1] == 0x01);  // 1 | 0 << 4
  CHECK(e.codes[2] == 0x96);  // 6 | 9 << 4
  CHECK(decode(e) == quantize<F>(x));
  // negative exponent header: max 0.1 -> X = -4 -> 0xFC
  std::uint32_t codes[4];
  nearest_even r;
  const float small[2] = {0.1f, -0.05f};
  CHECK(F::encode_block(small, codes, 2, r) == 0xFCu);

  // random tensors along both axes, several formats: decode(encode(x)) == quantize(x) bit for bit
  std::mt19937 eng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  xt::xarray<float> t = xt::zeros<float>({7, 37});
  for (auto& v : t) v = nd(eng) * std::ldexp(1.0f, static_cast<int>(eng() % 20) - 10);
  for (std::ptrdiff_t axis : {0, 1}) {
    CHECK(decode(encode<msfp12>(t, axis)) == quantize<msfp12>(t, axis));
    CHECK(decode(encode<msfp16>(t, axis)) == quantize<msfp16>(t, axis));
    CHECK(decode(encode<bfp<3, 5, 5, nearest_away, scale_fit>>(t, axis)) ==
          quantize<bfp<3, 5, 5, nearest_away, scale_fit>>(t, axis));
  }
}

TEST_CASE("bfp stochastic rounding is unbiased within a block and reproducible") {
  // rule: k = floor(x / step + u); X = 0 (max 1.0), step 0.25: 0.3 -> 1.2 goes to 2 w.p. 0.2
  using S = bfp<4, 16, 8, stochastic>;
  xt::xarray<float> x = xt::ones<float>({16 * 1000}) * 0.3f;
  for (std::size_t b = 0; b < 1000; ++b) x(b * 16) = 1.0f;
  std::mt19937 e1(9), e2(9);
  auto a = quantize<S>(x, last_axis, e1);
  CHECK(a == quantize<S>(x, last_axis, e2));
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i % 16 == 0) continue;
    REQUIRE((a(i) == 0.25f || a(i) == 0.5f));
    sum += a(i);
    ++count;
  }
  CHECK(sum / count == doctest::Approx(0.3).epsilon(0.01));

  // rule: stochastic + scale_fit raises X when the largest element could round past 7 steps:
  // 1.8 / 0.25 = 7.2 > 7, so X = 1 (step 0.5) and 1.8 -> 3.6 goes to 3 or 4 steps, unbiased,
  // never saturating
  using SF = bfp<4, 16, 8, stochastic, scale_fit>;
  xt::xarray<float> y = xt::ones<float>({16 * 500}) * 1.8f;
  auto qy = quantize<SF>(y, last_axis, e1);
  double ysum = 0;
  for (float v : qy) {
    REQUIRE((v == 1.5f || v == 2.0f));
    ysum += v;
  }
  CHECK(ysum / qy.size() == doctest::Approx(1.8).epsilon(0.01));
}

namespace {
/// An independent, straightforward BFP quantizer in double (libm rounding), as the spec reads.
template <class F, bool Away = false>
std::vector<float> reference_block(const std::vector<float>& in) {
  const int m = F::magnitude_bits;
  double mx = 0;
  for (float v : in) mx = std::max(mx, std::fabs(double(v)));
  int x = mx == 0 ? F::scale_min : std::ilogb(mx);
  x = std::clamp(x, F::scale_min, F::scale_max);
  auto rnd = [](double v) { return Away ? std::round(v) : std::nearbyint(v); };
  if (std::is_same_v<typename F::scale_policy_type, scale_fit> && x < F::scale_max &&
      rnd(mx / std::ldexp(1.0, x - (m - 1))) > F::max_code)
    ++x;
  const double step = std::ldexp(1.0, x - (m - 1));
  std::vector<float> out;
  for (float v : in) {
    double k = std::isinf(v) ? std::copysign(1e300, v) : rnd(double(v) / step);
    k = std::clamp(k, -double(F::max_code), double(F::max_code));
    out.push_back(static_cast<float>(k * step));
  }
  return out;
}

template <class F, bool Away = false>
void check_against_reference(std::mt19937& eng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ed(-150, 128);
  for (int b = 0; b < 3000; ++b) {
    const int e = ed(eng);
    std::vector<float> in(static_cast<std::size_t>(F::block_size) - (b % 3 == 0 ? 1 : 0));
    for (auto& v : in) v = std::ldexp(nd(eng), e + static_cast<int>(eng() % 8) - 4);  // may overflow to Inf
    if (b % 17 == 0) in[1] = inf;
    if (b % 19 == 0) in[0] = -inf;
    const auto got = qblock<F>(in);
    const auto want = reference_block<F, Away>(in);
    for (std::size_t i = 0; i < in.size(); ++i) {
      CAPTURE(b);
      CAPTURE(in[i]);
      REQUIRE(got[i] == want[i]);
    }
  }
}
}  // namespace

TEST_CASE("bfp matches a straightforward reference over the whole exponent range") {
  // rule: the reference rounds x / step in double with nearbyint (RNE) or round (away)
  std::mt19937 eng(17);
  check_against_reference<msfp12>(eng);
  check_against_reference<msfp16>(eng);
  check_against_reference<bfp<4, 4, 4>>(eng);
  check_against_reference<bfp<21, 4>>(eng);  // the largest element width of the add-only path
  check_against_reference<bfp<22, 4>>(eng);  // the generic path
  check_against_reference<bfp<4, 16, 8, nearest_even, scale_fit>>(eng);
  check_against_reference<bfp<4, 16, 8, nearest_away>, true>(eng);
  check_against_reference<bfp<6, 8, 8, nearest_away, scale_fit>, true>(eng);
}

TEST_CASE("bfp laws (check_format)") {
  check_laws<msfp12>();
  check_laws<msfp16>();
  check_laws<bfp<4, 16, 8, nearest_even, scale_fit>>();
  check_laws<bfp<2, 8>>();
  check_laws<bfp<4, 4, 4>>();
  check_laws<bfp<6, 16, 8, toward_zero>>();
  check_laws<bfp<5, 16, 8, nearest_away, scale_fit>>();
  check_laws<bfp<8, 32, 8, stochastic>>();
  check_laws<bfp<4, 16, 8, stochastic, scale_fit>>();
  check_laws<bfp<12, 8>>();
}
