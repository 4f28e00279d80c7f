// Run-time choice of AVX2 builds of quantize loops (the block formats mx, bfp_outlier and
// bfp_nonuniform, and quantizer's scalar loop): same IEEE operations in wider vectors, so the same bits.
#pragma once

#include "qnas/core/config.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/// The block formats have an AVX2 copy of their quantize loop (chosen per call when the CPU
/// runs AVX2). `target("avx2")` enables no FMA, so no multiply-add contraction can change a
/// result: the copy computes what the baseline build computes, bit for bit.
#define QNAS_BLOCK_AVX2 1
#define QNAS_BLOCK_AVX2_TARGET __attribute__((target("avx2")))
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

}  // namespace qnas::detail
