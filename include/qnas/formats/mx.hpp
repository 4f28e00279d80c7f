// OCP Microscaling (MX v1.0) block formats: a block of small scalar elements sharing one E8M0
// power-of-two scale (mxfp8, mxfp6, mxfp4, mxint8).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>  // policies.hpp names std::uniform_random_bit_generator without including it
#include <string>
#include <type_traits>

#include "qnas/formats/concept.hpp"
#include "qnas/formats/detail/block_simd.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/minifloat.hpp"

namespace qnas {

namespace detail {

/// Whether a rounding function object draws random numbers (stochastic_rounder); such a rounder
/// cannot be asked "where would this value round?" without consuming a draw.
template <class R>
constexpr bool rounder_is_random() noexcept {
  if constexpr (requires { R::needs_engine; })
    return R::needs_engine;
  else
    return false;
}

/// A short exact form of `Element::quantize_one(clamp(y, Element::min_value, Element::max_value))`
/// for the MX elements whose rounding is nearest_even, valid for y not NaN (an MX block with a
/// NaN or Inf never reaches the element loop). `fast` is false for the other elements, which
/// keep the general loop.
template <class Element, class R>
struct mx_element_kernel {
  static constexpr bool fast = false;
};

/// Minifloat elements: the clamped |y| rounded half to even on its binade's grid (the binade of
/// 2^emin below it) by adding and removing C = 2^(max(floor(log2|y|), emin) + 23 - M): |y| < 2^(e+1)
/// <= C keeps |y| + C in C's binade, whose ulp is the grid step 2^(e-M), and C / ulp = 2^23 is
/// even, so ties go to the even grid point. This is quantize_one's rounding with nothing left to
/// saturate or to propagate: y is at most max_value, which lies on the grid. A zero result
/// keeps y's sign, as quantize_one's does.
template <int E, int M, class Specials, class Overflow>
struct mx_element_kernel<basic_minifloat<E, M, Specials, Overflow, keep_subnormals, nearest_even>, nearest_even> {
  using element = basic_minifloat<E, M, Specials, Overflow, keep_subnormals, nearest_even>;
  static constexpr bool fast = M <= 22 && element::emax + 23 - M <= 127;  // C stays a float (not E = 8)
  static constexpr std::int32_t max_bits = static_cast<std::int32_t>(to_bits(static_cast<float>(element::max_value)));
  static constexpr std::int32_t emin_bits = (element::emin + 127) << 23;
  static constexpr std::int32_t c_offset = (23 - M) << 23;
  QNAS_ALWAYS_INLINE static float quantize(float y) noexcept {
    const std::uint32_t yb = to_bits(y);
    // Selects as masks: a `?:` here becomes a branch that GCC then will not vectorize.
    std::int32_t a = static_cast<std::int32_t>(yb & 0x7FFFFFFFu);
    a ^= (a ^ max_bits) & -static_cast<std::int32_t>(a > max_bits);
    std::int32_t e = a & 0x7F800000;
    e ^= (e ^ emin_bits) & -static_cast<std::int32_t>(e < emin_bits);
    const float c = from_bits(static_cast<std::uint32_t>(e + c_offset));
    const float r = (from_bits(static_cast<std::uint32_t>(a)) + c) - c;
    return from_bits(to_bits(r) | (yb & 0x80000000u));
  }
};

/// Fixed-point elements of up to 22 bits: y rounded half to even to a multiple of the step 2^se
/// by adding and removing c = 1.5 * 2^(23 + se) (|y| < 2^(22 + se) keeps y + c in c's binade,
/// whose ulp is the step; c / step is even), then clamped. The clamp bounds lie on the grid, so
/// rounding and clamping commute; a larger |y| rounds (monotonically) to at least 2^(22 + se),
/// beyond the bounds, and still clamps right. A zero result is +0, as quantize_one's `+ 0.0f`
/// gives.
template <int Bits, int Integer, bool KeepNegative, bool Symmetric>
struct mx_element_kernel<fixed_point<Bits, Integer, KeepNegative, Symmetric, nearest_even>, nearest_even> {
  using element = fixed_point<Bits, Integer, KeepNegative, Symmetric, nearest_even>;
  static constexpr int se = element::step_exponent;
  static constexpr bool fast = Bits <= 22 && se >= -140 && se <= 100;
  static constexpr float lo = static_cast<float>(element::min_value);
  static constexpr float hi = static_cast<float>(element::max_value);
  static constexpr float c = fast ? grid_rounding_constant(se) : 0.0f;
  QNAS_ALWAYS_INLINE static float quantize(float y) noexcept { return round_to_grid_clamped(y, c, lo, hi); }
};

/// The name of a standard MX alias (mxfp8_e4m3, ...); nullptr for the others.
template <class F>
struct standard_mx_name {
  static constexpr const char* value = nullptr;
};

}  // namespace detail

/// An MX block format: `BlockSize` elements of the scalar format `Element` share one scale 2^s,
/// stored as an unsigned ScaleBits-bit code s + B with B = 2^(ScaleBits-1) - 1 and s in [-B, B];
/// the all-ones code means the block is NaN. ScaleBits = 8 is the OCP E8M0 scale (B = 127,
/// code 0xFF = NaN); fewer bits are microxcaling's `scale_bits` (e.g. 5: s in [-15, 15]). This
/// is the semantics of the OCP Microscaling Formats spec v1.0 (section 6.3) as implemented by
/// microsoft/microxcaling (`_quantize_mx`):
///   s = floor(log2(max_i |x_i|)) - emax_elem, with emax_elem = floor(log2(Element::max_value))
///   (8 for fp8_e4m3, 15 for fp8_e5m2, 4 for fp6_e3m2, 2 for fp6_e2m3 and fp4_e2m1, 0 for int8);
///   element i = Element::quantize(x_i / 2^s) with SATURATION to [Element::min_value,
///   Element::max_value] (elements never overflow, whatever Element's overflow policy), rounded
///   with Element's rounding policy; the value is element * 2^s.
/// log2 is taken exactly from the float's bits (microxcaling's float log2 can round up just
/// below a power of two). Corner cases:
///   - a NaN or +-Inf anywhere in the block makes the whole block NaN (scale code 0xFF);
///   - an all-zero block, or one whose s would be below -B, uses s = -B (elements underflow
///     towards 0 as the element format allows): microxcaling clamps the scale from below;
///   - s above B makes the block NaN (microxcaling: a shared exponent above the scale range is
///     NaN; with B = 127 possible when Element::max_value < 1, or with scale_fit).
/// ScalePolicy `scale_fit` raises s by one when the block maximum would round past the element
/// maximum (so nothing saturates); if that block's maximum is >= 2^127, its rounded maximum
/// could be 2^128, beyond float, and the block becomes NaN instead.
/// Element codes of a NaN block are 0. Blocks shorter than BlockSize (ragged tails) take their
/// scale from their own elements.
template <class Element, int BlockSize = 32, class ScalePolicy = scale_floor, int ScaleBits = 8>
struct mx {
  static_assert(scalar_format<Element>,
                "mx<Element, BlockSize, ScalePolicy>: Element must be a scalar number format (block_size == 1, "
                "with encode_one/decode_one/quantize_one), e.g. fp8_e4m3; a block format cannot be an MX element");
  static_assert(BlockSize >= 2,
                "mx<Element, BlockSize, ScalePolicy>: BlockSize must be >= 2 (BlockSize must be > 0, and a block of "
                "one element is a scalar format with a per-element scale)");
  static_assert(scale_policy<ScalePolicy>, "mx<Element, BlockSize, ScalePolicy>: ScalePolicy must be scale_floor or scale_fit");
  static_assert(ScaleBits >= 1 && ScaleBits <= 8,
                "mx<Element, BlockSize, ScalePolicy, ScaleBits>: ScaleBits must be in [1, 8] (8 is the OCP E8M0 scale)");

 private:
  // Keeps the rest of the class well-formed after a failed static_assert (one clear error).
  using elem = std::conditional_t<scalar_format<Element>, Element, fp8_e4m3>;
  static constexpr std::size_t block = BlockSize >= 2 ? static_cast<std::size_t>(BlockSize) : 2;
  static constexpr bool fit = std::is_same_v<ScalePolicy, scale_fit>;
  static constexpr int nan_exponent = 128;  // shared exponent that marks a NaN block (above every B)
  static constexpr int sb = ScaleBits >= 1 && ScaleBits <= 8 ? ScaleBits : 8;
  static constexpr float elem_max = static_cast<float>(elem::max_value);
  static constexpr float elem_min = static_cast<float>(elem::min_value);

 public:
  static_assert(elem::max_value > 0.0, "mx<Element, BlockSize, ScalePolicy>: Element::max_value must be > 0");

  using element = Element;
  using scale = ScalePolicy;
  using rounding = typename elem::rounding;
  static constexpr format_family family = format_family::block_fp;
  static constexpr bit_tuple tuple = elem::tuple;
  static constexpr int bits = elem::bits;
  static constexpr int block_size = static_cast<int>(block);
  static constexpr int scale_bits = sb;
  /// B: the scale code is s + B, and s lies in [-B, B].
  static constexpr int scale_bias = (1 << (sb - 1)) - 1;
  static constexpr int scale_min = -scale_bias;
  static constexpr int scale_max = scale_bias;
  static constexpr std::uint32_t nan_scale_code = (1u << sb) - 1u;
  /// floor(log2) of the element's largest value: the exponent the block maximum is aligned to.
  static constexpr int emax_elem = detail::ilog2(elem_max);
  static constexpr double max_value = elem::max_value * detail::pow2d(scale_max);
  static constexpr double min_value = elem::min_value * detail::pow2d(scale_max);
  static constexpr bool has_zero = elem::has_zero;
  static constexpr bool has_nan = true;  // the scale code 0xFF

  static std::string name() {
    if constexpr (detail::standard_mx_name<mx>::value != nullptr) {
      return detail::standard_mx_name<mx>::value;
    } else {
      std::string s = "mx<" + elem::name() + "," + std::to_string(BlockSize);
      if (fit) s += ",scale_fit";
      if (sb != 8) s += ",scale_bits=" + std::to_string(sb);
      return s + ">";
    }
  }

  /// The shared exponent s of a block (nan_exponent for a NaN block) from the bits of its
  /// largest magnitude.
  template <class R>
  static int shared_exponent(std::uint32_t amax_bits, R& round) {
    if (amax_bits >= 0x7F800000u) return nan_exponent;  // Inf or NaN in the block
    if (amax_bits == 0) return scale_min;
    const int e = detail::ilog2(detail::from_bits(amax_bits));
    int s = e - emax_elem;
    if (s < scale_min) s = scale_min;
    if constexpr (fit) {
      if (rounds_past_max(detail::from_bits(amax_bits) * detail::exp2i(-s), round)) {
        ++s;
        if (s + emax_elem > 127) return nan_exponent;  // the rounded maximum may be 2^128
      }
    }
    return s > scale_max ? nan_exponent : s;
  }

  /// Quantizes one block of n <= BlockSize values: one pass for max|x|, one for the elements.
  template <class R>
  static void quantize_block(const float* in, float* out, std::size_t n, R& round) {
#if defined(QNAS_BLOCK_AVX2)
    if constexpr (!detail::rounder_is_random<R>())
      if (detail::block_avx2_available()) return quantize_block_avx2(in, out, n, round);
#endif
    quantize_block_baseline(in, out, n, round);
  }

  /// quantize_block as the baseline build compiles it (tests compare it with the AVX2 copy).
  template <class R>
  static void quantize_block_baseline(const float* in, float* out, std::size_t n, R& round) {
    if (n == block)
      quantize_n<block>(in, out, n, round);  // fixed trip count: fully vectorized
    else
      quantize_n<0>(in, out, n, round);
  }

#if defined(QNAS_BLOCK_AVX2)
  /// The same loops compiled for AVX2 (no FMA: bit for bit the baseline's values).
  template <class R>
  QNAS_BLOCK_AVX2_TARGET static void quantize_block_avx2(const float* in, float* out, std::size_t n, R& round) {
    if (n == block)
      quantize_n<block>(in, out, n, round);
    else
      quantize_n<0>(in, out, n, round);
  }
#endif

  /// Encodes one block: element codes into `codes`, returns the scale code (nan_scale_code: NaN).
  template <class R>
  static std::uint64_t encode_block(const float* in, std::uint32_t* codes, std::size_t n, R& round) {
    const int s = shared_exponent(max_abs_bits<0>(in, n), round);
    if (s == nan_exponent) {
      for (std::size_t i = 0; i < n; ++i) codes[i] = 0;
      return nan_scale_code;
    }
    const float inv = detail::exp2i(-s);
    for (std::size_t i = 0; i < n; ++i) codes[i] = elem::encode_one(detail::clamp(in[i] * inv, elem_min, elem_max), round);
    return static_cast<std::uint64_t>(s + scale_bias);
  }

  static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n) {
    if ((header & nan_scale_code) == nan_scale_code) {
      for (std::size_t i = 0; i < n; ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
      return;
    }
    const float sc = detail::exp2i(static_cast<int>(header & nan_scale_code) - scale_bias);
    for (std::size_t i = 0; i < n; ++i) out[i] = elem::decode_one(codes[i]) * sc;
  }

 private:
  template <std::size_t Fixed>
  QNAS_ALWAYS_INLINE static std::uint32_t max_abs_bits(const float* in, std::size_t n_dyn) noexcept {
    const std::size_t n = Fixed ? Fixed : n_dyn;
    std::uint32_t m = 0;  // |x| bits order like |x|; NaN and Inf bits are above every finite value
#pragma omp simd reduction(max : m)
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t a = detail::to_bits(in[i]) & 0x7FFFFFFFu;
      m = a > m ? a : m;
    }
    return m;
  }

  template <std::size_t Fixed, class R>
  QNAS_ALWAYS_INLINE static void quantize_n(const float* in, float* out, std::size_t n_dyn, R& round) {
    const std::size_t n = Fixed ? Fixed : n_dyn;
    const int s = shared_exponent(max_abs_bits<Fixed>(in, n), round);
    if (s == nan_exponent) {
      for (std::size_t i = 0; i < n; ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
      return;
    }
    // Scaling by powers of two is exact (values far below the element's smallest step may lose
    // low bits as float subnormals, which cannot move them across a rounding boundary).
    const float inv = detail::exp2i(-s);
    const float sc = detail::exp2i(s);
    if constexpr (detail::rounder_is_random<R>()) {
      for (std::size_t i = 0; i < n; ++i)  // the engine's state is a dependency: stays scalar
        out[i] = elem::quantize_one(detail::clamp(in[i] * inv, elem_min, elem_max), round) * sc;
    } else if constexpr (detail::mx_element_kernel<elem, R>::fast) {
      using kernel = detail::mx_element_kernel<elem, R>;
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) out[i] = kernel::quantize(in[i] * inv) * sc;
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i)
        out[i] = elem::quantize_one(detail::clamp(in[i] * inv, elem_min, elem_max), round) * sc;
    }
  }

  /// Gap between the element maximum and the value below it: the step of the element grid's top
  /// binade, which continues past the maximum (448 -> 480 for fp8_e4m3).
  static float top_step() {
    static const float step = [] {
      toward_zero down;
      return elem_max - elem::quantize_one(std::nextafter(elem_max, 0.0f), down);
    }();
    return step;
  }

  /// Whether v (the block maximum divided by 2^s) would round above the element maximum on the
  /// element's grid. A random rounder may round anything above the maximum past it.
  template <class R>
  static bool rounds_past_max(float v, R& round) {
    if constexpr (detail::rounder_is_random<R>()) {
      return v > elem_max;
    } else {
      const float step = top_step();
      return round(v / step) > elem_max / step;
    }
  }
};

/// The MXINT8 element: 8-bit two's complement with an implicit scale 2^-6 (values k/64), kept
/// symmetric (k in [-127, 127], max 1.984375) as microxcaling does (mx/formats.py: int8 is
/// "sign-magnitude", max_norm = 127/64, and elements are clamped to +-max_norm). The code 0x80
/// (-2.0) is never produced. Symmetry also keeps quantization idempotent: a -2.0 element would
/// raise the next block maximum's exponent.
using mxint8_element = fixed_point<8, 1, true, true>;

using mxfp8_e4m3 = mx<fp8_e4m3>;
using mxfp8_e5m2 = mx<fp8_e5m2>;
using mxfp6_e3m2 = mx<fp6_e3m2>;
using mxfp6_e2m3 = mx<fp6_e2m3>;
using mxfp4 = mx<fp4_e2m1>;
using mxint8 = mx<mxint8_element>;

namespace detail {
template <>
struct standard_mx_name<mxfp8_e4m3> {
  static constexpr const char* value = "mxfp8_e4m3";
};
template <>
struct standard_mx_name<mxfp8_e5m2> {
  static constexpr const char* value = "mxfp8_e5m2";
};
template <>
struct standard_mx_name<mxfp6_e3m2> {
  static constexpr const char* value = "mxfp6_e3m2";
};
template <>
struct standard_mx_name<mxfp6_e2m3> {
  static constexpr const char* value = "mxfp6_e2m3";
};
template <>
struct standard_mx_name<mxfp4> {
  static constexpr const char* value = "mxfp4";
};
template <>
struct standard_mx_name<mxint8> {
  static constexpr const char* value = "mxint8";
};
}  // namespace detail

}  // namespace qnas
