// Portable seeded random draws for data generation, shuffling and weight initialisation.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <utility>

namespace qnas {

/// The engine qnas uses wherever it owns a random stream (splits, shuffles, synthetic data).
/// `std::mt19937_64` produces the same sequence on every standard library; the distributions
/// below are written here (not `std::uniform_int_distribution`, whose algorithm is
/// implementation-defined) so that the same seed gives the same integer draws (splits, shuffles,
/// labels) everywhere. Draws that pass through libm (`log`, `cos`, `atan2`: normal samples,
/// rendering) are bit-identical for the same math library and may differ in the last bits
/// across math libraries.
using random_engine = std::mt19937_64;

namespace detail {

/// A uniform random bit generator whose every draw is 32 or 64 full random bits.
template <class E>
concept full_range_engine =
    std::uniform_random_bit_generator<E> && E::min() == 0 &&
    (E::max() == std::numeric_limits<std::uint32_t>::max() || E::max() == std::numeric_limits<std::uint64_t>::max());

/// SplitMix64 finaliser: turns (seed, stream) pairs into well-mixed, independent seeds, so item
/// i of a data set can be generated from its own engine (order- and thread-independent).
[[nodiscard]] constexpr std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <class E>
[[nodiscard]] std::uint64_t bits64(E& e) {
  static_assert(full_range_engine<E>,
                "qnas random draws: Engine must produce 32 or 64 full random bits per call "
                "(e.g. std::mt19937 or std::mt19937_64)");
  if constexpr (E::max() == std::numeric_limits<std::uint64_t>::max()) {
    return static_cast<std::uint64_t>(e());
  } else {
    const auto hi = static_cast<std::uint64_t>(e());
    return (hi << 32) | static_cast<std::uint64_t>(e());
  }
}

/// Uniform double in [0, 1) with 53 random bits.
template <class E>
[[nodiscard]] double uniform01(E& e) {
  return static_cast<double>(bits64(e) >> 11) * 0x1.0p-53;
}

/// Uniform double in [lo, hi).
template <class E>
[[nodiscard]] double uniform(E& e, double lo, double hi) {
  return lo + (hi - lo) * uniform01(e);
}

/// Unbiased uniform integer in [0, n), n > 0: draws below 2^64 mod n are rejected so that every
/// residue is equally likely.
template <class E>
[[nodiscard]] std::uint64_t uniform_below(E& e, std::uint64_t n) {
  const std::uint64_t threshold = (0 - n) % n;  // = 2^64 mod n
  std::uint64_t r = bits64(e);
  while (r < threshold) r = bits64(e);
  return r % n;
}

/// Two independent standard normal draws (Box-Muller); both are used so no draw is wasted.
template <class E>
[[nodiscard]] std::pair<double, double> standard_normal_pair(E& e) {
  constexpr double two_pi = 6.283185307179586476925286766559;
  const double u1 = 1.0 - uniform01(e);  // (0, 1]: log() stays finite
  const double u2 = uniform01(e);
  const double r = std::sqrt(-2.0 * std::log(u1));
  return {r * std::cos(two_pi * u2), r * std::sin(two_pi * u2)};
}

/// Fills `out` with N(0, sd^2) draws (Box-Muller pairs, both values used; an odd last element
/// takes the first value of a fresh pair). The portable replacement for
/// std::normal_distribution, whose algorithm differs between libstdc++ and libc++: weight
/// initialisation through this gives the same network for the same seed with either library.
template <class E>
void fill_normal(std::span<float> out, double sd, E& e) {
  std::size_t i = 0;
  for (; i + 1 < out.size(); i += 2) {
    const auto [a, b] = standard_normal_pair(e);
    out[i] = static_cast<float>(sd * a);
    out[i + 1] = static_cast<float>(sd * b);
  }
  if (i < out.size()) out[i] = static_cast<float>(sd * standard_normal_pair(e).first);
}

/// Fisher-Yates shuffle with `uniform_below` (std::shuffle's draws are implementation-defined).
template <class T, class E>
void shuffle(std::span<T> v, E& e) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(uniform_below(e, i));
    using std::swap;
    swap(v[i - 1], v[j]);
  }
}

}  // namespace detail
}  // namespace qnas
