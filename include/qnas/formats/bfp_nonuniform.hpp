// Block floating point with non-uniform magnitude levels (a codebook under a shared exponent).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/detail/block_simd.hpp"

namespace qnas {

/// A table of magnitude levels for bfp_nonuniform: a type with
///   static constexpr std::array<double, N> magnitudes;   // strictly increasing, in [0, 1)
/// Level L stands for the magnitude L * 2^(X+1) in a block with shared exponent X (so the
/// block maximum, in [2^X, 2^(X+1)), sits at [0.5, 1) of the table's scale).
template <class L>
concept level_table = requires {
  { L::magnitudes.size() } -> std::convertible_to<std::size_t>;
  { L::magnitudes[0] } -> std::convertible_to<double>;
};

/// The default, log-spaced levels for MantissaBits bits per element (sign included):
/// N = 2^(MantissaBits-1) levels {0, 2^(1-N), 2^(2-N), ..., 2^-1}: every nonzero element is a
/// power of two times the block scale, so a product is a shift (e-quant under a shared
/// exponent). The block maximum always becomes 2^X.
template <int MantissaBits>
struct log2_levels {
  static constexpr std::size_t count = std::size_t{1} << (MantissaBits - 1);
  static constexpr std::array<double, count> magnitudes = [] {
    std::array<double, count> a{};
    for (std::size_t k = 1; k < count; ++k) {
      double v = 1.0;
      for (std::size_t j = k; j < count; ++j) v /= 2.0;  // 2^(k - count)
      a[k] = v;
    }
    return a;
  }();
};

/// Uniform levels k / 2^(MantissaBits-1): bfp_nonuniform with these is bfp<MantissaBits, ...>
/// (same values), a reference point for custom codebooks.
template <int MantissaBits>
struct uniform_levels {
  static constexpr std::size_t count = std::size_t{1} << (MantissaBits - 1);
  static constexpr std::array<double, count> magnitudes = [] {
    std::array<double, count> a{};
    for (std::size_t k = 0; k < count; ++k) a[k] = static_cast<double>(k) / static_cast<double>(count);
    return a;
  }();
};

namespace detail {

/// 2^e as a double for e in [-1022, 1023].
constexpr double nonuniform_pow2(int e) noexcept {
  return std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52);
}

template <class Levels>
struct level_checks {
  static constexpr std::size_t n = Levels::magnitudes.size();
  static constexpr float at(std::size_t k) noexcept { return static_cast<float>(Levels::magnitudes[k]); }
  static constexpr bool increasing_in_unit() noexcept {
    for (std::size_t k = 0; k < n; ++k) {
      if (!(at(k) >= 0.0f && at(k) < 1.0f)) return false;
      if (k > 0 && !(at(k) > at(k - 1))) return false;
    }
    return true;
  }
  /// The block maximum (a in [0.5, 1)) must round to a level >= 0.5, or the shared exponent
  /// of a quantized block would differ from the original's (quantize would not be idempotent).
  static constexpr bool keeps_block_max() noexcept {
    std::size_t hi = 0;
    while (hi < n && at(hi) < 0.5f) ++hi;
    if (hi == n) return false;
    if (hi == 0) return true;
    return static_cast<double>(at(hi)) - 0.5 < 0.5 - static_cast<double>(at(hi - 1));
  }
  /// The exponent of the lowest set bit over the nonzero levels (as floats).
  static constexpr int lowest_bit() noexcept {
    int low = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint32_t b = to_bits(at(k));
      if (b == 0) continue;
      const bool normal = (b >> 23) != 0;
      const int e = normal ? static_cast<int>(b >> 23) - 150 : -149;
      const std::uint32_t mant = normal ? (b & 0x7FFFFFu) | 0x800000u : b;
      low = std::min(low, e + std::countr_zero(mant));
    }
    return low;
  }
};

}  // namespace detail

/// Block floating point whose element magnitudes are non-uniform levels: each element is
/// sign + an index into `Levels` (MantissaBits - 1 index bits), under a shared exponent per
/// block of BlockSize values.
///
/// Definition, for a block (m = MantissaBits - 1, levels L_0 < ... < L_{N-1} in [0, 1) as floats):
///  - shared exponent X = floor(log2 max|x|) clamped to [scale_min, scale_max], as bfp;
///  - an element is (-1)^s * L_k * 2^(X+1), k = the level nearest to |x| / 2^(X+1) (compared
///    exactly in double); a tie between two levels goes to the even index (round half to even
///    on the code); magnitudes above the top level (only when X is clamped) take the top level;
///  - scale_min = max(-2^(ScaleBits-1), -150 - lowest set bit of the levels) so every value is
///    an exact float, scale_max = min(2^(ScaleBits-1) - 1, 127).
/// Requirements on Levels (checked at compile time): 1 <= N <= 2^m, strictly increasing in
/// [0, 1) after conversion to float, and the block maximum (in [0.5, 1)) must round to a level
/// >= 0.5 (so quantize is idempotent). Zero is representable iff L_0 == 0; without it, 0 gives
/// +L_0 * 2^(X+1).
/// NaN: as bfp, a block holding a NaN quantizes to all NaN and encode throws. +-Inf saturate.
///
/// Encoding: header = X as a ScaleBits-bit two's-complement integer; element code =
/// (s << m) | k (sign-magnitude; a zero level is written with s = 0; k >= N is unused and
/// decodes as the top level).
///
/// Family: `codebook`, not `block_fp`: the energy model prices block_fp as integer mantissa
/// products, which these levels are not (a product needs a table lookup, or a shift for the
/// log2 default).
template <int MantissaBits, int BlockSize, class Levels = log2_levels<MantissaBits>, int ScaleBits = 8>
struct bfp_nonuniform {
  static_assert(MantissaBits >= 2 && MantissaBits <= 9,
                "bfp_nonuniform<MantissaBits, BlockSize, ...>: MantissaBits must be in [2, 9]");
  static_assert(BlockSize >= 2 && BlockSize <= 4096,
                "bfp_nonuniform<MantissaBits, BlockSize, ...>: BlockSize must be in [2, 4096]");
  static_assert(ScaleBits >= 1 && ScaleBits <= 16,
                "bfp_nonuniform<MantissaBits, BlockSize, Levels, ScaleBits>: ScaleBits must be in [1, 16]");
  static_assert(level_table<Levels>,
                "bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must have a static constexpr "
                "std::array<double, N> magnitudes");

 private:
  // a stand-in table when Levels is not one, so that only the static_assert above reports
  struct stand_in {
    static constexpr std::array<double, 1> magnitudes{0.5};
  };
  using checks = detail::level_checks<std::conditional_t<level_table<Levels>, Levels, stand_in>>;

 public:
  static_assert(checks::n >= 1, "bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must not be empty");
  static_assert(checks::n <= (std::size_t{1} << (MantissaBits - 1)),
                "bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels has more entries than "
                "MantissaBits - 1 index bits can address");
  static_assert(checks::increasing_in_unit(),
                "bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must be strictly increasing in [0, 1)");
  static_assert(checks::keeps_block_max(),
                "bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must round every magnitude in "
                "[0.5, 1) to a level >= 0.5 (add a level at or just above 0.5)");

  using rounding = nearest_even;
  using levels_type = Levels;
  static constexpr format_family family = format_family::codebook;
  static constexpr bit_tuple tuple{1, 0, MantissaBits - 1};
  static constexpr int bits = MantissaBits;
  static constexpr int block_size = BlockSize;
  static constexpr int scale_bits = ScaleBits;
  static constexpr int index_bits = MantissaBits - 1;
  static constexpr std::size_t level_count = checks::n;
  static constexpr int scale_min = std::max(-(1 << (ScaleBits - 1)), -150 - checks::lowest_bit());
  static constexpr int scale_max = std::min((1 << (ScaleBits - 1)) - 1, 127);
  static constexpr double max_value = static_cast<double>(checks::at(checks::n - 1)) * detail::nonuniform_pow2(scale_max + 1);
  static constexpr double min_value = -max_value;
  static constexpr bool has_zero = checks::at(0) == 0.0f;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = "bfp_nonuniform<" + std::to_string(MantissaBits) + "," + std::to_string(BlockSize);
    if constexpr (std::is_same_v<Levels, log2_levels<MantissaBits>>) s += ",log2";
    else if constexpr (std::is_same_v<Levels, uniform_levels<MantissaBits>>) s += ",uniform";
    else {
      s += ",{";
      for (std::size_t k = 0; k < checks::n; ++k) s += detail::cat(k ? "," : "", checks::at(k));
      s += "}";
    }
    if (ScaleBits != 8) s += ",scale_bits=" + std::to_string(ScaleBits);
    return s + ">";
  }

  /// Index of the level nearest to a >= 0 (ties to the even index): the number of midpoints
  /// below a, plus the midpoint a sits on when that midpoint's upper level has the even index.
  /// Branch-free (a data-dependent scan would mispredict on every element).
  QNAS_ALWAYS_INLINE static std::uint32_t nearest_level(double a) noexcept {
    std::uint32_t k = 0;
    for (std::size_t j = 0; j + 1 < checks::n; ++j)
      k += static_cast<std::uint32_t>(a > midpoint[j]) |
           (static_cast<std::uint32_t>(a == midpoint[j]) & static_cast<std::uint32_t>(j & 1u));
    return k;
  }

  /// Quantizes one block (`out` may alias `in` exactly). The element loop compares magnitude
  /// bits with per-block thresholds (see quantize_n) instead of scaling every element to double.
  template <class R>
  static void quantize_block(const float* in, float* out, std::size_t n, R&) noexcept {
#if defined(QNAS_BLOCK_AVX2)
    if (detail::block_avx2_available()) return quantize_block_avx2(in, out, n);
#endif
    quantize_block_baseline(in, out, n);
  }

  /// quantize_block as the baseline build compiles it.
  static void quantize_block_baseline(const float* in, float* out, std::size_t n) noexcept {
    if (n == static_cast<std::size_t>(BlockSize))
      quantize_n<BlockSize>(in, out, n);  // fixed trip count: vectorized, no remainder
    else
      quantize_n<0>(in, out, n);
  }

#if defined(QNAS_BLOCK_AVX2)
  /// The same loops compiled for AVX2 (no FMA: bit for bit the baseline's values).
  QNAS_BLOCK_AVX2_TARGET static void quantize_block_avx2(const float* in, float* out, std::size_t n) noexcept {
    if (n == static_cast<std::size_t>(BlockSize))
      quantize_n<BlockSize>(in, out, n);
    else
      quantize_n<0>(in, out, n);
  }
#endif

  template <class R>
  static std::uint64_t encode_block(const float* in, std::uint32_t* codes, std::size_t n, R&) {
    const std::uint32_t mx = detail::block_abs_max_bits(in, n);
    if (mx > 0x7F800000u) detail::throw_block_nan("qnas::bfp_nonuniform::encode_block", name(), in, n);
    const int x = shared_exponent(mx);
    const double inv = detail::nonuniform_pow2(-(x + 1));
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t k = nearest_level(static_cast<double>(detail::fabs(in[i])) * inv);
      const bool neg = in[i] < 0.0f && level_value[k] != 0.0f;
      codes[i] = (neg ? sign_bit : 0u) | k;
    }
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(x)) & ((std::uint64_t{1} << ScaleBits) - 1);
  }

  static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n) noexcept {
    const int x = std::clamp(detail::sign_extend(header, ScaleBits), scale_min, scale_max);
    const double scale = detail::nonuniform_pow2(x + 1);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t k = std::min<std::uint32_t>(codes[i] & index_mask, static_cast<std::uint32_t>(checks::n - 1));
      const auto v = static_cast<float>(static_cast<double>(level_value[k]) * scale);
      out[i] = (codes[i] & sign_bit) ? -v : v;
    }
  }

 private:
  static constexpr std::uint32_t sign_bit = 1u << index_bits;
  static constexpr std::uint32_t index_mask = sign_bit - 1u;
  static constexpr std::array<float, checks::n> level_value = [] {
    std::array<float, checks::n> a{};
    for (std::size_t k = 0; k < checks::n; ++k) a[k] = checks::at(k);
    return a;
  }();

  /// Midpoints between neighbouring levels, exact in double (a float sum fits in 25 bits).
  static constexpr std::array<double, (checks::n > 1 ? checks::n - 1 : 1)> midpoint = [] {
    std::array<double, (checks::n > 1 ? checks::n - 1 : 1)> a{};
    for (std::size_t k = 0; k + 1 < checks::n; ++k)
      a[k] = (static_cast<double>(checks::at(k)) + static_cast<double>(checks::at(k + 1))) / 2;
    return a;
  }();

  static int shared_exponent(std::uint32_t mx) noexcept {
    return std::clamp(detail::ilog2_bits(mx, scale_min), scale_min, scale_max);
  }

  /// The definition, element by element, is: k = nearest_level(|x| * 2^-(X+1)) in double, value
  /// float(L_k * 2^(X+1)) with x's sign unless it is zero. Scaling both sides of a comparison by
  /// 2^(X+1) is exact in double, so `a > midpoint[j]` is |x| > T_j with T_j = midpoint[j] * 2^(X+1),
  /// and `a == midpoint[j]` is |x| == T_j. For a float |x| these are |x| >= t_j with t_j the
  /// smallest float above T_j (above or equal for odd j, whose ties go up): one integer compare
  /// of magnitude bits per midpoint. The t_j increase with j, so the level is the last whose
  /// threshold |x| reaches, picked by selects. The thresholds and the N level values (the
  /// definition's own expression) depend only on X: a table of them per X, built once, when it
  /// is small; else computed per block.
  struct block_constants {
    std::int32_t threshold[checks::n > 1 ? checks::n - 1 : 1];
    std::uint32_t value[checks::n];
  };

  static void constants_of(int x, block_constants& k) noexcept {
    const double scale = detail::nonuniform_pow2(x + 1);
    for (std::size_t j = 0; j + 1 < checks::n; ++j) {
      const double t = midpoint[j] * scale;
      const float f = static_cast<float>(t);  // the nearest float: t_j is f or the float after it
      const double fd = f;
      const bool after = (j & 1u) ? fd < t : fd <= t;
      k.threshold[j] = static_cast<std::int32_t>(detail::to_bits(f) + (after ? 1u : 0u));  // f >= 0: the next float
    }
    for (std::size_t l = 0; l < checks::n; ++l)
      k.value[l] = detail::to_bits(static_cast<float>(static_cast<double>(level_value[l]) * scale));
  }

  static constexpr std::size_t exponents = static_cast<std::size_t>(scale_max - scale_min + 1);
  static constexpr bool tabled = exponents * sizeof(block_constants) <= 64 * 1024;

  static const block_constants& constants_at(int x) noexcept {
    static const std::array<block_constants, exponents> table = [] {
      std::array<block_constants, exponents> t;
      for (std::size_t i = 0; i < exponents; ++i) constants_of(scale_min + static_cast<int>(i), t[i]);
      return t;
    }();
    return table[static_cast<std::size_t>(x - scale_min)];
  }

  template <std::size_t Fixed>
  QNAS_ALWAYS_INLINE static void quantize_n(const float* in, float* out, std::size_t n_dyn) noexcept {
    const std::size_t n = Fixed ? Fixed : n_dyn;
    const std::uint32_t mx = detail::block_abs_max_bits(in, n);
    if (mx > 0x7F800000u) return detail::fill_nan(out, n);
    const int x = shared_exponent(mx);
    if constexpr (tabled) {
      element_loop<Fixed>(in, out, n, constants_at(x));
    } else {
      block_constants k;
      constants_of(x, k);
      element_loop<Fixed>(in, out, n, k);
    }
  }

  template <std::size_t Fixed>
  QNAS_ALWAYS_INLINE static void element_loop(const float* in, float* out, std::size_t n_dyn, const block_constants& k) noexcept {
    const std::size_t n = Fixed ? Fixed : n_dyn;
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t xb = detail::to_bits(in[i]);
      const auto a = static_cast<std::int32_t>(xb & 0x7FFFFFFFu);
      std::uint32_t v = k.value[0];
      for (std::size_t j = 0; j + 1 < checks::n; ++j) {
        const std::uint32_t reached = 0u - static_cast<std::uint32_t>(a >= k.threshold[j]);  // a mask: no branch
        v = (k.value[j + 1] & reached) | (v & ~reached);
      }
      // x < 0 (not -0) and a nonzero value: the negative value; zero has no sign code (+0)
      const std::uint32_t neg = 0u - static_cast<std::uint32_t>((xb > 0x80000000u) & (v != 0u));
      out[i] = detail::from_bits(v | (neg & 0x80000000u));
    }
  }
};

}  // namespace qnas
