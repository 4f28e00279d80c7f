// Row-major GEMM on float buffers through OpenBLAS (cblas_sgemm): the hot loop of dense and conv layers.
#pragma once

#include <cstddef>
#include <string>

#include <cblas.h>

namespace qnas::nn {

/// The BLAS kernel family in use ("SkylakeX", "Haswell", "Prescott", ...), "unknown" for a BLAS
/// other than OpenBLAS. OpenBLAS 0.3.21 falls back to its generic SSE3 "Prescott" kernels on
/// CPUs it does not recognise, at less than half the speed: set OPENBLAS_CORETYPE (SkylakeX for
/// AVX-512, Haswell for AVX2) in the environment before the program starts.
inline std::string blas_core() {
#if defined(OPENBLAS_VERSION)
  const char* c = openblas_get_corename();
  return c ? c : "unknown";
#else
  return "unknown";
#endif
}

/// Threads the BLAS uses (OPENBLAS_NUM_THREADS), 1 for a BLAS other than OpenBLAS.
inline int blas_threads() {
#if defined(OPENBLAS_VERSION)
  return openblas_get_num_threads();
#else
  return 1;
#endif
}

}  // namespace qnas::nn

namespace qnas::nn::detail {

/// C[m, n] = alpha * op(A) * op(B) + beta * C, all row-major and densely packed
/// (op(A) is [m, k], op(B) is [k, n]; `trans_a` / `trans_b` say the stored matrix is transposed).
inline void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  const auto lda = static_cast<blasint>(trans_a ? m : k);
  const auto ldb = static_cast<blasint>(trans_b ? k : n);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, lda, b, ldb,
              beta, c, static_cast<blasint>(n));
}

/// Adds the column sums of x[rows, cols] into acc[cols] (bias gradients).
inline void add_column_sums(const float* x, std::size_t rows, std::size_t cols, float* acc) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    for (std::size_t j = 0; j < cols; ++j) acc[j] += row[j];
  }
}

/// Sets every row of y[rows, cols] to bias[cols] (the GEMM then accumulates with beta = 1).
inline void broadcast_rows(const float* bias, std::size_t rows, std::size_t cols, float* y) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (std::size_t j = 0; j < cols; ++j) row[j] = bias[j];
  }
}

}  // namespace qnas::nn::detail
