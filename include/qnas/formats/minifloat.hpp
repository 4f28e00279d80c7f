// Floating-point element formats: sign + E exponent bits + M mantissa bits (fp32 down to fp4).
#pragma once

#include <cstdint>
#include <limits>
#include <random>  // policies.hpp names std::uniform_random_bit_generator without including it
#include <string>
#include <type_traits>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

// ---------------------------------------------------------------------------------------------
// Special-value encodings: what the codes with the top exponent field mean.
// ---------------------------------------------------------------------------------------------

/// IEEE-754 style: the top exponent field holds +-Inf (mantissa 0) and NaN (mantissa != 0).
/// With M == 0 there is no NaN code, only +-Inf. fp32, fp16, bf16, OCP fp8 E5M2.
struct specials_ieee {
  static constexpr const char* name = "ieee";
};
/// OCP FP8 E4M3 style ("FN": finite + NaN): no Inf; the only NaN codes are S.11..1.11..1, every
/// other code (the rest of the top binade included) is a finite number.
struct specials_fn {
  static constexpr const char* name = "fn";
};
/// No Inf and no NaN: every code is a finite number (OCP FP6 E3M2/E2M3, FP4 E2M1).
struct specials_finite {
  static constexpr const char* name = "finite";
};
template <class S>
concept special_values_policy =
    std::same_as<S, specials_ieee> || std::same_as<S, specials_fn> || std::same_as<S, specials_finite>;

namespace detail {

/// 2^e as a double, usable in constant expressions (std::ldexp is not constexpr in C++20).
constexpr double pow2d(int e) noexcept {
  double r = 1.0;
  for (; e > 0; --e) r *= 2.0;
  for (; e < 0; ++e) r *= 0.5;
  return r;
}

// Which kind of minifloat policy a type is: 1 encoding, 2 overflow, 3 subnormals, 4 rounding.
template <class T>
inline constexpr int minifloat_policy_kind = special_values_policy<T> ? 1
                                            : overflow_policy<T>      ? 2
                                            : subnormal_policy<T>     ? 3
                                            : rounding_policy<T>      ? 4
                                                                      : 0;

template <int Kind, class Default, class... Ps>
struct first_of_kind {
  using type = Default;
};
template <int Kind, class Default, class P, class... Ps>
struct first_of_kind<Kind, Default, P, Ps...> {
  using type = std::conditional_t<minifloat_policy_kind<P> == Kind, P,
                                  typename first_of_kind<Kind, Default, Ps...>::type>;
};

/// Sorts an unordered policy list into the four policy slots, with defaults, so that
/// minifloat<4, 3, specials_fn, saturate> and minifloat<4, 3, saturate, specials_fn> are one type.
template <class... Ps>
struct minifloat_policies {
  static_assert(((minifloat_policy_kind<Ps> != 0) && ...),
                "minifloat<E, M, Policies...>: each of Policies must be a special-value encoding "
                "(specials_ieee, specials_fn, specials_finite), an overflow policy (saturate, to_inf, "
                "to_nan), a subnormal policy (keep_subnormals, flush_subnormals) or a rounding policy "
                "(nearest_even, nearest_away, toward_zero, stochastic)");
  static constexpr int count([[maybe_unused]] int kind) { return ((minifloat_policy_kind<Ps> == kind ? 1 : 0) + ... + 0); }
  static_assert(count(1) <= 1, "minifloat<E, M, Policies...>: Policies names more than one special-value encoding");
  static_assert(count(2) <= 1, "minifloat<E, M, Policies...>: Policies names more than one overflow policy");
  static_assert(count(3) <= 1, "minifloat<E, M, Policies...>: Policies names more than one subnormal policy");
  static_assert(count(4) <= 1, "minifloat<E, M, Policies...>: Policies names more than one rounding policy");

  using specials = typename first_of_kind<1, specials_ieee, Ps...>::type;
  // IEEE-like encodings behave like IEEE conversions by default (overflow to Inf); the others
  // have no Inf and saturate, as OCP FP8/FP6/FP4 conversions in microxcaling do.
  using overflow = typename first_of_kind<2, std::conditional_t<std::is_same_v<specials, specials_ieee>, to_inf, saturate>,
                                          Ps...>::type;
  using subnormals = typename first_of_kind<3, keep_subnormals, Ps...>::type;
  using rounding = typename first_of_kind<4, nearest_even, Ps...>::type;
};

/// The name of a standard alias (fp8_e4m3, ...) for a minifloat type; nullptr for the others.
template <class F>
struct standard_float_name {
  static constexpr const char* value = nullptr;
};

}  // namespace detail

/// A binary floating-point format with a sign bit, E exponent bits (bias 2^(E-1) - 1) and M
/// mantissa bits; normally spelled through the `minifloat<E, M, Policies...>` alias below.
///
/// Values: exponent field e in (0, top): (1 + m / 2^M) * 2^(e - bias); e == 0: subnormals
/// m / 2^M * 2^emin with emin = 1 - bias. The top exponent field is special per `Specials`.
/// Code layout (bits = 1 + E + M): sign | exponent | mantissa, sign in the most significant bit.
///
/// Quantization rounds x to the format's value grid with the rounding policy, as if the exponent
/// range were unbounded above (the grid of the top binade continues past the largest value), then:
///  - NaN stays NaN (quantize returns x itself; encode gives the canonical NaN code, or throws
///    qnas::invalid_argument when the format has no NaN code).
///  - +-Inf is a value when the encoding has it (specials_ieee): it stays +-Inf under every
///    overflow policy. Otherwise +-Inf is an overflow like any finite input beyond the range.
///  - A finite input whose rounded magnitude exceeds max_value overflows: `saturate` gives
///    +-max_value, `to_inf` +-Inf, `to_nan` NaN. Under nearest_even this happens exactly when
///    |x| >= max_value + ulp/2 for IEEE-like formats (the tie rounds to the even code beyond
///    max, whose mantissa is all ones, i.e. odd), and when |x| > max_value + ulp/2 for fp8_e4m3
///    (448's mantissa 110 is even, so 464 rounds to 448). Under toward_zero a finite input never
///    rounds past max_value: it gives +-max_value under every overflow policy (IEEE 754 7.4).
///  - `flush_subnormals` removes the subnormal codes: inputs below the smallest normal 2^emin
///    round (with the rounding policy) on the grid {0, 2^emin}, so under nearest_even
///    |x| <= 2^(emin-1) becomes +-0 and larger ones +-2^emin; subnormal codes decode to +-0.
///  - The sign of zero is kept.
template <int E, int M, class Specials, class Overflow, class Subnormals, class Rounding>
struct basic_minifloat {
  static_assert(E >= 1 && E <= 8, "minifloat<E, M, ...>: E (exponent bits) must be in [1, 8]");
  static_assert(M >= 0 && M <= 23, "minifloat<E, M, ...>: M (mantissa bits) must be in [0, 23]");
  static_assert(1 + E + M <= 32, "minifloat<E, M, ...>: 1 + E + M must be <= 32");
  static_assert(special_values_policy<Specials>,
                "minifloat<E, M, Policies...>: Specials must be specials_ieee, specials_fn or specials_finite");
  static_assert(overflow_policy<Overflow>, "minifloat<E, M, Policies...>: Overflow must be saturate, to_inf or to_nan");
  static_assert(subnormal_policy<Subnormals>,
                "minifloat<E, M, Policies...>: Subnormals must be keep_subnormals or flush_subnormals");
  static_assert(rounding_policy<Rounding>,
                "minifloat<E, M, Policies...>: Rounding must be nearest_even, nearest_away, toward_zero or stochastic");

  using specials = Specials;
  using overflow = Overflow;
  using subnormals = Subnormals;
  using rounding = Rounding;

  static constexpr int exponent_bits = E;
  static constexpr int mantissa_bits = M;
  static constexpr int bias = (1 << (E - 1)) - 1;
  static constexpr int emin = 1 - bias;  ///< exponent of the smallest normal
  static constexpr bool has_inf = std::is_same_v<Specials, specials_ieee>;
  static constexpr bool has_nan =
      std::is_same_v<Specials, specials_fn> || (std::is_same_v<Specials, specials_ieee> && M >= 1);
  static constexpr bool flushes = std::is_same_v<Subnormals, flush_subnormals>;

  static_assert(!std::is_same_v<Overflow, to_inf> || has_inf,
                "minifloat<E, M, Policies...>: overflow policy to_inf needs an encoding with Inf (specials_ieee); "
                "specials_fn and specials_finite have no Inf code");
  static_assert(!std::is_same_v<Overflow, to_nan> || has_nan,
                "minifloat<E, M, Policies...>: overflow policy to_nan needs a NaN code (specials_fn, or specials_ieee "
                "with M >= 1)");

 private:
  static constexpr std::uint32_t top_exp = (1u << E) - 1u;
  static constexpr std::uint32_t mant_mask = (1u << M) - 1u;
  static constexpr std::uint32_t mag_mask = (1u << (E + M)) - 1u;
  static constexpr std::uint32_t sign_bit = 1u << (E + M);
  static constexpr std::uint32_t code_mask = sign_bit | mag_mask;

  // Magnitude code of the largest finite value: below the specials of the top binade.
  static constexpr std::uint32_t max_code = std::is_same_v<Specials, specials_ieee> ? ((top_exp - 1u) << M) | mant_mask
                                            : std::is_same_v<Specials, specials_fn> ? mag_mask - 1u
                                                                                    : mag_mask;
  static constexpr double magnitude_of(std::uint32_t c) noexcept {
    const auto e = static_cast<int>(c >> M);
    const auto m = static_cast<double>(c & mant_mask);
    if (e == 0) return flushes ? 0.0 : m * detail::pow2d(emin - M);
    return (detail::pow2d(M) + m) * detail::pow2d(e - bias - M);
  }

 public:
  static constexpr format_family family = format_family::floating;
  static constexpr bit_tuple tuple{1, E, M};
  static constexpr int bits = 1 + E + M;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = magnitude_of(max_code);
  static constexpr double min_value = -max_value;
  static constexpr bool has_zero = true;
  /// Exponent of the binade holding max_value: floor(log2(max_value)).
  static constexpr int emax = static_cast<int>(max_code >> M) == 0 ? emin - 1 : static_cast<int>(max_code >> M) - bias;

  static_assert(max_value > 0.0,
                "minifloat<E, M, Policies...>: this E, M and encoding leave no nonzero finite value (E = 1 or M = 0 "
                "with every nonzero code special)");
  static_assert(max_value <= 3.4028234663852886e38,
                "minifloat<E, M, Policies...>: the largest value exceeds float's range (E = 8 needs specials_ieee)");
  static_assert(!flushes || emax >= emin,
                "minifloat<E, M, Policies...>: flush_subnormals on a format whose finite values are all subnormal");

  static std::string name() {
    if constexpr (detail::standard_float_name<basic_minifloat>::value != nullptr) {
      return detail::standard_float_name<basic_minifloat>::value;
    } else {
      std::string s = "minifloat<" + std::to_string(E) + "," + std::to_string(M);
      if (!std::is_same_v<Specials, specials_ieee>) s += std::string(",") + Specials::name;
      using default_overflow = std::conditional_t<has_inf, to_inf, saturate>;
      if (!std::is_same_v<Overflow, default_overflow>) s += std::string(",") + Overflow::name;
      if (flushes) s += ",flush_subnormals";
      if (!std::is_same_v<Rounding, nearest_even>) s += std::string(",") + Rounding::name;
      return s + ">";
    }
  }

  /// Rounds x to the format (fake quantization). Branch-free on the float's bits so that a loop
  /// over it vectorizes: for |x| in the normal range the rounder sees x's significand placed in
  /// [2^M, 2^(M+1)) (built from bits, no division), for |x| below 2^emin it sees |x| divided by
  /// the fixed subnormal step (a constant multiply, split in two when 2^(M - emin) exceeds float).
  template <class R>
  QNAS_ALWAYS_INLINE static float quantize_one(float x, R& round) noexcept {
    // Every select below is a bit mask on integers, and every float operation runs on every
    // path: GCC does not if-convert float compares (default -ftrapping-math), and it would sink
    // the float multiplies of a `c ? a : b` into branches it then cannot vectorize.
    const std::uint32_t ax = detail::to_bits(x) & 0x7FFFFFFFu;
    const auto ex = static_cast<std::int32_t>(ax >> 23) - 127;  // -127: zero/subnormal, 128: Inf/NaN
    const std::uint32_t sub = mask(ex < emin);
    const std::uint32_t vn = (ax & 0x007FFFFFu) | (static_cast<std::uint32_t>(127 + M) << 23);
    const std::uint32_t vs = detail::to_bits(scale_to_sub_steps(detail::from_bits(ax)));
    const float v = detail::from_bits((vs & sub) | (vn & ~sub));
    const float r = detail::fabs(round(detail::copysign(v, x)));
    // Normal path: r in [2^M, 2^(M+1)] is a normal float; moving its exponent by ex - M gives the
    // value (ex >= emin >= -126 keeps it normal; 2^128 comes out as Inf, an overflow).
    const std::uint32_t qn = detail::to_bits(r) + (static_cast<std::uint32_t>(ex - M) << 23);
    const std::uint32_t qs = detail::to_bits(scale_from_sub_steps(r));
    std::uint32_t q = (qs & sub) | (qn & ~sub);  // |q|: its bits order like its value
    const std::uint32_t over = mask(q > max_bits);
    q = (overflow_bits<R>(ax) & over) | (q & ~over);
    const std::uint32_t nan = mask(ax > 0x7F800000u);
    q = (ax & nan) | (q & ~nan);  // NaN propagates unchanged
    return detail::from_bits(q | (detail::to_bits(x) & 0x80000000u));
  }

  /// The code of the value quantize_one(x) gives. Throws qnas::invalid_argument for NaN when the
  /// format has no NaN code.
  template <class R>
  static std::uint32_t encode_one(float x, R& round) {
    return code_of(quantize_one(x, round));
  }

  static float decode_one(std::uint32_t code) noexcept {
    const std::uint32_t c = code & code_mask;
    const std::uint32_t mag = c & mag_mask;
    const float sgn = (c & sign_bit) ? -1.0f : 1.0f;
    const std::uint32_t e = mag >> M;
    const std::uint32_t m = mag & mant_mask;
    if constexpr (std::is_same_v<Specials, specials_ieee>) {
      if (e == top_exp)
        return m == 0 ? sgn * std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
    } else if constexpr (std::is_same_v<Specials, specials_fn>) {
      if (mag == mag_mask) return std::numeric_limits<float>::quiet_NaN();
    }
    if (e == 0) return flushes ? sgn * 0.0f : sgn * scale_from_sub_steps(static_cast<float>(m));
    return sgn * static_cast<float>((1u << M) | m) * detail::exp2i(static_cast<int>(e) - bias - M);
  }

 private:
  static constexpr float max_f = static_cast<float>(max_value);
  // Step of the values below 2^emin: the subnormal step, or 2^emin itself when flushing (the
  // grid {0, 2^emin}).
  static constexpr int sub_step_exp = flushes ? emin : emin - M;
  static constexpr float sub_step = detail::exp2i(sub_step_exp);

  // r * sub_step without a subnormal constant: x86 takes a slow microcode assist on every
  // multiply with a subnormal operand, and this product is computed for every input.
  QNAS_ALWAYS_INLINE static float scale_from_sub_steps(float r) noexcept {
    if constexpr (sub_step_exp >= -126)
      return r * sub_step;
    else
      return (r * 0x1p-64f) * detail::exp2i(sub_step_exp + 64);
  }

  QNAS_ALWAYS_INLINE static float scale_to_sub_steps(float a) noexcept {
    constexpr int k = -sub_step_exp;  // up to 149 for E = 8: 2^k may not be a float
    if constexpr (k <= 127)
      return a * detail::exp2i(k);
    else
      return (a * detail::exp2i(k - 64)) * 0x1p64f;  // both factors exact; a < 2^emin cannot overflow
  }

  static constexpr std::uint32_t max_bits = detail::to_bits(max_f);
  QNAS_ALWAYS_INLINE static constexpr std::uint32_t mask(bool c) noexcept { return 0u - static_cast<std::uint32_t>(c); }

  /// |result| bits for an input whose rounded magnitude exceeds max_value (see the class comment).
  template <class R>
  QNAS_ALWAYS_INLINE static std::uint32_t overflow_bits(std::uint32_t ax) noexcept {
    constexpr std::uint32_t inf = 0x7F800000u;
    constexpr std::uint32_t nan = 0x7FC00000u;
    constexpr std::uint32_t policy = std::is_same_v<Overflow, saturate> ? max_bits
                                     : std::is_same_v<Overflow, to_inf> ? inf
                                                                        : nan;
    constexpr bool truncating = std::is_same_v<std::remove_cv_t<R>, toward_zero>;
    const std::uint32_t is_inf = mask(ax == inf);
    if constexpr (has_inf) {
      constexpr std::uint32_t finite_over = truncating ? max_bits : policy;
      return (inf & is_inf) | (finite_over & ~is_inf);
    } else {
      constexpr std::uint32_t finite_over = truncating ? max_bits : policy;
      return (policy & is_inf) | (finite_over & ~is_inf);
    }
  }

  static std::uint32_t code_of(float q) {
    const std::uint32_t b = detail::to_bits(q);
    const std::uint32_t s = (b & 0x80000000u) ? sign_bit : 0u;
    const std::uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) {
      if constexpr (has_nan) {
        if constexpr (std::is_same_v<Specials, specials_fn>)
          return s | mag_mask;
        else
          return s | (top_exp << M) | (1u << (M - 1));  // the quiet NaN
      } else {
        throw invalid_argument("qnas::" + name() + "::encode_one", name() + " has no NaN code; cannot encode NaN");
      }
    }
    if (a == 0x7F800000u) return s | (top_exp << M);  // only quantize_one of an ieee format gives Inf
    if (a == 0) return s;
    const int e = detail::ilog2(detail::from_bits(a));
    if (e < emin) return s | static_cast<std::uint32_t>(scale_to_sub_steps(detail::from_bits(a)));  // subnormal
    return s | (static_cast<std::uint32_t>(e + bias) << M) | ((a >> (23 - M)) & mant_mask);
  }
};

/// A floating-point format with E exponent and M mantissa bits. Policies, in any order, each at
/// most once (defaults in brackets):
///   special values  specials_ieee | specials_fn | specials_finite          [specials_ieee]
///   overflow        saturate | to_inf | to_nan      [to_inf for specials_ieee, else saturate]
///   subnormals      keep_subnormals | flush_subnormals                     [keep_subnormals]
///   rounding        nearest_even | nearest_away | toward_zero | stochastic [nearest_even]
template <int E, int M, class... Policies>
using minifloat = basic_minifloat<E, M, typename detail::minifloat_policies<Policies...>::specials,
                                  typename detail::minifloat_policies<Policies...>::overflow,
                                  typename detail::minifloat_policies<Policies...>::subnormals,
                                  typename detail::minifloat_policies<Policies...>::rounding>;

/// IEEE binary32: the identity on every float (NaN payloads included).
using fp32 = minifloat<8, 23>;
/// IEEE binary16: max 65504, overflow to Inf.
using fp16 = minifloat<5, 10>;
/// bfloat16 (float's top 16 bits, round half to even): overflow to Inf.
using bf16 = minifloat<8, 7>;
/// OCP FP8 E4M3 (E4M3FN): max 448, no Inf, NaN = S.1111.111; saturates.
using fp8_e4m3 = minifloat<4, 3, specials_fn>;
/// OCP FP8 E5M2: max 57344, IEEE-like Inf/NaN; finite overflow saturates (as in microxcaling).
using fp8_e5m2 = minifloat<5, 2, specials_ieee, saturate>;
/// OCP FP6 E3M2: max 28, no Inf/NaN.
using fp6_e3m2 = minifloat<3, 2, specials_finite>;
/// OCP FP6 E2M3: max 7.5, no Inf/NaN.
using fp6_e2m3 = minifloat<2, 3, specials_finite>;
/// OCP FP4 E2M1: values 0, 0.5, 1, 1.5, 2, 3, 4, 6 (and negatives), no Inf/NaN.
using fp4_e2m1 = minifloat<2, 1, specials_finite>;

namespace detail {
template <>
struct standard_float_name<fp32> {
  static constexpr const char* value = "fp32";
};
template <>
struct standard_float_name<fp16> {
  static constexpr const char* value = "fp16";
};
template <>
struct standard_float_name<bf16> {
  static constexpr const char* value = "bf16";
};
template <>
struct standard_float_name<fp8_e4m3> {
  static constexpr const char* value = "fp8_e4m3";
};
template <>
struct standard_float_name<fp8_e5m2> {
  static constexpr const char* value = "fp8_e5m2";
};
template <>
struct standard_float_name<fp6_e3m2> {
  static constexpr const char* value = "fp6_e3m2";
};
template <>
struct standard_float_name<fp6_e2m3> {
  static constexpr const char* value = "fp6_e2m3";
};
template <>
struct standard_float_name<fp4_e2m1> {
  static constexpr const char* value = "fp4_e2m1";
};
}  // namespace detail

}  // namespace qnas
