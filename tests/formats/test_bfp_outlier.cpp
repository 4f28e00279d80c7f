// bfp_outlier: hand-derived golden blocks (outlier choice, shared exponent, saturation),
// the documented header layout, ragged tails, bit-exact round trips and the format laws.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/formats/bfp_outlier.hpp"
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
void check_grid_with_fixed_header();

/// The laws for an outlier format. The conformance kit builds the value grid of position j
/// by putting each candidate value at j and keeping it only if re-encoding the block keeps the
/// header; an outlier header depends on which elements are largest, so a smaller value at an
/// outlier position moves the slot and the true neighbours drop out of that grid. So: every
/// kit law must hold except that grid-neighbour check, and the grid check is done here with
/// the header fixed: q[j] must be a nearest value among decode(header, codes with [j] = c).
template <class F>
void check_laws() {
  testing::check_options opt;
  opt.max_failures = 1000000;
  const auto report = testing::check_format<F>(opt);
  for (const auto& f : report.failures) CHECK_MESSAGE(f.find("is not one of the neighbours") != std::string::npos, f);

  if constexpr (!F::rounding::needs_engine) check_grid_with_fixed_header<F>();
}

template <class F>
void check_grid_with_fixed_header() {
  constexpr auto B = static_cast<std::size_t>(F::block_size);
  constexpr bool nearest = !std::is_same_v<typename F::rounding, toward_zero>;
  std::mt19937_64 eng(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ed(-30, 30);
  typename F::rounding round;
  std::vector<float> in(B), q(B), one(B);
  std::vector<std::uint32_t> codes(B), probe(B);
  int misses = 0;
  for (std::size_t b = 0; b < 400; ++b) {
    const std::size_t n = (b % 7 == 6) ? 1 + b % B : B;
    const float sc = std::ldexp(1.0f, ed(eng));
    for (std::size_t j = 0; j < n; ++j) in[j] = nd(eng) * sc * ((j % 5 == 0) ? 8.0f : 1.0f);
    F::quantize_block(in.data(), q.data(), n, round);
    const std::uint64_t header = F::encode_block(in.data(), codes.data(), n, round);
    for (std::size_t j = 0; j < n; ++j) {
      std::vector<float> grid;
      for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
        probe = codes;
        probe[j] = c;
        F::decode_block(header, probe.data(), one.data(), n);
        grid.push_back(one[j]);
      }
      std::sort(grid.begin(), grid.end());
      if (!(in[j] >= grid.front() && in[j] <= grid.back())) continue;  // saturated
      const auto it = std::lower_bound(grid.begin(), grid.end(), in[j]);
      const float hi = *it, lo = (hi == in[j] || it == grid.begin()) ? hi : *(it - 1);
      bool ok = q[j] == lo || q[j] == hi;
      if (ok && nearest)
        ok = std::fabs(double(q[j]) - in[j]) <= std::fabs(double(q[j] == lo ? hi : lo) - in[j]);
      if (!ok && ++misses <= 5) FAIL_CHECK("block ", b, " position ", j, ": q(", in[j], ") = ", q[j], " not a nearest of ", lo, ", ", hi);
    }
  }
  CHECK(misses == 0);
}

using O = bfp_outlier<4, 16, 1, 4>;  // 3 magnitude bits, 1 outlier with 4 extra bits
}  // namespace

TEST_CASE("bfp_outlier traits: honest bit counts") {
  static_assert(O::family == format_family::block_fp && O::tuple == bit_tuple{1, 0, 3});
  static_assert(O::bits == 4 && O::index_bits == 4 && O::slot_bits == 8);
  static_assert(O::scale_bits == 8 + 1 * (4 + 4));  // exponent + one (index, extra bits) slot
  static_assert(amortized_bits_v<O> == 5.0);
  using O2 = bfp_outlier<4, 8, 2, 2>;
  static_assert(O2::index_bits == 3 && O2::scale_bits == 8 + 2 * (3 + 2) && amortized_bits_v<O2> == 6.25);
  static_assert(bfp_outlier<4, 17, 1, 1>::index_bits == 5);  // positions 0..16 need 5 bits
  static_assert(O::max_code == 7 && O::max_outlier_code == 127);
  static_assert(O::scale_max == 123 && O::max_value == 127.0 * 0x1p121);  // 127 - ExtraBits
  static_assert(block_format<O>);
  CHECK(O::name() == "bfp_outlier<4,16,1,4>");
  CHECK(bfp_outlier<4, 8, 2, 2, 6, toward_zero>::name() == "bfp_outlier<4,8,2,2,scale_bits=6,toward_zero>");
}

TEST_CASE("bfp_outlier golden block: one outlier keeps the rest of the block") {
  // rule: RNE. Largest 10.0 is the outlier; the 2nd largest 0.9 gives floor(log2) = -1, the
  // outlier needs floor(log2 10) - 4 = -1: X = -1, step 2^(-1 - 2) = 1/8.
  std::vector<float> in(16, 0.0f);
  in[0] = 10.0f;
  in[1] = 0.3f;
  in[2] = -0.2f;
  in[3] = 0.5f;
  in[4] = 0.9f;
  std::vector<float> expect(16, 0.0f);
  expect[0] = 10.0f;    // 80 steps <= 127 (outlier)
  expect[1] = 0.25f;    // 2.4 -> 2
  expect[2] = -0.25f;   // -1.6 -> -2
  expect[3] = 0.5f;     // 4
  expect[4] = 0.875f;   // 7.2 -> 7
  CHECK(qblock<O>(in) == expect);
  // plain msfp12 lets 10.0 set X = 3 (step 2): everything else is lost
  CHECK(qblock<msfp12>(in) == std::vector<float>{10.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});

  // header: X = -1 -> 0xFF; slot 0 = index 0 | (80 >> 3 = 10) << 4 = 0xA0
  std::uint32_t codes[16];
  nearest_even r;
  CHECK(O::encode_block(in.data(), codes, 16, r) == 0xA0FFu);
  CHECK(codes[0] == 0u);   // 80 = 0b1010'000: low 3 bits in the code
  CHECK(codes[1] == 2u);
  CHECK(codes[2] == 10u);  // sign | 2
  CHECK(codes[3] == 4u);
  CHECK(codes[4] == 7u);
  std::vector<float> back(16);
  O::decode_block(0xA0FFu, codes, back.data(), 16);
  CHECK(back == expect);
}

TEST_CASE("bfp_outlier golden blocks: outlier-driven exponent, two outliers, ties, short blocks") {
  // rule: RNE. 1000 needs floor(log2 1000) - 4 = 5 > floor(log2 1.0) = 0: X = 5, step 8
  // (not floor(log2 4.0) = 2 of the 2nd largest): 1000 / 8 = 125; 4.0 / 8 = 0.5 -> 0 (tie to even)
  CHECK(qblock<O>({1000.0f, 1.0f, 0.5f, 4.0f}) == std::vector<float>{1000.0f, 0.0f, 0.0f, 0.0f});
  using O2 = bfp_outlier<4, 8, 2, 2>;  // 2 outliers, 2 extra bits (codes up to 31)
  // outliers 6.0 and -5.0; the 3rd largest 0.7 gives -1, the top needs floor(log2 6) - 2 = 0:
  // X = 0, step 1/4
  CHECK(qblock<O2>({0.1f, 6.0f, -5.0f, 0.7f, 0.4f, 0.05f, 0.0f, 0.0f}) ==
        std::vector<float>{0.0f, 6.0f, -5.0f, 0.75f, 0.5f, 0.0f, 0.0f, 0.0f});
  // 0.7 -> 2.8 -> 3; 0.4 -> 1.6 -> 2; 0.1 -> 0.4 -> 0; 0.05 -> 0
  std::uint32_t codes[8];
  nearest_even r;
  const float two[2] = {3.0f, 0.1f};
  // n = 2 <= Outliers: both are outliers, X = floor(log2 3) - 2 = -1, step 1/8: 24 and 0.8 -> 1
  CHECK(qblock<O2>({3.0f, 0.1f}) == std::vector<float>{3.0f, 0.125f});
  const std::uint64_t h = O2::encode_block(two, codes, 2, r);
  // X = -1 -> 0xFF; slot 0: index 0, extra 24 >> 3 = 3 -> 0b11'000; slot 1: index 1, extra 0
  CHECK(h == (0xFFu | (0b11000u << 8) | (0b00001u << 13)));
  // ties: equal magnitudes, the lower index is the outlier
  const float tie[3] = {1.0f, -1.0f, 0.5f};
  const std::uint64_t ht = O::encode_block(tie, codes, 3, r);
  CHECK(((ht >> 8) & 0xF) == 0u);  // slot index 0
  CHECK(qblock<O>({1.0f, -1.0f, 0.5f}) == std::vector<float>{1.0f, -1.0f, 0.5f});
  // two outliers: X = floor(log2 100) - 2 = 4 > floor(log2 1.0), step 4: 25, 22.5 -> 22, 0.25 -> 0
  CHECK(qblock<O2>({100.0f, 90.0f, 1.0f}) == std::vector<float>{100.0f, 88.0f, 0.0f});
  // saturation: an outlier rounding past 31 steps (7.9 / 0.25 = 31.6 -> 32 -> 31)
  CHECK(qblock<O2>({7.9f, 0.7f}) == std::vector<float>{7.75f, 0.75f});
  // ordinary elements saturate at 7 steps: X = floor(log2 1.99) = 0, step 1/4: 7.96 -> 8 -> 7
  CHECK(qblock<O>({10.0f, 1.99f, 1.9f}) == std::vector<float>{10.0f, 1.75f, 1.75f});
}

TEST_CASE("bfp_outlier corners: NaN, Inf, zeros") {
  std::vector<float> in(16, 1.0f);
  in[5] = qnan;
  for (float v : qblock<O>(in)) CHECK(std::isnan(v));
  std::uint32_t codes[16];
  nearest_even r;
  CHECK_THROWS_WITH_AS(O::encode_block(in.data(), codes, 16, r), doctest::Contains("block element 5 is NaN"),
                       qnas::invalid_argument);
  // Inf is the outlier; it saturates at the largest exponent
  const auto qi = qblock<O>({inf, 1.0f});
  CHECK(qi[0] == static_cast<float>(O::max_value));
  CHECK(qi[1] == 0.0f);
  const std::vector<float> zeros(16, 0.0f);
  CHECK(qblock<O>(zeros) == zeros);
  CHECK((O::encode_block(zeros.data(), codes, 16, r) & 0xFF) == 0x80u);  // scale_min = -128
}

TEST_CASE("bfp_outlier: bit-exact round trip along both axes, and less error than plain BFP") {
  std::mt19937 eng(23);
  std::student_t_distribution<float> heavy(2.0f);  // heavy tails: outliers are common
  xt::xarray<float> t = xt::zeros<float>({9, 40});
  for (auto& v : t) v = heavy(eng);
  for (std::ptrdiff_t axis : {0, 1}) {
    CHECK(decode(encode<O>(t, axis)) == quantize<O>(t, axis));
    CHECK(decode(encode<bfp_outlier<4, 8, 2, 2>>(t, axis)) == quantize<bfp_outlier<4, 8, 2, 2>>(t, axis));
    CHECK(decode(encode<bfp_outlier<3, 32, 3, 5, 6, nearest_away>>(t, axis)) ==
          quantize<bfp_outlier<3, 32, 3, 5, 6, nearest_away>>(t, axis));
  }
  // the point of the format: on heavy-tailed data, 1 outlier slot (+1 bit per element) beats
  // plain BFP with the same element width by a wide margin
  xt::xarray<float> big = xt::zeros<float>({4096});
  for (auto& v : big) v = heavy(eng);
  const auto qo = quantize<O>(big);
  const auto qb = quantize<msfp12>(big);
  double eo = 0, eb = 0;
  for (std::size_t i = 0; i < big.size(); ++i) {
    eo += (qo(i) - big(i)) * (qo(i) - big(i));
    eb += (qb(i) - big(i)) * (qb(i) - big(i));
  }
  CHECK(eo < 0.5 * eb);
}

namespace {
/// An independent reference: stable sort by magnitude, exponents with ilogb, libm rounding.
template <class F>
std::vector<float> reference_block(const std::vector<float>& in) {
  const int n = static_cast<int>(in.size()), m = F::magnitude_bits;
  std::vector<int> idx(in.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return std::fabs(in[a]) > std::fabs(in[b]); });
  const int k = std::min(F::outliers, n);
  constexpr int none = -100000;
  auto lg = [](double v) { return v == 0 ? none : std::ilogb(v); };
  const int top = lg(std::fabs(in[idx[0]]));
  int x = std::max(k < n ? lg(std::fabs(in[idx[k]])) : none, top == none ? none : top - F::extra_bits);
  x = std::clamp(x, F::scale_min, F::scale_max);
  const double step = std::ldexp(1.0, x - (m - 1));
  std::vector<float> out(in.size());
  for (int i = 0; i < n; ++i) {
    const bool outlier = std::find(idx.begin(), idx.begin() + k, i) != idx.begin() + k;
    const double hi = outlier ? F::max_outlier_code : F::max_code;
    const double v = std::isinf(in[i]) ? std::copysign(1e300, in[i]) : std::nearbyint(in[i] / step);
    out[i] = static_cast<float>(std::clamp(v, -hi, hi) * step);
  }
  return out;
}

template <class F>
void check_against_reference(std::mt19937& eng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ed(-150, 128);
  for (int b = 0; b < 3000; ++b) {
    std::vector<float> in(1 + eng() % F::block_size);
    const int e = ed(eng);
    for (auto& v : in) v = std::ldexp(nd(eng) * ((eng() % 5 == 0) ? 16.0f : 1.0f), e);
    if (b % 9 == 0) in[0] = 0.0f;
    if (b % 13 == 0) in.back() = in.front();  // a tie in magnitude
    const auto got = qblock<F>(in);
    const auto want = reference_block<F>(in);
    CAPTURE(b);
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(got[i] == want[i]);
  }
}
}  // namespace

TEST_CASE("bfp_outlier matches a straightforward reference (RNE) over the whole exponent range") {
  std::mt19937 eng(41);
  check_against_reference<O>(eng);
  check_against_reference<bfp_outlier<4, 8, 2, 2>>(eng);
  check_against_reference<bfp_outlier<3, 32, 3, 5, 6>>(eng);
  check_against_reference<bfp_outlier<8, 16, 4, 8>>(eng);
}

TEST_CASE("bfp_outlier laws (check_format)") {
  check_laws<O>();
  check_laws<bfp_outlier<4, 8, 2, 2>>();
  check_laws<bfp_outlier<8, 16, 2, 3, 8, toward_zero>>();
  check_laws<bfp_outlier<3, 32, 3, 5, 6, nearest_away>>();
  check_laws<bfp_outlier<4, 16, 1, 4, 8, stochastic>>();
  check_laws<bfp_outlier<2, 4, 1, 1>>();
}
