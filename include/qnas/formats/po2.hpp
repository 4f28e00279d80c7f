// e-quant: power-of-two formats, value-compatible with QKeras quantized_po2 / quantized_relu_po2.
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

/// MaxValue of a po2 format meaning "no max_value" (QKeras `max_value=None`).
inline constexpr double no_max_value = std::numeric_limits<double>::infinity();

/// Rounding in the log domain, QKeras `log2_rounding="rnd"` (round(log2|x|)): a magnitude
/// between 2^e and 2^(e+1) goes up when it exceeds the geometric mean sqrt(2) * 2^e, not the
/// arithmetic one. As a function object it rounds v to k or k + 1 (k = floor|v|) at their
/// geometric mean sqrt(k(k+1)); the comparison v^2 > k(k+1) is exact in double (a float squared
/// has at most 48 significant bits) and never ties (k(k+1) is not a square). NaN propagates.
/// This is not "nearest" in the linear sense: |q(x) - x| can exceed half the gap between the
/// two powers of two around x (for |x| in (sqrt(2), 1.5) * 2^e).
struct log2_nearest {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "log2_nearest";
  QNAS_ALWAYS_INLINE float operator()(float v) const noexcept {
    const float a = detail::fabs(v);
    if (!(a < 0x1p23f)) return v;  // already an integer, Inf or NaN
    const float k = detail::floor_small(a);
    const double a2 = static_cast<double>(a) * a;
    const double kk = static_cast<double>(k) * (static_cast<double>(k) + 1.0);
    return detail::copysign(a2 > kk ? k + 1.0f : k, v);
  }
};

/// Rounding policies a po2 format accepts: the generic ones, applied to |x| / 2^floor(log2|x|)
/// (in [1, 2), so they choose between the two powers of two around x), plus log2_nearest.
template <class R>
concept po2_rounding_policy = rounding_policy<R> || std::same_as<R, log2_nearest>;

namespace detail {

/// 2^e as a double for e in [-1022, 1023].
constexpr double exp2d(int e) noexcept {
  return std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52);
}

/// floor(log2 v) for a finite v > 0 (constexpr: scaling by 2 is exact).
constexpr int floor_log2_const(double v) noexcept {
  int e = 0;
  while (v >= 2.0) v /= 2.0, ++e;
  while (v < 1.0) v *= 2.0, --e;
  return e;
}

/// The exponent a po2 format with rounding R gives to a positive finite v (compile time).
/// Stochastic rounding uses floor here so that the clip value never exceeds MaxValue.
template <class R>
constexpr int po2_rounded_log2(double v) noexcept {
  const int e = floor_log2_const(v);
  const double t = v / exp2d(e);  // in [1, 2), exact
  if constexpr (std::same_as<R, log2_nearest>) return t * t > 2.0 ? e + 1 : e;
  else if constexpr (std::same_as<R, nearest_even> || std::same_as<R, nearest_away>) return t >= 1.5 ? e + 1 : e;
  else return e;  // toward_zero (QKeras "floor"), stochastic
}

/// The exponent range [lo, hi] of po2<Bits, MaxValue, Rounding, Signed> (QKeras rules):
///  - field = Bits - Signed exponent bits;
///  - no MaxValue or MaxValue > 1 (QKeras: the exponent needs a sign bit):
///    [-2^(field-1), 2^(field-1) - 1], the top clipped to the rounded log2(MaxValue);
///  - MaxValue <= 1 (no exponent sign bit): QKeras uses [-2^field, rounded log2(MaxValue)],
///    one magnitude more than `field` bits hold when log2(MaxValue) rounds to 0; qnas keeps the
///    top and drops the smallest: lo = max(-2^field, hi - 2^field + 1).
template <int Bits, bool Signed, double MaxValue, class R>
struct po2_range {
  // clamped so that bad arguments fail on po2's static_asserts, not inside this helper
  static constexpr int field = Bits - static_cast<int>(Signed) < 1 ? 1 : (Bits - static_cast<int>(Signed) > 16 ? 16 : Bits - static_cast<int>(Signed));
  static constexpr bool bounded = MaxValue > 0.0 && MaxValue < std::numeric_limits<double>::infinity();
  static constexpr bool exponent_sign = !bounded || MaxValue > 1.0;
  static constexpr int top = bounded ? po2_rounded_log2<R>(MaxValue) : 0;
  static constexpr int hi = exponent_sign ? (bounded && top < (1 << (field - 1)) - 1 ? top : (1 << (field - 1)) - 1)
                                          : top;
  static constexpr int lo = exponent_sign ? -(1 << (field - 1))
                                          : (hi - (1 << field) + 1 > -(1 << field) ? hi - (1 << field) + 1
                                                                                  : -(1 << field));
};

}  // namespace detail

/// A power-of-two ("e-quant") format: every value is +-2^e (or 2^e for the relu flavour), with
/// e in [exponent_min, exponent_max]; there is no zero. Same values as QKeras
/// `quantized_po2(Bits, max_value)` (Signed) and `quantized_relu_po2(Bits, max_value)` (unsigned,
/// negative_slope = 0).
///
/// Parameters:
///  - Bits: bits per element including the sign (Signed); QKeras `bits`.
///  - MaxValue: QKeras `max_value` as a double; `no_max_value` (+Inf) means None. It must be
///    > 0. Inputs are clipped to it before rounding, so the largest magnitude is 2^e_top with
///    e_top = the rounded log2(MaxValue) (QKeras: under "rnd", max_value = 6 gives 8 = 2^3).
///  - Rounding: how a magnitude between 2^e and 2^(e+1) is rounded:
///      log2_nearest (default; QKeras log2_rounding="rnd"): up above sqrt(2) * 2^e;
///      toward_zero (QKeras log2_rounding="floor"): always down;
///      stochastic (QKeras use_stochastic_rounding): up with probability |x| / 2^e - 1, so the
///        expectation is |x| (QKeras stochastic_round_po2); needs an engine;
///      nearest_even / nearest_away: linear nearest, up from 1.5 * 2^e (the tie goes up).
///  - Signed: false gives the relu flavour (use the `relu_po2` alias).
///
/// Corner cases (QKeras behaviour, documented deviations marked):
///  - Zero (and -0, and every |x| below 2^exponent_min) becomes +2^exponent_min: QKeras maps
///    |x| < epsilon to the smallest exponent with sign(0) := +1. (Deviation: QKeras's
///    epsilon = 1e-7 also sends 1e-7 > |x| >= 2^exponent_min to the smallest magnitude when
///    2^exponent_min < 1e-7; qnas rounds those values like any other.)
///  - Relu flavour: every x <= 0 becomes 2^exponent_min (QKeras relu then the zero rule).
///  - Magnitudes above the largest value (and +-Inf) saturate. NaN propagates through
///    quantize; encode throws qnas::invalid_argument (has_nan is false).
///  - MaxValue <= 1 with log2(MaxValue) rounding to 0: see detail::po2_range (one QKeras
///    magnitude, 2^-2^field, is not representable in Bits bits and is dropped).
///  - log2 is evaluated exactly (QKeras computes log(x)/log(2) in float32 and may round the
///    other way within an ulp of sqrt(2) * 2^e).
///
/// Code layout (Bits bits): [sign | exponent field], the sign in the top bit (Signed only),
/// the exponent field = e - exponent_min as an unsigned integer (offset binary). Field values
/// above exponent_max - exponent_min are unused (decode gives magnitudes above max_value).
/// Bit tuple: e-quant with e bits is (1, e-1, 0); the relu flavour is (0, Bits, 0).
template <int Bits, double MaxValue = no_max_value, po2_rounding_policy Rounding = log2_nearest,
          bool Signed = true>
struct po2 {
  static_assert(Bits >= 1 + static_cast<int>(Signed) && Bits <= 8 + static_cast<int>(Signed),
                "po2<Bits, ...>: Bits must be in [2, 9] (relu_po2: [1, 8])");
  static_assert(MaxValue > 0.0, "po2<Bits, MaxValue>: MaxValue must be > 0 (no_max_value for none)");

 private:
  using range = detail::po2_range<Bits, Signed, MaxValue, Rounding>;

 public:
  static_assert(range::hi >= range::lo,
                "po2<Bits, MaxValue>: MaxValue is below the smallest magnitude 2^-2^(Bits-Signed)");
  static_assert(range::lo >= -149 && range::hi <= 127,
                "po2<Bits, MaxValue>: the exponent range does not fit in float (reduce Bits)");

  using rounding = Rounding;
  static constexpr format_family family = format_family::po2;
  static constexpr bit_tuple tuple = Signed ? bit_tuple{1, Bits - 1, 0} : bit_tuple{0, Bits, 0};
  static constexpr int bits = Bits;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr bool is_signed = Signed;
  static constexpr int exponent_bits = range::field;
  static constexpr int exponent_min = range::lo;
  static constexpr int exponent_max = range::hi;
  static constexpr double max_value = detail::exp2d(exponent_max);
  static constexpr double min_value = Signed ? -max_value : detail::exp2d(exponent_min);
  static constexpr bool has_zero = false;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = Signed ? "po2<" : "relu_po2<";
    s += std::to_string(Bits);
    if constexpr (range::bounded) s += detail::cat(",max=", MaxValue);
    if constexpr (!std::is_same_v<Rounding, log2_nearest>) s += std::string(",") + Rounding::name;
    return s + ">";
  }

  /// The exponent e that x rounds to (x not NaN); clamps to [exponent_min, exponent_max].
  template <class R>
  QNAS_ALWAYS_INLINE static int exponent_of(float x, R& round) noexcept {
    const float a = Signed ? detail::fabs(x) : (x > 0.0f ? x : 0.0f);
    if constexpr (exponent_min >= -126) {
      // Branch-free on the float bits: a = 1.f * 2^e. A subnormal or zero a (biased exponent 0)
      // reads as e = -127 and Inf as e = 128; both land on a clamp end, as they must.
      const std::uint32_t b = detail::to_bits(a);
      const int e = static_cast<int>(b >> 23) - 127;
      const std::uint32_t frac = b & 0x7FFFFFu;
      int up;
      if constexpr (std::is_same_v<R, log2_nearest>)
        up = frac >= sqrt2_fraction ? 1 : 0;  // 1.f > sqrt(2)
      else if constexpr (std::is_same_v<R, nearest_even> || std::is_same_v<R, nearest_away>)
        up = frac >= 0x400000u ? 1 : 0;       // 1.f >= 1.5 (the tie goes up)
      else if constexpr (std::is_same_v<R, toward_zero>)
        up = 0;
      else
        up = round(detail::from_bits(frac | 0x3F800000u)) > 1.5f ? 1 : 0;  // round(1.f) in {1, 2}
      const int r = e + up;
      return r < exponent_min ? exponent_min : (r > exponent_max ? exponent_max : r);
    } else {
      if (!(a >= lo_magnitude)) return exponent_min;  // zero, tiny, (relu) negative
      if (a >= hi_magnitude) return exponent_max;     // includes +Inf
      const int e = detail::ilog2(a);                 // exponent_min <= e < exponent_max
      // |x| / 2^e in [1, 2): exact in double, and exactly representable in float again.
      const auto t = static_cast<float>(static_cast<double>(a) * detail::exp2d(-e));
      return e + (round(t) > 1.5f ? 1 : 0);
    }
  }

  template <class R>
  QNAS_ALWAYS_INLINE static float quantize_one(float x, R& round) noexcept {
    const int e = exponent_of(x, round);
    float m;
    if constexpr (exponent_min >= -126)
      m = detail::from_bits(static_cast<std::uint32_t>(e + 127) << 23);
    else
      m = detail::exp2i(e);
    m = (Signed && x < 0.0f) ? -m : m;
    return detail::is_nan(x) ? x : m;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R& round) {
    if (detail::is_nan(x))
      throw invalid_argument("qnas::po2::encode_one", name() + " has no NaN code; the input is NaN");
    const auto field = static_cast<std::uint32_t>(exponent_of(x, round) - exponent_min);
    const std::uint32_t sign = (Signed && x < 0.0f) ? 1u : 0u;
    return (sign << exponent_bits) | field;
  }

  static float decode_one(std::uint32_t code) noexcept {
    const auto field = static_cast<int>(code & field_mask);
    const float m = detail::exp2i(exponent_min + field);
    if constexpr (Signed)
      if ((code >> exponent_bits) & 1u) return -m;
    return m;
  }

 private:
  static constexpr std::uint32_t field_mask = (1u << range::field) - 1u;
  /// The fraction bits of the smallest float above sqrt(2) (0x3FB504F4 = 1.41421366; the
  /// float below, 0x3FB504F3 = 1.41421354, is under sqrt(2) = 1.41421356...).
  static constexpr std::uint32_t sqrt2_fraction = 0x3504F4u;
  static constexpr float lo_magnitude = detail::exp2i(exponent_min);
  static constexpr float hi_magnitude = detail::exp2i(exponent_max);
};

/// QKeras `quantized_relu_po2(Bits, max_value)` (negative_slope = 0): unsigned powers of two.
template <int Bits, double MaxValue = no_max_value, po2_rounding_policy Rounding = log2_nearest>
using relu_po2 = po2<Bits, MaxValue, Rounding, false>;

}  // namespace qnas
