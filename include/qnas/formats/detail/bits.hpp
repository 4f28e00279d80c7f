// Bit-level float helpers that compile to branch-free, vectorizable code (no libm calls).
#pragma once

#include <bit>
#include <cstdint>

#include "qnas/core/config.hpp"

namespace qnas::detail {

QNAS_ALWAYS_INLINE constexpr std::uint32_t to_bits(float x) noexcept { return std::bit_cast<std::uint32_t>(x); }
QNAS_ALWAYS_INLINE constexpr float from_bits(std::uint32_t b) noexcept { return std::bit_cast<float>(b); }

QNAS_ALWAYS_INLINE constexpr float fabs(float x) noexcept { return from_bits(to_bits(x) & 0x7FFFFFFFu); }
QNAS_ALWAYS_INLINE constexpr float copysign(float mag, float sgn) noexcept {
  return from_bits((to_bits(mag) & 0x7FFFFFFFu) | (to_bits(sgn) & 0x80000000u));
}
QNAS_ALWAYS_INLINE constexpr bool is_nan(float x) noexcept { return (to_bits(x) & 0x7FFFFFFFu) > 0x7F800000u; }
QNAS_ALWAYS_INLINE constexpr bool is_inf(float x) noexcept { return (to_bits(x) & 0x7FFFFFFFu) == 0x7F800000u; }
QNAS_ALWAYS_INLINE constexpr bool is_finite(float x) noexcept { return (to_bits(x) & 0x7F800000u) != 0x7F800000u; }

/// Round half to even, exact for every float: adding and removing 2^23 leaves the integer
/// nearest to |x| (ties to even) under the default rounding mode; |x| >= 2^23 is already
/// integral. NaN propagates. (Compilers keep (a + c) - c as written unless -ffast-math,
/// which config.hpp rejects.) Selects are done on integers: with the default
/// -ftrapping-math, GCC will not if-convert float comparisons, and a branch per element
/// keeps the quantize loops from vectorizing.
QNAS_ALWAYS_INLINE float round_half_even(float x) noexcept {
  const std::uint32_t xb = to_bits(x);
  const std::uint32_t ab = xb & 0x7FFFFFFFu;
  // c = 2^23 below 2^23 (rounds), 0 at or above it (already integral, NaN, Inf: unchanged).
  // Selecting the constant rather than the result keeps the add unconditional.
  const float c = from_bits(ab < 0x4B000000u ? 0x4B000000u : 0u);
  const float r = (from_bits(ab) + c) - c;
  return from_bits(to_bits(r) | (xb & 0x80000000u));
}

/// The constant c = 1.5 * 2^(23 + e) with which (x + c) - c rounds x half to even to a multiple
/// of 2^e: exact for |x| < 2^(22 + e), where x + c stays in c's binade, whose ulp is 2^e, and
/// c / 2^e is even; a larger |x| rounds (monotonically) to at least 2^(22 + e) - 2^e. Needs
/// -126 <= e + 23 and e + 24 <= 127 (c and x + c are normal floats).
QNAS_ALWAYS_INLINE constexpr float grid_rounding_constant(int e) noexcept {
  return from_bits(static_cast<std::uint32_t>(e + 23 + 127) << 23 | 0x400000u);
}

/// x rounded half to even onto the grid of grid_rounding_constant's c, then clamped to
/// [lo, hi] (grid points): rounding and clamping commute there, and an x too large for the
/// exact range still rounds beyond the bounds and saturates. A zero comes out +0; a NaN x gives
/// lo (callers keep NaN out). Selects, no branch: the loops calling it vectorize.
QNAS_ALWAYS_INLINE float round_to_grid_clamped(float x, float c, float lo, float hi) noexcept {
  float r = (x + c) - c;
  r = r > lo ? r : lo;
  return r < hi ? r : hi;
}

/// A float's bits mapped to a signed integer that orders like the float (NaN aside).
QNAS_ALWAYS_INLINE constexpr std::int32_t ordered_bits(float x) noexcept {
  const auto b = static_cast<std::int32_t>(to_bits(x));
  return b ^ ((b >> 31) & 0x7FFFFFFF);
}

/// Clamps v to [lo, hi]; NaN propagates. Integer compares on ordered bits, so loops calling
/// it stay branch-free and vectorize (see round_half_even).
QNAS_ALWAYS_INLINE float clamp(float v, float lo, float hi) noexcept {
  const std::uint32_t vb = to_bits(v);
  const std::int32_t o = ordered_bits(v);
  std::uint32_t r = o < ordered_bits(lo) ? to_bits(lo) : vb;
  r = o > ordered_bits(hi) ? to_bits(hi) : r;
  return (vb & 0x7FFFFFFFu) > 0x7F800000u ? v : from_bits(r);
}

/// floor for any float (NaN propagates).
QNAS_ALWAYS_INLINE float floor_small(float x) noexcept {
  float r = round_half_even(x);
  return (r > x) ? r - 1.0f : r;
}

/// 2^e as a float for e in [-149, 127], built from bits (no libm).
QNAS_ALWAYS_INLINE constexpr float exp2i(int e) noexcept {
  if (e >= -126) return from_bits(static_cast<std::uint32_t>(e + 127) << 23);
  return from_bits(1u << (e + 149));  // subnormal powers of two
}

/// floor(log2 |x|) for finite nonzero x (subnormals included).
QNAS_ALWAYS_INLINE constexpr int ilog2(float x) noexcept {
  const std::uint32_t b = to_bits(x) & 0x7FFFFFFFu;
  const int biased = static_cast<int>(b >> 23);
  if (biased != 0) return biased - 127;
  return -149 + (31 - std::countl_zero(b));  // subnormal
}

}  // namespace qnas::detail
