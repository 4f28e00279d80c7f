// Configuration macros shared by every qnas header.
#pragma once

#define QNAS_VERSION_MAJOR 0
#define QNAS_VERSION_MINOR 1
#define QNAS_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define QNAS_ALWAYS_INLINE inline __attribute__((always_inline))
#define QNAS_RESTRICT __restrict__
#else
#define QNAS_ALWAYS_INLINE inline
#define QNAS_RESTRICT
#endif

// qnas relies on IEEE-754 semantics (NaN propagation, exact magic-number rounding).
#if defined(__FAST_MATH__)
#error "qnas: do not compile with -ffast-math: quantizers rely on IEEE-754 rounding and NaN semantics"
#endif
