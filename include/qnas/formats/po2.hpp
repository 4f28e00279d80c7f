// e-quant: power-of-two formats, value-compatible with QKeras quantized_po2 / quantized_relu_po2.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
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

/// QKeras's tf.round(log2(v) / 2) for a positive finite v, evaluated exactly (the exponent of
/// sqrt(v) under the po2 rounding R; quadratic approximation). With e = floor(log2 v) and
/// m = floor(e / 2): an even e gives m; an odd e gives m + 1 above v = 2^e and, at v = 2^e
/// exactly (log2(v) / 2 = m + 1/2), the even one of m and m + 1 (tf.round ties to even).
/// toward_zero (QKeras "floor") gives m; stochastic gives m here (the clip value, as for
/// po2_rounded_log2).
template <class R>
constexpr int po2_rounded_half_log2(double v) noexcept {
  const int e = floor_log2_const(v);
  const int m = e >> 1;  // floor(e / 2)
  if constexpr (std::same_as<R, log2_nearest>) {
    if ((e & 1) == 0) return m;
    if (v > exp2d(e)) return m + 1;
    return (m % 2 == 0) ? m : m + 1;
  } else {
    return m;
  }
}

/// The exponent range of po2<..., QuadraticApproximation = true> (QKeras quantized_po2 and
/// quantized_relu_po2 with quadratic_approximation=True). QKeras takes min_exp and max_exp as
/// for the plain format, rounds max_exp down to even, clips round(log2|x| / 2) to
/// [min_exp, max_exp] and doubles it: values 2^(2j), j in [jlo, jhi]. The exponent is also clipped
/// by MaxValue (x is clipped to it first). |x| below QKeras's epsilon (zero included) gives
/// 2^min_exp, not doubled (`zero`). With no exponent sign bit (MaxValue <= 1) qnas keeps, as for
/// the plain format, the top 2^field values of j when QKeras's range has one more.
template <int Bits, bool Signed, double MaxValue, class R>
struct po2_quadratic_range {
  static constexpr int field = po2_range<Bits, Signed, MaxValue, R>::field;
  static constexpr bool bounded = po2_range<Bits, Signed, MaxValue, R>::bounded;
  static constexpr bool exponent_sign = po2_range<Bits, Signed, MaxValue, R>::exponent_sign;
  static constexpr int qkeras_min = exponent_sign ? -(1 << (field - 1)) : -(1 << field);
  static constexpr int qkeras_max_plain = exponent_sign ? (1 << (field - 1)) - 1 : (1 << field) - 1;
  static constexpr int qkeras_max = 2 * (qkeras_max_plain / 2);  // QKeras: 2 * (max_exp // 2)
  static constexpr int top = bounded ? po2_rounded_half_log2<R>(MaxValue) : qkeras_max;
  static constexpr int jhi = top < qkeras_max ? top : qkeras_max;
  static constexpr int jlo = exponent_sign ? qkeras_min
                                           : (jhi - (1 << field) + 1 > qkeras_min ? jhi - (1 << field) + 1 : qkeras_min);
  static constexpr int lo = 2 * jlo;
  static constexpr int hi = 2 * jhi;
  static constexpr int zero = qkeras_min;
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
///  - QuadraticApproximation: QKeras `quadratic_approximation=True` (alias `po2_quadratic`, or
///    the last parameter of `relu_po2`); see below.
///  - NegativeSlope: QKeras quantized_relu_po2's `negative_slope` (relu flavour only); see below.
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
/// Quadratic approximation (QKeras _clip_power_of_two with quadratic_approximation=True): the
/// exponent is even, e = 2 * clip(round(log2|x| / 2), jlo, jhi) (the rounded exponent of
/// sqrt|x|, doubled after clipping), so values are +-4^j; QKeras's max_exp is first rounded
/// down to even (max_exp = 2 * (max_exp // 2)) and the clip is on the halved exponent, so
/// jlo = QKeras min_exp and e reaches down to 2 * min_exp. Rounding: log2_nearest goes up
/// above |x| = 2^(2m+1) (sqrt|x| above sqrt(2) * 2^m) and at exactly 2^(2m+1) picks the even
/// one of m, m + 1 (tf.round ties to even; QKeras's float32 log may land either side);
/// toward_zero gives floor(floor(log2|x|) / 2); stochastic rounds sqrt|x| between 2^m and
/// 2^(m+1) with probability sqrt|x| / 2^m - 1 of going up (QKeras stochastic_round_po2 of
/// sqrt|x|). Linear nearest policies are refused (QKeras has none, and "nearest" between 4^m
/// and 4^(m+1) is not what its sqrt rounding gives).
/// Zero rule, exactly as QKeras: every |x| below QKeras's epsilon (1e-7 as a float, zero and
/// -0 included; relu flavour: every x <= 0 too) becomes +2^min_exp with the exponent NOT
/// doubled (`zero_exponent`), half-way down the range in the log domain. This breaks laws:
///  - monotonicity where 2^min_exp > q(1e-7) (min_exp > -24; e.g. po2_quadratic<4>:
///    q(0) = 2^-4 > q(1e-6) = 2^-8);
///  - idempotence where a value 4^j other than 2^min_exp lies below 1e-7 (jlo <= -12; e.g.
///    po2_quadratic<6>: q(1e-7) = 2^-24 but q(2^-24) = 2^-16). values<F>() leaves those out.
/// po2_quadratic<6> breaks both, po2_quadratic<8> (0 -> 2^-64) only idempotence.
/// decode(encode(x)) == q(x) holds. check_format reports the broken laws; the tests check the
/// others directly. A Bits / MaxValue combination whose QKeras min_exp is odd (2^min_exp is not
/// a value: signed Bits = 2, relu Bits = 1 without MaxValue <= 1) or whose 2^min_exp lies above
/// the largest value is refused at compile time.
///
/// Negative slope (relu flavour; QKeras quantized_relu_po2(..., negative_slope=s), s = 0 or a
/// power of two): x >= 0 (and -0) quantizes as relu_po2; x < 0 gives -2^e with e the exponent
/// the same format gives to |x| * s, clipped to the same range (QKeras clips relu(-x) * s with
/// the same min_exp, max_exp and max_value). That is leaky_relu(x, s) followed by the signed
/// po2<Bits + 1, MaxValue> (same exponent range: Bits - 1 + 1 non-sign bits), except that the
/// sign is the sign of x even when s * x underflows to -0 in float. The values need a sign
/// bit, so the format has Bits + 1 bits (QKeras counts Bits; its values need the sign too).
/// For s != 1 q is not idempotent (q(-1) = -s, q(-s) = -s^2 inside the range) and |q(x) - x| is
/// not bounded by a step (q(x) approximates s * x): check_format reports those laws; the tests
/// check monotonicity and decode(encode(x)) == q(x) directly. With s = 1 it is po2<Bits + 1>
/// and every law holds.
///
/// Code layout (bits bits): [sign | exponent field], the sign in the top bit (Signed or a
/// negative slope), the exponent field = (e - exponent_min) / (QuadraticApproximation ? 2 : 1)
/// as an unsigned integer (offset binary). Field values above the largest are unused (decode
/// gives magnitudes above max_value).
/// Bit tuple: e-quant with e bits is (1, e-1, 0); the relu flavour is (0, Bits, 0), and
/// (1, Bits, 0) with a negative slope.
template <int Bits, double MaxValue = no_max_value, po2_rounding_policy Rounding = log2_nearest,
          bool Signed = true, bool QuadraticApproximation = false, double NegativeSlope = 0.0>
struct po2 {
  static_assert(Bits >= 1 + static_cast<int>(Signed) && Bits <= 8 + static_cast<int>(Signed),
                "po2<Bits, ...>: Bits must be in [2, 9] (relu_po2: [1, 8])");
  static_assert(MaxValue > 0.0, "po2<Bits, MaxValue>: MaxValue must be > 0 (no_max_value for none)");
  static_assert(NegativeSlope == 0.0 || !Signed,
                "po2<Bits, MaxValue, Rounding, Signed, QuadraticApproximation, NegativeSlope>: NegativeSlope "
                "applies to the relu flavour only (Signed = false; use relu_po2)");
  static_assert(NegativeSlope >= 0.0,
                "relu_po2<Bits, MaxValue, Rounding, NegativeSlope>: NegativeSlope must be >= 0 (QKeras "
                "negative_slope)");
  static_assert(NegativeSlope <= 0.0 ||  // (a negative one fails the assertion above alone)
                    (NegativeSlope >= detail::exp2d(-126) && NegativeSlope <= detail::exp2d(126) &&
                     detail::exp2d(detail::floor_log2_const(NegativeSlope)) == NegativeSlope),
                "relu_po2<Bits, MaxValue, Rounding, NegativeSlope>: NegativeSlope must be 0 or a power of two "
                "2^k with k in [-126, 126] (QKeras requires log2(negative_slope) to be an integer)");
  static_assert(!QuadraticApproximation || std::is_same_v<Rounding, log2_nearest> ||
                    std::is_same_v<Rounding, toward_zero> || std::is_same_v<Rounding, stochastic>,
                "po2<Bits, MaxValue, Rounding, Signed, QuadraticApproximation>: QuadraticApproximation takes "
                "Rounding = log2_nearest, toward_zero or stochastic (QKeras log2_rounding 'rnd', 'floor', "
                "use_stochastic_rounding); a linear nearest between powers of four has no QKeras meaning");

 private:
  using plain_range = detail::po2_range<Bits, Signed, MaxValue, Rounding>;
  using quadratic_range = detail::po2_quadratic_range<Bits, Signed, MaxValue, Rounding>;
  using range = std::conditional_t<QuadraticApproximation, quadratic_range, plain_range>;
  static constexpr bool has_slope = NegativeSlope != 0.0;

 public:
  static_assert(!QuadraticApproximation || quadratic_range::zero % 2 == 0,
                "po2<Bits, MaxValue, Rounding, Signed, QuadraticApproximation>: QuadraticApproximation needs "
                "Bits >= 3 (relu_po2: Bits >= 2) unless MaxValue <= 1: QKeras maps 0 to 2^min_exp = 2^-1, an odd "
                "exponent, which is not a value");
  static_assert(!QuadraticApproximation || quadratic_range::zero <= quadratic_range::hi,
                "po2<Bits, MaxValue, Rounding, Signed, QuadraticApproximation>: MaxValue is below 2^min_exp, "
                "the value QKeras gives to 0 under QuadraticApproximation");
  static_assert(QuadraticApproximation || range::hi >= range::lo,
                "po2<Bits, MaxValue>: MaxValue is below the smallest magnitude 2^-2^(Bits-Signed)");
  static_assert(range::lo >= -149 && range::hi <= 127,
                "po2<Bits, MaxValue>: the exponent range does not fit in float (reduce Bits)");

  using rounding = Rounding;
  static constexpr format_family family = format_family::po2;
  static constexpr bit_tuple tuple =
      Signed ? bit_tuple{1, Bits - 1, 0} : (has_slope ? bit_tuple{1, Bits, 0} : bit_tuple{0, Bits, 0});
  static constexpr int bits = Bits + static_cast<int>(has_slope);
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr bool is_signed = Signed || has_slope;
  static constexpr bool quadratic_approximation = QuadraticApproximation;
  static constexpr double negative_slope = NegativeSlope;
  static constexpr int exponent_bits = range::field;
  static constexpr int exponent_min = range::lo;
  static constexpr int exponent_max = range::hi;
  /// The exponent of the value 0 (and |x| < 1e-7) gets: exponent_min, or under
  /// QuadraticApproximation QKeras's min_exp (not doubled).
  static constexpr int zero_exponent = QuadraticApproximation ? quadratic_range::zero : exponent_min;
  /// Exponent step between consecutive values: 2 under QuadraticApproximation.
  static constexpr int exponent_step = QuadraticApproximation ? 2 : 1;
  static constexpr double max_value = detail::exp2d(exponent_max);
  static constexpr double min_value = is_signed ? -max_value : detail::exp2d(exponent_min);
  static constexpr bool has_zero = false;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = Signed ? "po2<" : "relu_po2<";
    s += std::to_string(Bits);
    if constexpr (range::bounded) s += detail::cat(",max=", MaxValue);
    if constexpr (!std::is_same_v<Rounding, log2_nearest>) s += std::string(",") + Rounding::name;
    if constexpr (has_slope) s += ",negative_slope=2^" + std::to_string(slope_exponent);
    if constexpr (QuadraticApproximation) s += ",quadratic";
    return s + ">";
  }

  /// The exponent e that x rounds to (x not NaN); clamps to [exponent_min, exponent_max]
  /// (under QuadraticApproximation, small |x| give zero_exponent). With a negative slope and
  /// x < 0 this is the exponent of |x| * NegativeSlope.
  template <class R>
  QNAS_ALWAYS_INLINE static int exponent_of(float x, R& round) noexcept {
    if constexpr (QuadraticApproximation || has_slope) {
      double a;
      if constexpr (Signed) a = detail::fabs(x);
      else if constexpr (has_slope) a = x < 0.0f ? -static_cast<double>(x) * NegativeSlope : static_cast<double>(x);
      else a = x > 0.0f ? x : 0.0f;
      return magnitude_exponent(a, round);
    } else {
      return plain_exponent_of(x, round);
    }
  }

  template <class R>
  QNAS_ALWAYS_INLINE static float quantize_one(float x, R& round) noexcept {
    const int e = exponent_of(x, round);
    float m;
    if constexpr (exponent_min >= -126)  // (zero_exponent >= exponent_min)
      m = detail::from_bits(static_cast<std::uint32_t>(e + 127) << 23);
    else
      m = detail::exp2i(e);
    m = (is_signed && x < 0.0f) ? -m : m;
    return detail::is_nan(x) ? x : m;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R& round) {
    if (detail::is_nan(x))
      throw invalid_argument("qnas::po2::encode_one", name() + " has no NaN code; the input is NaN");
    const auto field = static_cast<std::uint32_t>((exponent_of(x, round) - exponent_min) / exponent_step);
    const std::uint32_t sign = (is_signed && x < 0.0f) ? 1u : 0u;
    return (sign << exponent_bits) | field;
  }

  static float decode_one(std::uint32_t code) noexcept {
    const auto field = static_cast<int>(code & field_mask);
    const float m = detail::exp2i(exponent_min + exponent_step * field);
    if constexpr (is_signed)
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
  // (guarded: a negative NegativeSlope fails its static_assert, not a constexpr loop here)
  static constexpr int slope_exponent = detail::floor_log2_const(NegativeSlope > 0.0 ? NegativeSlope : 1.0);
  /// QKeras's epsilon (tf.keras.backend.epsilon(), 1e-7, compared in float32).
  static constexpr double qkeras_epsilon = static_cast<double>(1e-7f);

  /// The plain format's exponent of x (the fast, branch-free path).
  template <class R>
  QNAS_ALWAYS_INLINE static int plain_exponent_of(float x, R& round) noexcept {
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
      return magnitude_exponent(static_cast<double>(a), round);
    }
  }

  /// floor(log2 a) for a finite a > 0 that is a normal double.
  QNAS_ALWAYS_INLINE static constexpr int floor_log2(double a) noexcept {
    return static_cast<int>((std::bit_cast<std::uint64_t>(a) >> 52) & 0x7FFu) - 1023;
  }

  /// The exponent of a magnitude a >= 0 (exact: |x| or |x| * NegativeSlope; NaN gives the
  /// smallest), by the format's rule. Generic path: negative slope, quadratic approximation,
  /// and plain ranges reaching below float's normal exponents.
  template <class R>
  QNAS_ALWAYS_INLINE static int magnitude_exponent(double a, R& round) noexcept {
    if constexpr (QuadraticApproximation) {
      if (!(a >= qkeras_epsilon)) return zero_exponent;  // QKeras: |x| < eps -> min_exp, not doubled
      if (a >= static_cast<double>(hi_magnitude)) return exponent_max;
      const int e = floor_log2(a);
      const int m = e >> 1;  // floor(e / 2)
      int j;
      if constexpr (std::is_same_v<R, log2_nearest>) {
        if ((e & 1) == 0) j = m;
        else if (a > detail::exp2d(e)) j = m + 1;
        else j = (m % 2 == 0) ? m : m + 1;  // |x| = 2^(2m+1): log2|x| / 2 = m + 1/2, tf.round to even
      } else if constexpr (std::is_same_v<R, toward_zero>) {
        j = m;
      } else {  // stochastic (or the nearest_even values() passes): R rounds sqrt|x| / 2^m in [1, 2) to 1 or 2
        const auto t = static_cast<float>(std::sqrt(a * detail::exp2d(-2 * m)));
        j = m + (round(t) > 1.5f ? 1 : 0);
      }
      constexpr int jlo = exponent_min / 2, jhi = exponent_max / 2;
      return 2 * (j < jlo ? jlo : (j > jhi ? jhi : j));
    } else {
      if (!(a >= static_cast<double>(lo_magnitude))) return exponent_min;  // zero, tiny, (relu) negative
      if (a >= static_cast<double>(hi_magnitude)) return exponent_max;     // includes +Inf
      const int e = floor_log2(a);                                         // exponent_min <= e < exponent_max
      // a / 2^e in [1, 2): exact in double, and exactly representable in float (a has at most
      // float's 24 significant bits).
      const auto t = static_cast<float>(a * detail::exp2d(-e));
      return e + (round(t) > 1.5f ? 1 : 0);
    }
  }
};

/// QKeras `quantized_relu_po2(Bits, max_value, negative_slope, ..., quadratic_approximation)`:
/// unsigned powers of two; with NegativeSlope != 0, negative inputs give -2^e of |x| * slope and
/// the format has Bits + 1 bits (see po2).
template <int Bits, double MaxValue = no_max_value, po2_rounding_policy Rounding = log2_nearest,
          double NegativeSlope = 0.0, bool QuadraticApproximation = false>
using relu_po2 = po2<Bits, MaxValue, Rounding, false, QuadraticApproximation, NegativeSlope>;

/// QKeras `quantized_po2(Bits, max_value, quadratic_approximation=True)`: even exponents only
/// (see po2 for the zero rule, which breaks monotonicity).
template <int Bits, double MaxValue = no_max_value, po2_rounding_policy Rounding = log2_nearest>
using po2_quadratic = po2<Bits, MaxValue, Rounding, true, true>;

}  // namespace qnas
