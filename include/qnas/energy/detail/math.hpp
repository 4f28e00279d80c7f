// Constexpr elementary functions for the energy model (log2, ln, sqrt, exp2, ceil, floor).
//
// Why not <cmath>: std::log2/std::sqrt are not constexpr in C++20, and the energy model must
// give the *same* number in a static_assert and in the search loop (DESIGN.md §3 rule 2).
// These functions use one algorithm in both contexts, so a fixed network priced at compile
// time and the same network priced at run time agree bit for bit. They are accurate to a few
// ulps over the ranges the model uses (sizes and bit counts: positive, finite) and are fast
// enough for run-time pricing (a log2 is ~12 multiply-adds).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace qnas::energy::detail {

inline constexpr double ln2 = 0.69314718055994530942;
inline constexpr double log10_2 = 0.30102999566398119521;

/// floor(x) for |x| < 2^62; larger magnitudes are already integral in double.
constexpr double floor(double x) noexcept {
  if (!(x > -4.6e18 && x < 4.6e18)) return x;  // huge, Inf or NaN: unchanged
  const auto i = static_cast<long long>(x);     // truncates toward zero
  const auto d = static_cast<double>(i);
  return d > x ? d - 1.0 : d;
}

/// ceil(x) for |x| < 2^62; larger magnitudes are already integral in double.
constexpr double ceil(double x) noexcept {
  if (!(x > -4.6e18 && x < 4.6e18)) return x;
  const auto i = static_cast<long long>(x);
  const auto d = static_cast<double>(i);
  return d < x ? d + 1.0 : d;
}

/// Rounds to two decimals, ties away from zero (what "{:.2f}" prints for every value whose
/// hundredfold is not within an ulp of a tie).
constexpr double round2(double x) noexcept {
  return x >= 0 ? floor(x * 100.0 + 0.5) / 100.0 : -floor(-x * 100.0 + 0.5) / 100.0;
}

/// 2^n as a double, exact, for n in [-1022, 1023].
constexpr double exp2i(int n) noexcept {
  return std::bit_cast<double>(static_cast<std::uint64_t>(n + 1023) << 52);
}

/// log2(x) for finite x > 0 (subnormals excluded); -Inf for 0, NaN for negative input.
/// Exact for powers of two. x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln(m) by the
/// atanh series in s = (m - 1) / (m + 1), |s| < 0.172, which converges to double precision
/// in 11 terms.
constexpr double log2(double x) noexcept {
  if (x == 0) return -std::numeric_limits<double>::infinity();
  if (!(x > 0)) return std::numeric_limits<double>::quiet_NaN();
  if (x == std::numeric_limits<double>::infinity()) return x;
  const auto b = std::bit_cast<std::uint64_t>(x);
  int e = static_cast<int>((b >> 52) & 0x7FF) - 1023;
  double m = std::bit_cast<double>((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    ++e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  // 2 * (s + s^3/3 + s^5/5 + ... + s^21/21), Horner from the smallest term.
  double p = 1.0 / 21.0;
  p = p * s2 + 1.0 / 19.0;
  p = p * s2 + 1.0 / 17.0;
  p = p * s2 + 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  p = p * s2 + 1.0;
  const double ln_m = 2.0 * s * p;
  return static_cast<double>(e) + ln_m / ln2;
}

/// Natural logarithm (x > 0).
constexpr double ln(double x) noexcept { return log2(x) * ln2; }

/// Decimal logarithm (x > 0).
constexpr double log10(double x) noexcept { return log2(x) * log10_2; }

/// 2^y for |y| < 1000: 2^n * e^t, t = (y - n) ln 2 in [-0.347, 0.347], Taylor to t^13
/// (truncation below 2e-16 relative).
constexpr double exp2(double y) noexcept {
  const double n = floor(y + 0.5);
  const double t = (y - n) * ln2;
  constexpr double c[14] = {1.0,
                            1.0,
                            1.0 / 2,
                            1.0 / 6,
                            1.0 / 24,
                            1.0 / 120,
                            1.0 / 720,
                            1.0 / 5040,
                            1.0 / 40320,
                            1.0 / 362880,
                            1.0 / 3628800,
                            1.0 / 39916800,
                            1.0 / 479001600,
                            1.0 / 6227020800.0};
  double p = c[13];
  for (int k = 12; k >= 0; --k) p = p * t + c[k];
  return p * exp2i(static_cast<int>(n));
}

/// x^y for x > 0.
constexpr double pow(double x, double y) noexcept { return exp2(y * log2(x)); }

/// Square root of x >= 0. GCC evaluates __builtin_sqrt in constant expressions, correctly
/// rounded like the hardware instruction it compiles to at run time, so both agree; other
/// compilers use Newton's iteration from a bit-level first guess (within 4%), six steps.
constexpr double sqrt(double x) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  return __builtin_sqrt(x);
#endif
  if (x == 0) return 0;
  if (!(x > 0)) return std::numeric_limits<double>::quiet_NaN();
  const auto b = std::bit_cast<std::uint64_t>(x);
  double y = std::bit_cast<double>((b >> 1) + 0x1FF8000000000000ull);
  for (int i = 0; i < 6; ++i) y = 0.5 * (y + x / y);
  return y;
}

/// Smallest k with 2^k >= n (n >= 1): the bits a sum of n terms adds to its terms' width.
constexpr int ceil_log2(long long n) noexcept {
  int k = 0;
  while (k < 63 && (1LL << k) < n) ++k;
  return k;
}

}  // namespace qnas::energy::detail
