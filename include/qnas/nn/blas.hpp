// Row-major GEMM on float buffers through the CBLAS interface (cblas_sgemm) of OpenBLAS or BLIS:
// the hot loop of dense and conv layers.
//
// The backend is chosen when qnas is configured (CMake cache variable QNAS_BLAS = OpenBLAS, the
// default, or BLIS; the BLIS target defines QNAS_BLAS_BLIS). Both come from Debian packages
// (libopenblas-dev, libblis-dev). They differ in how they pick their kernels: OpenBLAS 0.3.21
// matches the CPU model and falls back to its generic SSE3 "Prescott" kernels on models it does
// not know (several recent Xeons), 3 to 10 times slower; BLIS 0.9 picks its kernels from the
// CPU's features (AVX2, AVX-512), so it stays fast on such CPUs. docs/networks.md has figures.
//
// In front of the BLAS sits a built-in kernel (gemm_kernel.hpp) for the narrow products of conv
// and dense layers, where the BLAS's packing dominates: detail::gemm runs it when the CPU has
// AVX2 or AVX-512 and the shape pays (detail::builtin_gemm_pays), and cblas_sgemm otherwise.
// nn::set_builtin_gemm(false) or QNAS_BUILTIN_GEMM=0 sends every GEMM to the BLAS.
#pragma once

#include <cstddef>
#include <string>

#include <cblas.h>
#if defined(QNAS_BLAS_BLIS)
#include <blis.h>
#endif

#include "qnas/nn/gemm_kernel.hpp"

namespace qnas::nn {

/// The BLAS and the kernel family it runs: "OpenBLAS SkylakeX", "OpenBLAS Prescott" (OpenBLAS's
/// generic fallback: set OPENBLAS_CORETYPE=SkylakeX for AVX-512 or Haswell for AVX2 before the
/// program starts, or configure qnas with QNAS_BLAS=BLIS), "BLIS skx", "BLIS haswell", ...
inline std::string blas_core() {
#if defined(QNAS_BLAS_BLIS)
  const char* c = bli_arch_string(bli_arch_query_id());
  return std::string("BLIS ") + (c ? c : "unknown");
#elif defined(OPENBLAS_VERSION)
  const char* c = openblas_get_corename();
  return std::string("OpenBLAS ") + (c ? c : "unknown");
#else
  return "unknown";
#endif
}

/// Empty when the BLAS runs kernels that match the CPU; otherwise one line saying that it does
/// not and what to do. OpenBLAS reports its generic "Prescott" kernels (SSE3) on CPUs it does
/// not recognise, although they may have AVX2 or AVX-512: dense and conv layers then run 3 to 10
/// times slower than they could. Programs print this once at start (the examples do).
inline std::string blas_advice() {
#if defined(OPENBLAS_VERSION) && !defined(QNAS_BLAS_BLIS) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
  if (blas_core() != "OpenBLAS Prescott") return {};
  if (__builtin_cpu_supports("avx512f"))
    return "OpenBLAS runs its generic Prescott kernels on this AVX-512 CPU: set OPENBLAS_CORETYPE=SkylakeX before "
           "the program starts, or configure qnas with -DQNAS_BLAS=BLIS";
  if (__builtin_cpu_supports("avx2"))
    return "OpenBLAS runs its generic Prescott kernels on this AVX2 CPU: set OPENBLAS_CORETYPE=Haswell before the "
           "program starts, or configure qnas with -DQNAS_BLAS=BLIS";
#endif
  return {};
}

/// Whether the BLAS runs generic kernels that leave the CPU's AVX2 / AVX-512 units unused
/// (OpenBLAS's "Prescott" fallback on a CPU with them); found once per process (OpenBLAS picks
/// its kernels when it loads). The built-in GEMM kernel then takes every shape.
inline bool blas_runs_generic_kernels() {
  static const bool generic = !blas_advice().empty();
  return generic;
}

/// Threads the BLAS uses for one GEMM (OpenBLAS: OPENBLAS_NUM_THREADS; BLIS: BLIS_NUM_THREADS
/// or OMP_NUM_THREADS, else 1).
inline int blas_threads() {
#if defined(QNAS_BLAS_BLIS)
  const auto n = bli_thread_get_num_threads();
  return n > 0 ? static_cast<int>(n) : 1;
#elif defined(OPENBLAS_VERSION)
  return openblas_get_num_threads();
#else
  return 1;
#endif
}

/// Sets the threads the BLAS uses for one GEMM, process-wide. A search that evaluates candidates
/// on several runner threads sets 1, so that the two levels of parallelism do not oversubscribe
/// the cores. No effect with a BLAS other than OpenBLAS and BLIS.
inline void set_blas_threads(int n) {
  if (n < 1) n = 1;
#if defined(QNAS_BLAS_BLIS)
  bli_thread_set_num_threads(n);
#elif defined(OPENBLAS_VERSION)
  openblas_set_num_threads(n);
#endif
}

}  // namespace qnas::nn

namespace qnas::nn::detail {

/// detail::gemm on cblas_sgemm alone (the reference the built-in kernel is tested against).
inline void blas_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                      const float* a, const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
#if defined(QNAS_BLAS_BLIS)
  using blas_int = f77_int;
#else
  using blas_int = blasint;
#endif
  const auto lda = static_cast<blas_int>(trans_a ? m : k);
  const auto ldb = static_cast<blas_int>(trans_b ? k : n);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blas_int>(m), static_cast<blas_int>(n), static_cast<blas_int>(k), alpha, a, lda, b, ldb,
              beta, c, static_cast<blas_int>(n));
}

/// Calls fn(begin, end) on contiguous ranges that cover [0, count), one per thread of
/// nn::blas_threads() on the built-in kernel's helper threads, when the whole job touches at
/// least 2^16 floats (`count * floats_per_item`; below that waking a thread costs more than it
/// saves); otherwise fn(0, count) on the calling thread. For elementwise and row-wise work
/// (activation quantizers, straight-through masks) whose result does not depend on the split.
template <class Fn>
void parallel_ranges(std::size_t count, std::size_t floats_per_item, Fn&& fn) {
  constexpr std::size_t min_floats = std::size_t{1} << 16;
  const int threads = blas_threads();
  if (threads <= 1 || count < 2 || count * floats_per_item < min_floats) {
    fn(std::size_t{0}, count);
    return;
  }
  const std::size_t parts = std::min(count, static_cast<std::size_t>(threads));
  builtin_gemm_pool().run(parts, [&](std::size_t part) { fn(part * count / parts, (part + 1) * count / parts); });
}

/// Sets every row of y[rows, cols] to bias[cols] (the GEMM then accumulates with beta = 1).
inline void broadcast_rows(const float* bias, std::size_t rows, std::size_t cols, float* y) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (std::size_t j = 0; j < cols; ++j) row[j] = bias[j];
  }
}

/// C[m, n] = alpha * op(A) * op(B) + beta * C, all row-major and densely packed
/// (op(A) is [m, k], op(B) is [k, n]; `trans_a` / `trans_b` say the stored matrix is transposed),
/// then the epilogue (bias per column, ReLU). beta == 0 overwrites C without reading it. Runs the
/// built-in kernel where it pays (see the top of this file), which applies the epilogue in its
/// store, else cblas_sgemm with the bias broadcast before and the ReLU applied after (same values
/// bit for bit). `threads` caps the built-in kernel's threads (the BLAS uses its own setting).
inline void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, const float* b, float beta, float* c, const gemm_epilogue& ep = {},
                 int threads = blas_threads()) {
  if (m == 0 || n == 0) return;
  if (const gemm_isa isa = builtin_gemm_isa();
      isa != gemm_isa::none && builtin_gemm_enabled() &&
      builtin_gemm_pays(trans_a, trans_b, m, n, k, blas_runs_generic_kernels()) &&
      builtin_gemm(isa, threads, trans_a, trans_b, m, n, k, alpha, a, b, beta, c, ep))
    return;
  if (ep.bias != nullptr && beta == 0.0f) {
    broadcast_rows(ep.bias, m, n, c);
    beta = 1.0f;
  } else if (ep.bias != nullptr) {
    // C = alpha AB + beta C + bias: scale C first so that one BLAS call with beta = 1 adds AB.
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t j = 0; j < n; ++j) c[r * n + j] = beta * c[r * n + j] + ep.bias[j];
    beta = 1.0f;
  }
  blas_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  if (ep.relu)
    for (std::size_t i = 0; i < m * n; ++i) c[i] = c[i] > 0.0f ? c[i] : 0.0f;
}

}  // namespace qnas::nn::detail
