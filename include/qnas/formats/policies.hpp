// Rounding, overflow, subnormal and block-scale policies: the template parameters of formats.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

#include "qnas/core/config.hpp"
#include "qnas/formats/detail/bits.hpp"

namespace qnas {

// ---------------------------------------------------------------------------------------------
// Rounding. A rounding policy maps a real value v (already divided by the step of the format)
// to an integer-valued float. Deterministic policies are stateless function objects; the
// stochastic policy needs a caller-supplied, seeded engine (see `stochastic_rounder`).
// All of them are exact for every finite float and propagate NaN.
// ---------------------------------------------------------------------------------------------

/// Round half to even (IEEE-754 default, `tf.round`, `np.round`).
struct nearest_even {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "nearest_even";
  QNAS_ALWAYS_INLINE float operator()(float v) const noexcept { return detail::round_half_even(v); }
};

/// Round half away from zero (`std::round`).
struct nearest_away {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "nearest_away";
  QNAS_ALWAYS_INLINE float operator()(float v) const noexcept {
    const float a = detail::fabs(v);
    const float r = detail::round_half_even(a);
    // a tie that went down to even goes up (away from zero) instead; integer select (see bits.hpp)
    const std::uint32_t up = 0u - static_cast<std::uint32_t>(a - r == 0.5f);
    return detail::copysign(r + detail::from_bits(0x3F800000u & up), v);
  }
};

/// Truncate toward zero (`std::trunc`).
struct toward_zero {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "toward_zero";
  QNAS_ALWAYS_INLINE float operator()(float v) const noexcept {
    const float a = detail::fabs(v);
    const float r = detail::round_half_even(a);
    // rounded up past |v|: step back one; compared as bits (both are non-negative)
    const std::uint32_t down = 0u - static_cast<std::uint32_t>(detail::to_bits(r) > detail::to_bits(a));
    return detail::copysign(r - detail::from_bits(0x3F800000u & down), v);
  }
};

/// Stochastic rounding: v rounds up with probability frac(v), so E[round(v)] = v.
/// A format with this policy is quantized with an engine: quantize<F>(x, axis, engine).
struct stochastic {
  static constexpr bool needs_engine = true;
  static constexpr const char* name = "stochastic";
};

/// The function object that applies stochastic rounding with a caller-owned engine.
/// It calls the engine once per value and uses 24 of its bits, u = k * 2^-24 (k uniform in
/// [0, 2^24)), so the result is a deterministic function of the seed. With a = |v| and
/// f = frac(a), |v| goes up to floor(a) + 1 when f >= 1 - u (v >= 0) or u < f (v < 0), so
/// P(round up) = frac(v) truncated to a multiple of 2^-24 (to within 2^-24 of frac(v)): the
/// draw is 24 bits, and a float's fractional part is exact, so no float sum blurs it. Every
/// comparison is between exact floats: floor(a) is exact, f = a - floor(a) is exact (Sterbenz
/// for a >= 1), 1 - u is exact. Integer-valued v (|v| >= 2^23 included), NaN and Inf are
/// returned unchanged.
///
/// Until this version the rounder returned floor(v + u) computed in float; for |v| near 2^22
/// the sum v + u rounds to v's spacing, so an integer could move up (with probability about
/// half that spacing) and P(up) was off by up to a quarter. The draws are the same (one engine
/// call per value, the same 24 bits) and, where v + u was exact, the result is the same.
template <std::uniform_random_bit_generator Engine>
class stochastic_rounder {
 public:
  static constexpr bool needs_engine = true;
  static_assert(Engine::max() - Engine::min() >= 0xFFFFFFu,
                "stochastic_rounder<Engine>: Engine must produce at least 24 random bits per call");

  explicit stochastic_rounder(Engine& engine) noexcept : engine_(&engine) {}

  float operator()(float v) noexcept {
    const auto bits = static_cast<std::uint64_t>((*engine_)() - Engine::min());
    const float u = static_cast<float>(bits & 0xFFFFFFu) * 0x1p-24f;  // uniform in [0, 1)
    const float a = detail::fabs(v);
    if (!(a < 0x1p23f)) return v;  // already an integer (or NaN/Inf)
    const float fl = detail::floor_small(a);
    const float f = a - fl;  // exact: frac(|v|)
    if (f == 0.0f) return v;  // integer-valued (keeps -0)
    // v >= 0 goes up when u + f >= 1, as floor(v + u) did in exact arithmetic; v < 0 goes up
    // (|v| goes down) when u + (1 - f) >= 1, i.e. |v| goes up when u < f
    const bool grow = v < 0.0f ? (u < f) : (f >= 1.0f - u);
    const float m = fl + (grow ? 1.0f : 0.0f);
    return v < 0.0f ? 0.0f - m : m;  // 0 - 0 is +0, as floor(v + u) gave
  }

 private:
  Engine* engine_;
};

template <class R>
concept rounding_policy = std::same_as<R, nearest_even> || std::same_as<R, nearest_away> ||
                          std::same_as<R, toward_zero> || std::same_as<R, stochastic>;

// ---------------------------------------------------------------------------------------------
// Overflow: what a value beyond the largest finite magnitude becomes (formats with Inf/NaN).
// Formats without Inf or NaN codes always saturate.
// ---------------------------------------------------------------------------------------------
struct saturate {
  static constexpr const char* name = "saturate";
};
struct to_inf {
  static constexpr const char* name = "to_inf";
};
struct to_nan {
  static constexpr const char* name = "to_nan";
};
template <class O>
concept overflow_policy =
    std::same_as<O, saturate> || std::same_as<O, to_inf> || std::same_as<O, to_nan>;

// ---------------------------------------------------------------------------------------------
// Subnormals: keep the gradual-underflow codes, or flush them (and inputs that would land
// there) to signed zero.
// ---------------------------------------------------------------------------------------------
struct keep_subnormals {
  static constexpr const char* name = "keep_subnormals";
};
struct flush_subnormals {
  static constexpr const char* name = "flush_subnormals";
};
template <class S>
concept subnormal_policy =
    std::same_as<S, keep_subnormals> || std::same_as<S, flush_subnormals>;

// ---------------------------------------------------------------------------------------------
// Block-scale selection for shared-exponent formats.
//  - scale_floor: shared exponent = floor(log2(max|x|)) - emax_elem, as in the OCP MX spec
//    (v1.0, section 6.3) and microxcaling; the largest element may then saturate.
//  - scale_fit: the smallest shared exponent for which no element of the block saturates
//    after rounding (one above scale_floor when the largest element would round past the
//    element maximum). Costs one bit of resolution on such blocks; never clips.
// ---------------------------------------------------------------------------------------------
struct scale_floor {
  static constexpr const char* name = "scale_floor";
};
struct scale_fit {
  static constexpr const char* name = "scale_fit";
};
template <class S>
concept scale_policy = std::same_as<S, scale_floor> || std::same_as<S, scale_fit>;

}  // namespace qnas
