// Block floating point: integer sign-magnitude mantissas sharing one exponent per block (BFP, MSFP).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

namespace detail {

/// max over a block of |x| as float bits (sign cleared). Integer order of these bits is the
/// order of magnitudes, so one integer max pass finds the largest element; a result above
/// 0x7F800000 means the block holds a NaN, equal to it means +-Inf.
QNAS_ALWAYS_INLINE std::uint32_t block_abs_max_bits(const float* in, std::size_t n) noexcept {
  std::int32_t mx = 0;  // magnitudes are < 2^31: signed compares are cheaper without SSE4.1
#pragma omp simd reduction(max : mx)
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = static_cast<std::int32_t>(to_bits(in[i]) & 0x7FFFFFFFu);
    mx = b > mx ? b : mx;
  }
  return static_cast<std::uint32_t>(mx);
}

/// floor(log2) of a magnitude given as float bits; 0 maps to `if_zero`, +Inf to 128.
QNAS_ALWAYS_INLINE int ilog2_bits(std::uint32_t abs_bits, int if_zero) noexcept {
  return abs_bits == 0 ? if_zero : ilog2(from_bits(abs_bits));
}

/// x * 2^sh for sh in [-149, 276], exact whenever the result is a normal float: done in two
/// power-of-two steps so that neither factor leaves the float range.
struct pow2_scaler {
  float s1, s2;
  explicit pow2_scaler(int sh) noexcept {
    const int a = sh > 127 ? 127 : sh;
    s1 = exp2i(a);
    s2 = exp2i(sh - a);
  }
  QNAS_ALWAYS_INLINE float operator()(float x) const noexcept { return (x * s1) * s2; }
};

/// Sign-extends the low `bits` bits of v (two's complement).
constexpr int sign_extend(std::uint64_t v, int bits) noexcept {
  const std::uint64_t mask = bits >= 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << bits) - 1);
  v &= mask;
  const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
  return static_cast<int>(static_cast<std::int64_t>(v ^ sign) - static_cast<std::int64_t>(sign));
}

/// Fills a block with quiet NaN: the policy of every BFP format in qnas for a block that holds
/// a NaN (its shared exponent is undefined; cf. the OCP MX spec, where a NaN scale makes the
/// whole block NaN).
inline void fill_nan(float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = from_bits(0x7FC00000u);
}

template <class Name>
[[noreturn]] void throw_block_nan(const char* where, const Name& name, const float* in, std::size_t n) {
  std::size_t i = 0;
  while (i < n && !is_nan(in[i])) ++i;
  throw invalid_argument(where, cat(name, " has no NaN code; block element ", i, " is NaN"));
}

}  // namespace detail

/// Block floating point with `MantissaBits`-bit sign-magnitude integer elements (sign
/// included) sharing one exponent per block of `BlockSize` values.
///
/// Element: sign + m = MantissaBits - 1 magnitude bits, read as sign-magnitude fixed point with
/// one integer bit, k / 2^(m-1) for k in [0, 2^m - 1]: so its largest binade starts at 2^0
/// (emax_elem = 0, as for MXINT8 in the OCP MX spec). A value is
///     x = (-1)^s * k * 2^(X - (m-1)),  X = the block's shared exponent.
/// Shared exponent (ScalePolicy):
///   scale_floor (default): X = floor(log2(max_i |x_i|)) - emax_elem = floor(log2 max|x|);
///     the largest element may round up past k = 2^m - 1 and then saturates to it.
///   scale_fit: X + 1 when the largest element would round past 2^m - 1 (with a stochastic
///     policy: when it could), so no element saturates.
/// X is clamped to [scale_min, scale_max]: scale_min = max(-2^(ScaleBits-1), m - 150) (the step
/// 2^(X-(m-1)) stays a float), scale_max = min(2^(ScaleBits-1) - 1, 127). A block of zeros (or
/// of values too small for scale_min) gets scale_min; elements below half a step become 0.
/// Elements are x / step rounded by `Rounding` and clamped to +-(2^m - 1) (saturation; +-Inf
/// saturate, and a block holding +-Inf gets X = scale_max).
/// NaN: there is no NaN code. quantize_block makes a block that holds a NaN all NaN (its
/// shared exponent is undefined); encode_block throws qnas::invalid_argument.
///
/// Encoding: block header = X as a ScaleBits-bit two's-complement integer (header values
/// outside [scale_min, scale_max] are never produced and decode as the nearest valid X);
/// element code = (s << m) | k (sign-magnitude; zero is always written with s = 0).
///
/// The quantize loop is one integer max pass over the block and one branch-free, vectorizable
/// scale / round / clamp pass, with no libm calls.
template <int MantissaBits, int BlockSize, int ScaleBits = 8, rounding_policy Rounding = nearest_even,
          scale_policy ScalePolicy = scale_floor>
struct bfp {
  static_assert(MantissaBits >= 2 && MantissaBits <= 24,
                "bfp<MantissaBits, BlockSize>: MantissaBits must be in [2, 24] (a sign and at least one magnitude bit)");
  static_assert(BlockSize >= 2 && BlockSize <= 4096,
                "bfp<MantissaBits, BlockSize>: BlockSize must be in [2, 4096] (BlockSize 1 is a scalar format)");
  static_assert(ScaleBits >= 1 && ScaleBits <= 16,
                "bfp<MantissaBits, BlockSize, ScaleBits>: ScaleBits must be in [1, 16]");

  using rounding = Rounding;
  using scale_policy_type = ScalePolicy;
  static constexpr format_family family = format_family::block_fp;
  static constexpr bit_tuple tuple{1, 0, MantissaBits - 1};
  static constexpr int bits = MantissaBits;
  static constexpr int block_size = BlockSize;
  static constexpr int scale_bits = ScaleBits;
  /// Magnitude bits of an element.
  static constexpr int magnitude_bits = MantissaBits - 1;
  static constexpr int max_code = (1 << magnitude_bits) - 1;
  static constexpr int scale_min = std::max(-(1 << (ScaleBits - 1)), magnitude_bits - 150);
  static constexpr int scale_max = std::min((1 << (ScaleBits - 1)) - 1, 127);
  static constexpr double max_value =
      static_cast<double>(max_code) * static_cast<double>(detail::exp2i(scale_max - (magnitude_bits - 1)));
  static constexpr double min_value = -max_value;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = "bfp<" + std::to_string(MantissaBits) + "," + std::to_string(BlockSize);
    if (ScaleBits != 8) s += ",scale_bits=" + std::to_string(ScaleBits);
    if (!std::is_same_v<Rounding, nearest_even>) s += std::string(",") + Rounding::name;
    if (!std::is_same_v<ScalePolicy, scale_floor>) s += std::string(",") + ScalePolicy::name;
    return s + ">";
  }

  /// The shared exponent of a block whose largest magnitude has float bits `mx` (no NaN).
  template <class R>
  QNAS_ALWAYS_INLINE static int shared_exponent(std::uint32_t mx, R& round) noexcept {
    int x = std::clamp(detail::ilog2_bits(mx, scale_min), scale_min, scale_max);
    if constexpr (std::is_same_v<ScalePolicy, scale_fit>) {
      if (x < scale_max) {
        const float v = detail::pow2_scaler(magnitude_bits - 1 - x)(detail::from_bits(mx));
        const bool over = R::needs_engine ? v > static_cast<float>(max_code)
                                          : round(v) > static_cast<float>(max_code);
        x += over ? 1 : 0;
      }
    }
    return x;
  }

  template <class R>
  static void quantize_block(const float* in, float* out, std::size_t n, R& round) noexcept {
    // A full block gets a compile-time trip count: both passes then vectorize without
    // remainder loops. `out` may alias `in` exactly (each element is read before it is written).
    if (n == static_cast<std::size_t>(BlockSize))
      quantize_n(in, out, static_cast<std::size_t>(BlockSize), round);
    else
      quantize_n(in, out, n, round);
  }

  template <class R>
  static std::uint64_t encode_block(const float* in, std::uint32_t* codes, std::size_t n, R& round) {
    const std::uint32_t mx = detail::block_abs_max_bits(in, n);
    if (mx > 0x7F800000u) detail::throw_block_nan("qnas::bfp::encode_block", name(), in, n);
    const int x = shared_exponent(mx, round);
    const detail::pow2_scaler to_code(magnitude_bits - 1 - x);
    constexpr float hi = static_cast<float>(max_code);
    for (std::size_t i = 0; i < n; ++i) {
      const float r = std::clamp(round(to_code(in[i])), -hi, hi);
      const auto k = static_cast<std::uint32_t>(detail::fabs(r));
      codes[i] = (r < 0.0f ? sign_bit : 0u) | k;
    }
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(x)) & header_mask;
  }

  static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n) noexcept {
    const int x = std::clamp(detail::sign_extend(header, ScaleBits), scale_min, scale_max);
    const float step = detail::exp2i(x - (magnitude_bits - 1));
    for (std::size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(codes[i] & static_cast<std::uint32_t>(max_code)) * step;
      out[i] = (codes[i] & sign_bit) ? -v : v;
    }
  }

 private:
  static constexpr std::uint32_t sign_bit = 1u << magnitude_bits;
  static constexpr std::uint64_t header_mask = (std::uint64_t{1} << ScaleBits) - 1;

  template <class R>
  QNAS_ALWAYS_INLINE static void quantize_n(const float* in, float* out, std::size_t n, R& round) noexcept {
    const std::uint32_t mx = detail::block_abs_max_bits(in, n);
    if (mx > 0x7F800000u) return detail::fill_nan(out, n);
    const int x = shared_exponent(mx, round);
    const detail::pow2_scaler to_code(magnitude_bits - 1 - x);
    const float step = detail::exp2i(x - (magnitude_bits - 1));
    constexpr float hi = static_cast<float>(max_code);
    if constexpr (R::needs_engine) {
      for (std::size_t i = 0; i < n; ++i) out[i] = std::clamp(round(to_code(in[i])), -hi, hi) * step + 0.0f;
    } else if constexpr (std::is_same_v<R, nearest_even> && magnitude_bits <= 21) {
      // Round half to even straight onto the block's grid: with e = log2(step) and
      // c = 1.5 * 2^(23 + e), (x + c) - c is x rounded to a multiple of 2^e, ties to even, exactly
      // for |x| < 2^(22 + e) (x + c then stays in c's binade, whose ulp is 2^e). Every larger
      // |x| (only in a block clamped at scale_max) stays >= 2^(22+e) - 2^e > max_code * step,
      // and +-Inf stay +-Inf, so the clamp saturates them correctly. Two adds and a clamp per
      // element, no multiply: the same results as round(x / step) * step.
      const int e = x - (magnitude_bits - 1);
      if (e + 24 <= 127) {
        const float c = detail::grid_rounding_constant(e);
        const float top = hi * step;
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) out[i] = detail::round_to_grid_clamped(in[i], c, -top, top);
        return;
      }
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) {
        float r = detail::round_half_even(to_code(in[i]));
        r = r > -hi ? r : -hi;
        r = r < hi ? r : hi;
        out[i] = r * step + 0.0f;  // + 0: a negative that rounds to zero is +0, as decode gives
      }
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) {
        float r = round(to_code(in[i]));
        r = r > -hi ? r : -hi;
        r = r < hi ? r : hi;
        out[i] = r * step + 0.0f;  // + 0: a negative that rounds to zero is +0, as decode gives
      }
    }
  }

};

/// Microsoft floating point (MSFP): block floating point with an 8-bit shared exponent and
/// 16-element blocks, as defined in B. Darvish Rouhani et al., "Pushing the limits of narrow
/// precision inferencing at cloud scale with Microsoft floating point", NeurIPS 2020.
/// MSFP12: sign + 3 magnitude bits per element (12 bits = 8-bit exponent + sign + 3 bits as
/// the paper counts them); MSFP16: sign + 7 magnitude bits.
using msfp12 = bfp<4, 16>;
using msfp16 = bfp<8, 16>;

}  // namespace qnas
