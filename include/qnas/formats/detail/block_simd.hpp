// Run-time choice of AVX2 builds of quantize loops (the block formats mx, bfp_outlier and
// bfp_nonuniform, and quantizer's scalar loop): same IEEE operations in wider vectors, so the same bits.
// Also the AVX2 block reductions those builds share (top2_avx2).
#pragma once

#include "qnas/core/config.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/// The block formats have an AVX2 copy of their quantize loop (chosen per call when the CPU
/// runs AVX2). `target("avx2")` enables no FMA, so no multiply-add contraction can change a
/// result: the copy computes what the baseline build computes, bit for bit.
#define QNAS_BLOCK_AVX2 1
#define QNAS_BLOCK_AVX2_TARGET __attribute__((target("avx2")))
#endif

#if defined(QNAS_BLOCK_AVX2)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#endif

namespace qnas::detail {

/// Whether this CPU runs AVX2 (found once).
inline bool block_avx2_available() noexcept {
#if defined(QNAS_BLOCK_AVX2)
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return avx2;
#else
  return false;
#endif
}

#if defined(QNAS_BLOCK_AVX2)
/// The largest and the second largest of a multiset of int32 (`second == first` when the
/// largest occurs twice).
struct top2_i32 {
  std::int32_t first, second;
};

/// Merges into (hi, lo) the per-lane (largest, second) pairs (h2, l2) of disjoint sets.
QNAS_BLOCK_AVX2_TARGET inline __attribute__((always_inline)) void top2_merge_avx2(__m256i& hi, __m256i& lo, __m256i h2,
                                                                                 __m256i l2) noexcept {
  lo = _mm256_max_epi32(_mm256_max_epi32(lo, l2), _mm256_min_epi32(hi, h2));
  hi = _mm256_max_epi32(hi, h2);
}

/// top2 of the 8 * V lanes of `v` (values >= 0) in one pass, no sort and no second pass that
/// waits for the maximum: a running (largest, second) pair per lane over the V vectors, then
/// three butterfly merges across lanes; merging the pairs (a1, a2) and (b1, b2) of two disjoint
/// sets gives (max(a1, b1), max(min(a1, b1), max(a2, b2))).
template <std::size_t V>
QNAS_BLOCK_AVX2_TARGET inline __attribute__((always_inline)) top2_i32 top2_avx2(const __m256i (&v)[V]) noexcept {
  __m256i hi = v[0];
  __m256i lo = _mm256_set1_epi32(-1);
  for (std::size_t k = 1; k < V; ++k) {
    lo = _mm256_max_epi32(lo, _mm256_min_epi32(hi, v[k]));
    hi = _mm256_max_epi32(hi, v[k]);
  }
  top2_merge_avx2(hi, lo, _mm256_permute2x128_si256(hi, hi, 1), _mm256_permute2x128_si256(lo, lo, 1));  // halves
  top2_merge_avx2(hi, lo, _mm256_shuffle_epi32(hi, 0x4E), _mm256_shuffle_epi32(lo, 0x4E));  // pairs
  top2_merge_avx2(hi, lo, _mm256_shuffle_epi32(hi, 0xB1), _mm256_shuffle_epi32(lo, 0xB1));  // neighbours
  return {_mm256_cvtsi256_si32(hi), _mm256_cvtsi256_si32(lo)};
}
#endif

}  // namespace qnas::detail
