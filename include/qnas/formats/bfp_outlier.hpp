// Block floating point with per-block outliers: the K largest elements get extra high mantissa bits.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/detail/block_simd.hpp"

namespace qnas {

/// Block floating point with up to `Outliers` outliers per block: the "outlier" format of the
/// activation-compression patent family (DESIGN.md section 1). Plain BFP lets the largest
/// element of a block set the shared exponent, so one large value costs every other element
/// its low bits. Here the K = Outliers largest magnitudes of a block are stored with
/// `ExtraBits` more magnitude bits at the top, so the shared exponent can follow the
/// (K+1)-th largest magnitude and the rest of the block keeps its resolution.
///
/// Why "largest magnitude": with the shared exponent chosen below, these are exactly the
/// elements that would saturate (lose the most) as ordinary elements; picking them needs only
/// a partial sort, and the choice is deterministic (ties go to the lower index).
///
/// Definition, for a block of n <= BlockSize values (m = MantissaBits - 1 magnitude bits,
/// E = ExtraBits, K' = min(Outliers, n)):
///  - outlier slots: the K' largest |x_i|, in decreasing order of |x|, ties by lower index;
///  - r1 = the largest |x|, rK = the (K'+1)-th largest |x| (0 when n <= Outliers);
///  - shared exponent X = max(floor(log2 rK), floor(log2 r1) - E), clamped to
///    [scale_min, scale_max] (a zero r counts as -infinity): the finest exponent at which no
///    ordinary element and no outlier exceeds its binade;
///  - step = 2^(X - (m-1)) for every element; an element is k * step with k = x / step rounded
///    by `Rounding` and clamped to +-(2^m - 1) (ordinary) or +-(2^(m+E) - 1) (outlier).
///  - scale_min = max(-2^(ScaleBits-1), m - 150), scale_max = min(2^(ScaleBits-1) - 1, 127 - E),
///    so every value is a finite float.
/// NaN: as bfp, a block holding a NaN quantizes to all NaN and encode throws. +-Inf saturate.
///
/// Bit layout. Element code (MantissaBits bits): (s << m) | (k mod 2^m): sign and the low m
/// magnitude bits, for outliers too. Block header (scale_bits bits, least significant first):
///   [0, ScaleBits)                       X, two's complement
///   then for each slot j = 0 .. Outliers-1, (index_bits + ExtraBits) bits:
///     index_bits = bit_width(BlockSize - 1)   the outlier's position in the block
///     ExtraBits                               its magnitude bits above the low m (k >> m)
/// Slots j >= K' (short tail blocks) are zero. So scale_bits = ScaleBits +
/// Outliers * (index_bits + ExtraBits), and the honest storage cost per element is
/// amortized_bits = MantissaBits + scale_bits / BlockSize (e.g. bfp_outlier<4,16,1,4>:
/// 8 + 1 * (4 + 4) = 16 header bits, 5 bits per element).
template <int MantissaBits, int BlockSize, int Outliers, int ExtraBits, int ScaleBits = 8,
          rounding_policy Rounding = nearest_even>
struct bfp_outlier {
  static_assert(MantissaBits >= 2 && MantissaBits <= 23,
                "bfp_outlier<MantissaBits, BlockSize, ...>: MantissaBits must be in [2, 23]");
  static_assert(BlockSize >= 2 && BlockSize <= 4096,
                "bfp_outlier<MantissaBits, BlockSize, ...>: BlockSize must be in [2, 4096]");
  static_assert(Outliers >= 1 && Outliers < BlockSize,
                "bfp_outlier<MantissaBits, BlockSize, Outliers, ...>: Outliers must be in [1, BlockSize - 1]");
  static_assert(ExtraBits >= 1 && MantissaBits - 1 + ExtraBits <= 23,
                "bfp_outlier<MantissaBits, BlockSize, Outliers, ExtraBits>: ExtraBits must be in [1, 24 - MantissaBits]");
  static_assert(ScaleBits >= 1 && ScaleBits <= 16,
                "bfp_outlier<MantissaBits, BlockSize, Outliers, ExtraBits, ScaleBits>: ScaleBits must be in [1, 16]");

  using rounding = Rounding;
  static constexpr format_family family = format_family::block_fp;
  static constexpr bit_tuple tuple{1, 0, MantissaBits - 1};
  static constexpr int bits = MantissaBits;
  static constexpr int block_size = BlockSize;
  static constexpr int outliers = Outliers;
  static constexpr int extra_bits = ExtraBits;
  static constexpr int magnitude_bits = MantissaBits - 1;
  static constexpr int index_bits = std::bit_width(static_cast<unsigned>(BlockSize - 1));
  static constexpr int slot_bits = index_bits + ExtraBits;
  static constexpr int scale_bits = ScaleBits + Outliers * slot_bits;
  static_assert(scale_bits <= 64,
                "bfp_outlier<MantissaBits, BlockSize, Outliers, ExtraBits, ScaleBits>: the block header "
                "(ScaleBits + Outliers * (bit_width(BlockSize - 1) + ExtraBits) bits) must fit in 64 bits");
  static constexpr int max_code = (1 << magnitude_bits) - 1;
  static constexpr int max_outlier_code = (1 << (magnitude_bits + ExtraBits)) - 1;
  static constexpr int scale_min = std::max(-(1 << (ScaleBits - 1)), magnitude_bits - 150);
  static constexpr int scale_max = std::min((1 << (ScaleBits - 1)) - 1, 127 - ExtraBits);
  static constexpr double max_value = static_cast<double>(max_outlier_code) *
                                      static_cast<double>(detail::exp2i(scale_max - (magnitude_bits - 1)));
  static constexpr double min_value = -max_value;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = "bfp_outlier<" + std::to_string(MantissaBits) + "," + std::to_string(BlockSize) + "," +
                    std::to_string(Outliers) + "," + std::to_string(ExtraBits);
    if (ScaleBits != 8) s += ",scale_bits=" + std::to_string(ScaleBits);
    if (!std::is_same_v<Rounding, nearest_even>) s += std::string(",") + Rounding::name;
    return s + ">";
  }

  /// The analysis of one block: shared exponent and outlier positions (largest first).
  struct layout {
    int exponent = 0;
    int count = 0;                          ///< K' = min(Outliers, n)
    std::array<std::uint16_t, Outliers> slot{};
  };

  /// Shared exponent and outlier slots of a block without NaN: K'+1 rounds of "largest
  /// magnitude, first index holding it" over the magnitude bits, each a vectorizable max pass
  /// and a search, with every chosen element masked out (-1) for the next round.
  static layout analyse(const float* in, std::size_t n) noexcept {
    std::array<std::int32_t, BlockSize> mag;
    for (std::size_t i = 0; i < n; ++i) mag[i] = static_cast<std::int32_t>(detail::to_bits(in[i]) & 0x7FFFFFFFu);
    layout l;
    l.count = static_cast<int>(std::min<std::size_t>(Outliers, n));
    constexpr int none = -100000;
    int from_top = none, from_rest = none;
    for (int j = 0; j <= l.count && static_cast<std::size_t>(j) < n; ++j) {
      std::int32_t mx = -1;
#pragma omp simd reduction(max : mx)
      for (std::size_t i = 0; i < n; ++i) mx = mag[i] > mx ? mag[i] : mx;
      const int e = detail::ilog2_bits(static_cast<std::uint32_t>(mx), none);
      if (j == l.count) {
        from_rest = e;  // the (K'+1)-th largest
        break;
      }
      std::size_t at = 0;
      while (mag[at] != mx) ++at;
      l.slot[static_cast<std::size_t>(j)] = static_cast<std::uint16_t>(at);
      mag[at] = -1;
      if (j == 0) from_top = e == none ? none : e - ExtraBits;
    }
    l.exponent = std::clamp(std::max(from_rest, from_top), scale_min, scale_max);
    return l;
  }

  /// `out` may alias `in` exactly.
  template <class R>
  static void quantize_block(const float* in, float* out, std::size_t n, R& round) noexcept {
    if constexpr (R::needs_engine) {
      // draws in element order, outliers in place: the loop below, one element at a time
      if (detail::block_abs_max_bits(in, n) > 0x7F800000u) return detail::fill_nan(out, n);
      const layout l = analyse(in, n);
      std::array<bool, BlockSize> is_outlier{};
      for (int j = 0; j < l.count; ++j) is_outlier[l.slot[static_cast<std::size_t>(j)]] = true;
      const detail::pow2_scaler to_code(magnitude_bits - 1 - l.exponent);
      const float step = detail::exp2i(l.exponent - (magnitude_bits - 1));
      for (std::size_t i = 0; i < n; ++i) {
        const float hi = static_cast<float>(is_outlier[i] ? max_outlier_code : max_code);
        out[i] = std::clamp(round(to_code(in[i])), -hi, hi) * step + 0.0f;  // +0, not -0, as decode gives
      }
    } else {
#if defined(QNAS_BLOCK_AVX2)
      if (detail::block_avx2_available()) return quantize_block_avx2(in, out, n, round);
#endif
      quantize_block_baseline(in, out, n, round);
    }
  }

  /// quantize_block of a deterministic rounding as the baseline build compiles it.
  template <class R>
  static void quantize_block_baseline(const float* in, float* out, std::size_t n, R& round) noexcept {
    if (n == static_cast<std::size_t>(BlockSize))
      quantize_n<BlockSize>(in, out, n, round);  // fixed trip counts: vectorized, no remainders
    else
      quantize_n<0>(in, out, n, round);
  }

#if defined(QNAS_BLOCK_AVX2)
  /// The same loops compiled for AVX2 (no FMA: bit for bit the baseline's values).
  /// A full block of one outlier rounded to nearest even takes quantize_top2_avx2 first.
  template <class R>
  QNAS_BLOCK_AVX2_TARGET static void quantize_block_avx2(const float* in, float* out, std::size_t n, R& round) noexcept {
    if (n == static_cast<std::size_t>(BlockSize)) {
      if constexpr (Outliers == 1 && BlockSize % 8 == 0 && std::is_same_v<R, nearest_even> &&
                    magnitude_bits + ExtraBits <= 22)
        if (quantize_top2_avx2(in, out)) return;
      quantize_n<BlockSize>(in, out, n, round);
    } else {
      quantize_n<0>(in, out, n, round);
    }
  }
#endif

  template <class R>
  static std::uint64_t encode_block(const float* in, std::uint32_t* codes, std::size_t n, R& round) {
    if (detail::block_abs_max_bits(in, n) > 0x7F800000u)
      detail::throw_block_nan("qnas::bfp_outlier::encode_block", name(), in, n);
    const layout l = analyse(in, n);
    std::array<int, BlockSize> slot_of{};
    slot_of.fill(-1);
    for (int j = 0; j < l.count; ++j) slot_of[l.slot[static_cast<std::size_t>(j)]] = j;
    const detail::pow2_scaler to_code(magnitude_bits - 1 - l.exponent);
    std::uint64_t header = static_cast<std::uint64_t>(static_cast<std::uint32_t>(l.exponent)) & low_mask(ScaleBits);
    for (std::size_t i = 0; i < n; ++i) {
      const int j = slot_of[i];
      const float hi = static_cast<float>(j >= 0 ? max_outlier_code : max_code);
      const float r = std::clamp(round(to_code(in[i])), -hi, hi);
      const auto k = static_cast<std::uint32_t>(detail::fabs(r));
      codes[i] = (r < 0.0f ? sign_bit : 0u) | (k & static_cast<std::uint32_t>(max_code));
      if (j >= 0) {
        const std::uint64_t slot = static_cast<std::uint64_t>(i) | (static_cast<std::uint64_t>(k >> magnitude_bits) << index_bits);
        header |= slot << (ScaleBits + j * slot_bits);
      }
    }
    return header;
  }

  static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n) noexcept {
    const int x = std::clamp(detail::sign_extend(header, ScaleBits), scale_min, scale_max);
    const float step = detail::exp2i(x - (magnitude_bits - 1));
    for (std::size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(codes[i] & static_cast<std::uint32_t>(max_code)) * step;
      out[i] = (codes[i] & sign_bit) ? -v : v;
    }
    const int count = static_cast<int>(std::min<std::size_t>(Outliers, n));
    for (int j = 0; j < count; ++j) {
      const std::uint64_t slot = (header >> (ScaleBits + j * slot_bits)) & low_mask(slot_bits);
      const auto i = static_cast<std::size_t>(slot & low_mask(index_bits));
      if (i >= n) continue;  // not produced by encode_block
      const auto k = static_cast<std::uint32_t>(slot >> index_bits) << magnitude_bits |
                     (codes[i] & static_cast<std::uint32_t>(max_code));
      const float v = static_cast<float>(k) * step;
      out[i] = (codes[i] & sign_bit) ? -v : v;
    }
  }

 private:
  static constexpr std::uint32_t sign_bit = 1u << magnitude_bits;
  static constexpr std::uint64_t low_mask(int b) noexcept {
    return b >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << b) - 1;
  }

  /// analyse() and the element loop of quantize_block for a deterministic rounding: the
  /// magnitude bits once, then per outlier a vectorized search for the first index holding the
  /// current maximum and a max pass without it; every element is rounded with the ordinary
  /// bound in one vectorized loop, and the K' outliers again afterwards with theirs.
  template <std::size_t Fixed, class R>
  QNAS_ALWAYS_INLINE static void quantize_n(const float* in, float* out, std::size_t n_dyn, R& round) noexcept {
    const std::size_t n = Fixed ? Fixed : n_dyn;
    if (n == 0) return;
    std::int32_t mag[BlockSize];
    std::int32_t top = 0;
#pragma omp simd reduction(max : top)
    for (std::size_t i = 0; i < n; ++i) {
      mag[i] = static_cast<std::int32_t>(detail::to_bits(in[i]) & 0x7FFFFFFFu);
      top = mag[i] > top ? mag[i] : top;
    }
    if (top > 0x7F800000) return detail::fill_nan(out, n);
    constexpr int none = -100000;
    const int e1 = detail::ilog2_bits(static_cast<std::uint32_t>(top), none);
    const int from_top = e1 == none ? none : e1 - ExtraBits;
    const std::size_t count = n < static_cast<std::size_t>(Outliers) ? n : static_cast<std::size_t>(Outliers);
    std::size_t slot[Outliers];
    float saved[Outliers];
    if constexpr (Outliers == 1) {
      // One outlier: the largest magnitude below the maximum, the number of elements holding
      // the maximum (two of them: the rest's largest is the maximum) and the first index holding
      // it, all in one pass that depends only on the maximum.
      std::int32_t below = -1, held = 0, at = BlockSize;
#pragma omp simd reduction(max : below) reduction(+ : held) reduction(min : at)
      for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t v = mag[i] < top ? mag[i] : -1;
        below = v > below ? v : below;
        held += mag[i] == top ? 1 : 0;
        const std::int32_t here = mag[i] == top ? static_cast<std::int32_t>(i) : BlockSize;
        at = here < at ? here : at;
      }
      slot[0] = static_cast<std::size_t>(at);
      saved[0] = in[at];  // `out` may be `in`
      top = held > 1 ? top : below;
    } else {
      for (std::size_t j = 0;;) {
        std::int32_t at = BlockSize;  // the first index holding `top`
#pragma omp simd reduction(min : at)
        for (std::size_t i = 0; i < n; ++i) {
          const std::int32_t here = mag[i] == top ? static_cast<std::int32_t>(i) : BlockSize;
          at = here < at ? here : at;
        }
        slot[j] = static_cast<std::size_t>(at);
        saved[j] = in[at];  // `out` may be `in`
        // mag[at] = -1 as a whole-vector select: a scalar store into the vectors the next pass
        // loads would stall it (no store forwarding from a narrow store to a wide load)
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) mag[i] = static_cast<std::int32_t>(i) == at ? -1 : mag[i];
        if (++j == count && count == n) break;  // every element an outlier: no (K'+1)-th magnitude
        top = -1;
#pragma omp simd reduction(max : top)
        for (std::size_t i = 0; i < n; ++i) top = mag[i] > top ? mag[i] : top;
        if (j == count) break;
      }
    }
    const int from_rest = count < n ? detail::ilog2_bits(static_cast<std::uint32_t>(top), none) : none;
    const int x = std::clamp(std::max(from_rest, from_top), scale_min, scale_max);
    const detail::pow2_scaler to_code(magnitude_bits - 1 - x);
    const float step = detail::exp2i(x - (magnitude_bits - 1));
    constexpr float hi = static_cast<float>(max_code);
    constexpr float hi_outlier = static_cast<float>(max_outlier_code);
    const int e = x - (magnitude_bits - 1);
    if constexpr (std::is_same_v<R, nearest_even>) {
      // Rounding half to even straight onto the grid as bfp does: with e = log2(step) and
      // c = 1.5 * 2^(23 + e), (v + c) - c is v rounded to a multiple of 2^e, exactly for
      // |v| < 2^(22 + e); every larger |v| rounds (monotonically) to at least 2^(22 + e) - 2^e,
      // beyond the bound (2^m - 1) * 2^e as m <= 22, and saturates. A zero comes out +0, as
      // `+ 0.0f` gives in element_loop.
      if (e + 24 <= 127) {
        const float c = detail::grid_rounding_constant(e);
        const float lim = hi * step;
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) out[i] = detail::round_to_grid_clamped(in[i], c, -lim, lim);
        if constexpr (magnitude_bits + ExtraBits <= 22) {  // the same argument for the outliers
          const float lim_outlier = hi_outlier * step;
          for (std::size_t j = 0; j < count; ++j)
            out[slot[j]] = detail::round_to_grid_clamped(saved[j], c, -lim_outlier, lim_outlier);
          return;
        }
      } else {
        element_loop(in, out, n, to_code, step, round);
      }
    } else {
      element_loop(in, out, n, to_code, step, round);
    }
    for (std::size_t j = 0; j < count; ++j) {
      float r = round(to_code(saved[j]));
      r = r > -hi_outlier ? r : -hi_outlier;
      r = r < hi_outlier ? r : hi_outlier;
      out[slot[j]] = r * step + 0.0f;  // +0, not -0, as decode gives
    }
  }

#if defined(QNAS_BLOCK_AVX2)
  /// quantize_n<BlockSize> of one outlier, rounding to nearest even, in registers: the largest
  /// and second largest magnitudes in one pass (detail::top2_avx2), no search for the outlier's
  /// index: without a tie for the largest, the outlier is the one element whose magnitude equals
  /// it, so every element is rounded in one vectorized loop whose bound is chosen per lane
  /// (outlier or ordinary). Returns false, having written nothing, where that does not hold: a
  /// tie for a nonzero largest magnitude (the first index holding it is the outlier) or a grid
  /// beyond the exact range of the rounding constant (e + 24 > 127); quantize_n takes those.
  /// An all-zero block ties at 0 and is kept: every element rounds to +0 under either bound.
  QNAS_BLOCK_AVX2_TARGET static bool quantize_top2_avx2(const float* in, float* out) noexcept {
    constexpr std::size_t V = BlockSize / 8;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    __m256 x[V];
    __m256i mag[V];
    for (std::size_t k = 0; k < V; ++k) {
      x[k] = _mm256_loadu_ps(in + 8 * k);
      mag[k] = _mm256_and_si256(_mm256_castps_si256(x[k]), abs_mask);
    }
    const detail::top2_i32 t = detail::top2_avx2(mag);
    if (t.first > 0x7F800000) {  // a NaN
      detail::fill_nan(out, BlockSize);
      return true;
    }
    if (t.second == t.first && t.first != 0) return false;
    constexpr int none = -100000;
    const int e1 = detail::ilog2_bits(static_cast<std::uint32_t>(t.first), none);
    const int from_top = e1 == none ? none : e1 - ExtraBits;
    const int from_rest = detail::ilog2_bits(static_cast<std::uint32_t>(t.second), none);
    const int xe = std::clamp(std::max(from_rest, from_top), scale_min, scale_max);
    const int e = xe - (magnitude_bits - 1);
    if (e + 24 > 127) return false;
    const float step = detail::exp2i(e);
    const float lim = static_cast<float>(max_code) * step;
    const float lim_outlier = static_cast<float>(max_outlier_code) * step;
    const __m256 c = _mm256_set1_ps(detail::grid_rounding_constant(e));
    const __m256 hi = _mm256_set1_ps(lim), hi_outlier = _mm256_set1_ps(lim_outlier);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
    const __m256i top = _mm256_set1_epi32(t.first);
    for (std::size_t k = 0; k < V; ++k) {
      // detail::round_to_grid_clamped with this lane's bound: _mm256_max_ps(a, b) is
      // a > b ? a : b and _mm256_min_ps(a, b) is a < b ? a : b, its selects exactly
      const __m256 b = _mm256_blendv_ps(hi, hi_outlier, _mm256_castsi256_ps(_mm256_cmpeq_epi32(mag[k], top)));
      __m256 r = _mm256_sub_ps(_mm256_add_ps(x[k], c), c);
      r = _mm256_max_ps(r, _mm256_xor_ps(b, sign));
      r = _mm256_min_ps(r, b);
      _mm256_storeu_ps(out + 8 * k, r);
    }
    return true;
  }
#endif

  template <class R>
  QNAS_ALWAYS_INLINE static void element_loop(const float* in, float* out, std::size_t n, const detail::pow2_scaler& to_code,
                                              float step, R& round) noexcept {
    constexpr float hi = static_cast<float>(max_code);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      float r = round(to_code(in[i]));
      r = r > -hi ? r : -hi;
      r = r < hi ? r : hi;
      out[i] = r * step + 0.0f;  // +0, not -0, as decode gives
    }
  }
};

}  // namespace qnas
