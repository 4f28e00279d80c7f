// The quantize loops of mx, bfp_outlier and bfp_nonuniform (baseline build, AVX2 copy where the
// CPU has it, and quantize_into over tensors) against straightforward references written from
// each format's definition, bit for bit: random blocks over the whole float range, rounding
// ties, NaN/Inf/zero/subnormal blocks, duplicate maxima, ragged tails, scale clamps, every
// rounding policy.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/detail/block_simd.hpp"

using namespace qnas;

namespace {

using engine_t = std::mt19937_64;

std::uint32_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }

// ---- references: the definitions, one element at a time ------------------------------------

/// mx: s from the block's largest magnitude (F::shared_exponent, unchanged by the fast paths and
/// pinned by test_mx's golden blocks), element = quantize_one(clamp(x / 2^s)) * 2^s.
template <class F, class R>
void reference_mx(const float* in, float* out, std::size_t n, R& round) {
  using E = typename F::element;
  std::uint32_t amax = 0;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, bits_of(in[i]) & 0x7FFFFFFFu);
  const int s = F::shared_exponent(amax, round);
  if (s == 128) {  // a NaN block
    for (std::size_t i = 0; i < n; ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const float inv = detail::exp2i(-s), sc = detail::exp2i(s);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = E::quantize_one(detail::clamp(in[i] * inv, static_cast<float>(E::min_value), static_cast<float>(E::max_value)),
                             round) *
             sc;
}

/// bfp_outlier: outliers = the K' largest magnitudes (ties to the lower index) by a stable sort,
/// X = max(floor(log2 r_{K'+1}), floor(log2 r_1) - E) clamped, k = round(x / step) clamped.
template <class F, class R>
void reference_outlier(const float* in, float* out, std::size_t n, R& round) {
  std::vector<std::uint32_t> mag(n);
  for (std::size_t i = 0; i < n; ++i) mag[i] = bits_of(in[i]) & 0x7FFFFFFFu;
  if (n > 0 && *std::max_element(mag.begin(), mag.end()) > 0x7F800000u) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(0x7FC00000u);
    return;
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return mag[a] > mag[b]; });
  const std::size_t count = std::min<std::size_t>(F::outliers, n);
  constexpr int none = -100000;
  auto lg = [&](std::uint32_t m) { return m == 0 ? none : detail::ilog2(std::bit_cast<float>(m)); };
  const int from_top = n == 0 || mag[order[0]] == 0 ? none : lg(mag[order[0]]) - F::extra_bits;
  const int from_rest = count < n ? lg(mag[order[count]]) : none;
  const int x = std::clamp(std::max(from_top, from_rest), F::scale_min, F::scale_max);
  std::vector<bool> outlier(n, false);
  for (std::size_t j = 0; j < count; ++j) outlier[order[j]] = true;
  const detail::pow2_scaler to_code(F::magnitude_bits - 1 - x);
  const float step = detail::exp2i(x - (F::magnitude_bits - 1));
  for (std::size_t i = 0; i < n; ++i) {
    const float hi = static_cast<float>(outlier[i] ? F::max_outlier_code : F::max_code);
    out[i] = std::clamp(round(to_code(in[i])), -hi, hi) * step + 0.0f;
  }
}

/// bfp_nonuniform: X = floor(log2 max|x|) clamped, a = |x| / 2^(X+1) in double, k = the number
/// of midpoints below a plus a midpoint tie on an odd index, value float(L_k * 2^(X+1)), signed
/// unless zero.
template <class F>
void reference_nonuniform(const float* in, float* out, std::size_t n) {
  using Levels = typename F::levels_type;
  constexpr std::size_t count = Levels::magnitudes.size();
  std::uint32_t mx = 0;
  for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, bits_of(in[i]) & 0x7FFFFFFFu);
  if (mx > 0x7F800000u) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(0x7FC00000u);
    return;
  }
  const int x = std::clamp(mx == 0 ? F::scale_min : detail::ilog2(std::bit_cast<float>(mx)), F::scale_min, F::scale_max);
  const double scale = std::ldexp(1.0, x + 1), inv = std::ldexp(1.0, -(x + 1));
  for (std::size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(std::fabs(in[i])) * inv;
    std::size_t k = 0;
    for (std::size_t j = 0; j + 1 < count; ++j) {
      const double mid = (static_cast<double>(static_cast<float>(Levels::magnitudes[j])) +
                          static_cast<double>(static_cast<float>(Levels::magnitudes[j + 1]))) /
                         2;
      if (a > mid || (a == mid && j % 2 == 1)) ++k;
    }
    const auto v = static_cast<float>(static_cast<double>(static_cast<float>(Levels::magnitudes[k])) * scale);
    out[i] = (in[i] < 0.0f && v != 0.0f) ? -v : v;
  }
}

// ---- inputs ---------------------------------------------------------------------------------

float random_special(engine_t& g) {
  static const float specials[] = {0.0f,
                                   -0.0f,
                                   std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::quiet_NaN(),
                                   std::numeric_limits<float>::max(),
                                   -std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::min(),
                                   -std::numeric_limits<float>::denorm_min(),
                                   std::numeric_limits<float>::denorm_min(),
                                   std::bit_cast<float>(0x00400001u),
                                   std::bit_cast<float>(0x807FFFFFu)};
  return specials[g() % std::size(specials)];
}

/// A block of n values of one of several kinds; `marks` are magnitudes in [0, 1) (a codebook's
/// midpoints and levels) the block places exactly, and just beside, at a random scale.
std::vector<float> random_block(engine_t& g, std::size_t n, const std::vector<double>& marks) {
  std::vector<float> x(n);
  const int kind = static_cast<int>(g() % 9);
  const int e = static_cast<int>(g() % 276) - 150;  // a binade anywhere in float's range
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0:  // normal values at a random scale
        x[i] = std::ldexp(normal(g), std::clamp(e, -140, 120));
        break;
      case 1:  // few significant bits: rounding ties on every grid
        x[i] = std::ldexp(static_cast<float>(static_cast<int>(g() % 1025) - 512), std::clamp(e, -149, 118) - 4);
        break;
      case 2:  // random bits (NaN blocks included)
        x[i] = std::bit_cast<float>(static_cast<std::uint32_t>(g()));
        break;
      case 3:  // normal values with specials sprinkled in
        x[i] = (g() % 5 == 0) ? random_special(g) : std::ldexp(normal(g), std::clamp(e, -140, 120));
        break;
      case 4:  // equal magnitudes: duplicate maxima
        x[i] = std::ldexp((g() & 1) ? 1.5f : -1.5f, std::clamp(e, -140, 120));
        break;
      case 5:  // one large value over small ones
        x[i] = std::ldexp(normal(g), std::clamp(e, -140, 120) - ((g() % 8 == 0) ? 0 : static_cast<int>(g() % 30)));
        break;
      case 6:  // tiny values: zero blocks, subnormals, the bottom of the scale range
        x[i] = (g() % 4 == 0) ? 0.0f : std::bit_cast<float>(static_cast<std::uint32_t>((g() % 0x01000000u) | ((g() & 1) << 31)));
        break;
      case 7: {  // marks (codebook midpoints and levels) exactly and one ulp beside
        if (marks.empty() || g() % 4 == 0) {
          x[i] = std::ldexp(normal(g), std::clamp(e, -140, 120));
          break;
        }
        const double m = marks[g() % marks.size()];
        float v = static_cast<float>(std::ldexp(m, std::clamp(e, -140, 126)));
        const int side = static_cast<int>(g() % 3);
        if (side == 1) v = std::nextafter(v, 0.0f);
        if (side == 2) v = std::nextafter(v, std::numeric_limits<float>::infinity());
        x[i] = (g() & 1) ? -v : v;
        break;
      }
      default:  // the top of the float range
        x[i] = std::ldexp(normal(g), 126);
        break;
    }
  }
  if (kind == 7 && !marks.empty() && n > 0) x[g() % n] = std::ldexp(0.75f, std::clamp(e, -140, 126));  // fixes X
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string show(const std::vector<float>& v) {
  std::string s;
  char buf[48];
  for (float f : v) {
    std::snprintf(buf, sizeof buf, "%a(%08x) ", static_cast<double>(f), bits_of(f));
    s += buf;
  }
  return s;
}

/// Every path of F (quantize_block as dispatched, the baseline build, the AVX2 copy where this
/// CPU runs it, in place) against `ref` on `blocks` random blocks; returns the mismatches.
template <class F, class Ref, class Paths>
std::size_t compare_blocks(std::size_t blocks, std::uint64_t seed, const std::vector<double>& marks, Ref&& ref,
                           Paths&& paths) {
  engine_t g(seed);
  std::size_t bad = 0;
  constexpr auto bs = static_cast<std::size_t>(F::block_size);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t n = (g() % 4 == 0) ? 1 + g() % bs : bs;  // ragged tails too
    const auto x = random_block(g, n, marks);
    std::vector<float> want(n);
    ref(x.data(), want.data(), n);
    bool differs = false;
    paths([&](const std::string& path, auto&& fn) {
      std::vector<float> got(n, 123.0f);
      fn(x.data(), got.data(), n);
      std::vector<float> inplace(x);
      fn(inplace.data(), inplace.data(), n);
      if (!same_bits(got, want) || !same_bits(inplace, want)) {
        if (bad + !differs <= 3)
          FAIL_CHECK(F::name() << " " << path << " differs from the reference on block " << b << "\n  in:   " << show(x)
                               << "\n  want: " << show(want) << "\n  got:  " << show(got) << "\n  in place: " << show(inplace));
        differs = true;
      }
    });
    bad += differs;
  }
  return bad;
}

/// quantize_into over a ragged tensor along its last axis and along axis 0 (gathered blocks)
/// equals the reference applied block by block.
template <class F, class Ref>
void compare_tensor(std::uint64_t seed, Ref&& ref) {
  engine_t g(seed);
  constexpr auto bs = static_cast<std::size_t>(F::block_size);
  const std::size_t rows = 7, len = 3 * bs + 5;
  std::vector<float> x;
  while (x.size() < rows * len) {
    const auto b = random_block(g, bs, {});
    x.insert(x.end(), b.begin(), b.end());
  }
  x.resize(rows * len);
  std::vector<float> got(x.size()), want(x.size());
  const std::size_t shape[] = {rows, len};
  quantize_into<F>(x, got, shape);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < len; k += bs) {
      const std::size_t n = std::min(bs, len - k);
      ref(x.data() + r * len + k, want.data() + r * len + k, n);
    }
  CHECK_MESSAGE(same_bits(got, want), F::name() << ": quantize_into along the last axis");
  // along axis 0 of the [len, rows] reading of the same buffer: blocks are strided columns
  const std::size_t shape0[] = {len, rows};
  quantize_into<F>(x, got, shape0, 0);
  for (std::size_t c = 0; c < rows; ++c)
    for (std::size_t k = 0; k < len; k += bs) {
      const std::size_t n = std::min(bs, len - k);
      std::vector<float> col(n), q(n);
      for (std::size_t j = 0; j < n; ++j) col[j] = x[(k + j) * rows + c];
      ref(col.data(), q.data(), n);
      for (std::size_t j = 0; j < n; ++j) want[(k + j) * rows + c] = q[j];
    }
  CHECK_MESSAGE(same_bits(got, want), F::name() << ": quantize_into along axis 0");
}

// ---- per family -----------------------------------------------------------------------------

constexpr std::size_t block_count = 20000;

template <class F>
void check_mx(std::uint64_t seed) {
  typename F::rounding round;
  auto ref = [&](const float* in, float* out, std::size_t n) { reference_mx<F>(in, out, n, round); };
  const std::size_t bad = compare_blocks<F>(block_count, seed, {}, ref, [&](auto&& check) {
    check("quantize_block", [&](const float* in, float* out, std::size_t n) { F::quantize_block(in, out, n, round); });
    check("baseline", [&](const float* in, float* out, std::size_t n) { F::quantize_block_baseline(in, out, n, round); });
#if defined(QNAS_BLOCK_AVX2)
    if (detail::block_avx2_available())
      check("avx2", [&](const float* in, float* out, std::size_t n) { F::quantize_block_avx2(in, out, n, round); });
#endif
  });
  CHECK_MESSAGE(bad == 0, F::name() << ": " << bad << " of " << block_count << " blocks differ");
  compare_tensor<F>(seed + 1, ref);
}

template <class F>
void check_outlier(std::uint64_t seed) {
  typename F::rounding round;
  auto ref = [&](const float* in, float* out, std::size_t n) { reference_outlier<F>(in, out, n, round); };
  const std::size_t bad = compare_blocks<F>(block_count, seed, {}, ref, [&](auto&& check) {
    check("quantize_block", [&](const float* in, float* out, std::size_t n) { F::quantize_block(in, out, n, round); });
    check("baseline", [&](const float* in, float* out, std::size_t n) { F::quantize_block_baseline(in, out, n, round); });
#if defined(QNAS_BLOCK_AVX2)
    if (detail::block_avx2_available())
      check("avx2", [&](const float* in, float* out, std::size_t n) { F::quantize_block_avx2(in, out, n, round); });
#endif
  });
  CHECK_MESSAGE(bad == 0, F::name() << ": " << bad << " of " << block_count << " blocks differ");
  compare_tensor<F>(seed + 1, ref);
}

template <class F>
void check_nonuniform(std::uint64_t seed) {
  using Levels = typename F::levels_type;
  std::vector<double> marks;  // levels and the midpoints between them, as doubles
  for (std::size_t k = 0; k < Levels::magnitudes.size(); ++k) {
    const double l = static_cast<float>(Levels::magnitudes[k]);
    marks.push_back(l);
    if (k + 1 < Levels::magnitudes.size())
      marks.push_back((l + static_cast<double>(static_cast<float>(Levels::magnitudes[k + 1]))) / 2);
  }
  auto ref = [](const float* in, float* out, std::size_t n) { reference_nonuniform<F>(in, out, n); };
  const std::size_t bad = compare_blocks<F>(block_count, seed, marks, ref, [&](auto&& check) {
    nearest_even round;
    check("quantize_block", [&](const float* in, float* out, std::size_t n) { F::quantize_block(in, out, n, round); });
    check("baseline", [](const float* in, float* out, std::size_t n) { F::quantize_block_baseline(in, out, n); });
#if defined(QNAS_BLOCK_AVX2)
    if (detail::block_avx2_available())
      check("avx2", [](const float* in, float* out, std::size_t n) { F::quantize_block_avx2(in, out, n); });
#endif
  });
  CHECK_MESSAGE(bad == 0, F::name() << ": " << bad << " of " << block_count << " blocks differ");
  compare_tensor<F>(seed + 1, ref);
}

/// A stochastic format: quantize_block with an engine equals the reference with an engine of the
/// same seed (same draws in the same order).
template <class F, class Ref>
void check_stochastic(std::uint64_t seed, Ref&& reference) {
  engine_t g(seed), e1(seed + 7), e2(seed + 7);
  stochastic_rounder<engine_t> r1(e1), r2(e2);
  std::size_t bad = 0;
  constexpr auto bs = static_cast<std::size_t>(F::block_size);
  for (std::size_t b = 0; b < 2000; ++b) {
    const std::size_t n = (g() % 4 == 0) ? 1 + g() % bs : bs;
    const auto x = random_block(g, n, {});
    std::vector<float> got(n), want(n);
    F::quantize_block(x.data(), got.data(), n, r1);
    reference(x.data(), want.data(), n, r2);
    bad += !same_bits(got, want);
  }
  CHECK_MESSAGE(bad == 0, F::name() << ": " << bad << " stochastic blocks differ");
}

struct odd_levels {  // no zero level, uneven gaps
  static constexpr std::array<double, 4> magnitudes{0.1, 0.3, 0.55, 0.8};
};
struct fine_levels {  // a codebook whose midpoints need more than float's precision
  static constexpr std::array<double, 6> magnitudes{0.0, 0x1p-30, 0x1.000002p-3, 0.25, 0.5000001, 0.9};
};

}  // namespace

TEST_CASE("mx quantize paths equal the reference bit for bit") {
  MESSAGE("AVX2 block loops on this CPU: ", detail::block_avx2_available());
  check_mx<mxfp8_e4m3>(1);
  check_mx<mxfp8_e5m2>(2);
  check_mx<mxfp6_e3m2>(3);
  check_mx<mxfp6_e2m3>(4);
  check_mx<mxfp4>(5);
  check_mx<mxint8>(6);
  check_mx<mx<fp8_e4m3, 32, scale_fit>>(7);
  check_mx<mx<fp4_e2m1, 16, scale_floor, 5>>(8);          // narrow scale: clamps and NaN blocks
  check_mx<mx<mxint8_element, 32, scale_fit, 3>>(9);
  check_mx<mx<bf16, 8>>(10);                               // E = 8: float's own subnormals
  check_mx<mx<fp16, 4>>(11);
  check_mx<mx<minifloat<3, 0, specials_finite>, 8>>(12);   // M = 0
  check_mx<mx<minifloat<4, 3, specials_fn, toward_zero>>>(13);  // general loop
  check_mx<mx<minifloat<5, 2, nearest_away>, 32>>(14);
  check_mx<mx<minifloat<4, 3, specials_fn, flush_subnormals>>>(15);
  check_mx<mx<fixed_point<8, 1>, 32>>(16);                 // asymmetric: -2.0 is a value
  check_mx<mx<fixed_relu<6, 1>, 16>>(17);
  check_mx<mx<fixed_point<4, 2, true, true>, 8, scale_fit>>(18);
  check_mx<mx<fixed_point<22, 3>, 8>>(19);                 // the widest fast fixed-point element
  check_mx<mx<fixed_point<8, 1, true, true, toward_zero>>>(20);
  check_mx<mx<fixed_point<24, 1>, 4>>(21);                 // beyond the fast path
}

TEST_CASE("bfp_outlier quantize paths equal the reference bit for bit") {
  check_outlier<bfp_outlier<4, 16, 1, 4>>(31);
  check_outlier<bfp_outlier<4, 16, 2, 3>>(32);
  check_outlier<bfp_outlier<8, 32, 3, 4>>(33);
  check_outlier<bfp_outlier<4, 16, 1, 4, 8, toward_zero>>(34);
  check_outlier<bfp_outlier<4, 16, 2, 4, 8, nearest_away>>(35);
  check_outlier<bfp_outlier<5, 8, 1, 18>>(36);             // m + E = 22: the outlier's magic bound
  check_outlier<bfp_outlier<4, 16, 1, 20>>(37);            // m + E = 23: outliers take the general rounding
  check_outlier<bfp_outlier<4, 16, 1, 4, 4>>(38);          // narrow scale: X clamps at both ends
  check_outlier<bfp_outlier<23, 4, 1, 1>>(39);             // m = 22
  check_outlier<bfp_outlier<12, 16, 1, 4, 16>>(40);
  check_outlier<bfp_outlier<3, 2, 1, 2>>(41);              // every short tail block all outliers
  check_outlier<bfp_outlier<4, 8, 1, 4>>(42);              // one AVX2 vector per block (top-2 path)
  check_outlier<bfp_outlier<4, 32, 1, 4>>(43);             // four vectors per block (top-2 path)
}

/// Every path of F on one block (and on its first n_tail values, a short tail block) against
/// reference_outlier, out of place and in place.
template <class F>
void check_outlier_block(const std::vector<float>& x, const char* what) {
  typename F::rounding round;
  for (std::size_t n : {x.size(), x.size() / 2 + 1}) {
    std::vector<float> want(n);
    reference_outlier<F>(x.data(), want.data(), n, round);
    auto check = [&](const char* path, auto&& fn) {
      std::vector<float> got(n, 123.0f), inplace(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
      fn(x.data(), got.data(), n);
      fn(inplace.data(), inplace.data(), n);
      CHECK_MESSAGE((same_bits(got, want) && same_bits(inplace, want)), F::name() << " " << path << " on " << what << " (n = " << n
                                                                                  << ")\n  in:   " << show(x) << "\n  want: "
                                                                                  << show(want) << "\n  got:  " << show(got));
    };
    check("quantize_block", [&](const float* in, float* out, std::size_t m) { F::quantize_block(in, out, m, round); });
    check("baseline", [&](const float* in, float* out, std::size_t m) { F::quantize_block_baseline(in, out, m, round); });
#if defined(QNAS_BLOCK_AVX2)
    if (detail::block_avx2_available())
      check("avx2", [&](const float* in, float* out, std::size_t m) { F::quantize_block_avx2(in, out, m, round); });
#endif
  }
}

/// The one-outlier AVX2 path finds the two largest magnitudes in one pass and bounds every lane
/// whose magnitude equals the largest as the outlier; these blocks pin what that relies on.
template <class F>
void check_outlier_top2_cases() {
  constexpr auto bs = static_cast<std::size_t>(F::block_size);
  constexpr float inf = std::numeric_limits<float>::infinity();
  // small values whose shared exponent follows the second largest: 1.97 rounds above the
  // ordinary bound (1.75 for 3 magnitude bits) and within the outlier's, so which element is
  // the outlier shows in the result
  auto base = [&] {
    std::vector<float> x(bs);
    for (std::size_t i = 0; i < bs; ++i) x[i] = (i % 2 ? -0.0625f : 0.0625f) * static_cast<float>(1 + i % 7);
    return x;
  };
  for (std::size_t p = 0; p < bs; ++p) {
    for (float big : {7.9f, -7.9f, 1.97f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()}) {
      auto x = base();
      x[p] = big;
      check_outlier_block<F>(x, "one large value at every position");
      x[(p + 1) % bs] = 1.5f;  // a second largest that sets the exponent
      check_outlier_block<F>(x, "a large value and a second largest");
    }
    for (std::size_t q = p + 1; q < bs; ++q) {
      for (float second : {1.97f, -1.97f}) {
        auto x = base();
        x[p] = 1.97f;
        x[q] = second;
        check_outlier_block<F>(x, "a tie for the largest magnitude (the first is the outlier)");
        x[p] = x[q] = inf;
        check_outlier_block<F>(x, "two infinities");
        x[p] = std::nextafter(1.97f, 0.0f);
        x[q] = 1.97f;
        check_outlier_block<F>(x, "the two largest one ulp apart");
      }
    }
  }
  check_outlier_block<F>(std::vector<float>(bs, 0.0f), "an all-zero block");
  check_outlier_block<F>(std::vector<float>(bs, -0.0f), "an all -0 block");
  std::vector<float> z(bs, -0.0f);
  for (std::size_t i = 0; i < bs; i += 3) z[i] = 0.0f;
  check_outlier_block<F>(z, "a block of +0 and -0");
  z[bs / 2] = std::numeric_limits<float>::denorm_min();
  check_outlier_block<F>(z, "zeros and one subnormal");
  std::vector<float> sub(bs);
  for (std::size_t i = 0; i < bs; ++i) sub[i] = std::bit_cast<float>(static_cast<std::uint32_t>(i * 0x1234u + 1u) | (i % 2 ? 0x80000000u : 0u));
  check_outlier_block<F>(sub, "subnormals");
  std::vector<float> top(bs);
  for (std::size_t i = 0; i < bs; ++i) top[i] = std::ldexp(static_cast<float>(i + 1) / static_cast<float>(bs), 127);
  check_outlier_block<F>(top, "the top of the float range");
  std::vector<float> same(bs, -2.5f);
  check_outlier_block<F>(same, "every magnitude equal");
}

TEST_CASE("bfp_outlier one-outlier top-2 path: ties, zeros, NaN, Inf, the outlier at every position") {
  check_outlier_top2_cases<bfp_outlier<4, 16, 1, 4>>();
  check_outlier_top2_cases<bfp_outlier<4, 8, 1, 4>>();
  check_outlier_top2_cases<bfp_outlier<4, 32, 1, 4>>();
  check_outlier_top2_cases<bfp_outlier<5, 8, 1, 18>>();
  check_outlier_top2_cases<bfp_outlier<4, 16, 1, 4, 4>>();
}

TEST_CASE("bfp_nonuniform quantize paths equal the reference bit for bit") {
  check_nonuniform<bfp_nonuniform<4, 16>>(51);
  check_nonuniform<bfp_nonuniform<4, 16, uniform_levels<4>>>(52);
  check_nonuniform<bfp_nonuniform<3, 8>>(53);
  check_nonuniform<bfp_nonuniform<5, 32>>(54);
  check_nonuniform<bfp_nonuniform<3, 16, odd_levels>>(55);
  check_nonuniform<bfp_nonuniform<4, 8, fine_levels>>(56);
  check_nonuniform<bfp_nonuniform<4, 16, log2_levels<4>, 4>>(57);  // narrow scale
  check_nonuniform<bfp_nonuniform<8, 16, uniform_levels<8>, 16>>(58);
  check_nonuniform<bfp_nonuniform<2, 4>>(59);
}

TEST_CASE("stochastic block formats draw in element order, as the reference") {
  using mx_sr = mx<minifloat<4, 3, specials_fn, stochastic>>;
  check_stochastic<mx_sr>(71, [](const float* in, float* out, std::size_t n, auto& r) { reference_mx<mx_sr>(in, out, n, r); });
  using outlier_sr = bfp_outlier<4, 16, 2, 4, 8, stochastic>;
  check_stochastic<outlier_sr>(72, [](const float* in, float* out, std::size_t n, auto& r) {
    reference_outlier<outlier_sr>(in, out, n, r);
  });
}
