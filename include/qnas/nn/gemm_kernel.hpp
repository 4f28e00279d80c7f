// Built-in float32 GEMM for the tall-skinny products of conv and dense layers (many rows, up to a
// few hundred columns and a short reduction), where a BLAS spends its time packing and OpenBLAS
// 0.3.21 may run its generic SSE3 kernels on CPUs it does not recognise.
//
// The kernel is register-blocked broadcast-FMA: for a block of MR rows it keeps the MR x 64
// (AVX-512) or MR x 16 (AVX2) block of C in registers, and for every p broadcasts A[i, p] and
// multiplies it into the row B[p, j..]. B is read in place (transposed once into a scratch buffer
// when stored transposed); column tails use masked loads and stores. The instruction set is
// picked at run time (`__builtin_cpu_supports`), so qnas needs no -march flags: functions carry
// `__attribute__((target(...)))`. Rows are split across the BLAS's thread count (nn::blas_threads)
// on a small pool of helper threads created on first use.
//
// The store can add a bias per column and apply a ReLU (gemm_epilogue), so a layer needs no
// separate pass over its output for either. builtin_gemm_indirect reads A through row-segment
// pointers instead of a stored matrix: conv2d's inference points them at the windows of the
// image itself (an implicit im2col).
//
// detail::gemm (blas.hpp) calls it for the shapes where it beats the BLAS (builtin_gemm_pays) and
// calls cblas_sgemm otherwise, on compilers other than GCC and Clang, and off x86-64.
// nn::set_builtin_gemm(false), or QNAS_BUILTIN_GEMM=0 in the environment, sends every GEMM to the
// BLAS (tests and benchmarks compare the two).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(QNAS_NO_BUILTIN_GEMM)
#define QNAS_BUILTIN_GEMM_X86 1
#include <immintrin.h>
#endif

namespace qnas::nn {

/// The instruction set of the built-in GEMM kernel: none (the BLAS runs every GEMM), AVX2+FMA or
/// AVX-512 (F, VL, BW).
enum class gemm_isa { none, avx2, avx512 };

inline const char* to_string(gemm_isa isa) noexcept {
  switch (isa) {
    case gemm_isa::avx512: return "avx512";
    case gemm_isa::avx2: return "avx2";
    default: return "none";
  }
}

/// The best instruction set of the built-in kernel on this CPU (found once); gemm_isa::none off
/// x86-64, with compilers other than GCC and Clang, or when QNAS_NO_BUILTIN_GEMM is defined.
inline gemm_isa builtin_gemm_isa() noexcept {
#if defined(QNAS_BUILTIN_GEMM_X86)
  static const gemm_isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma"))
      return gemm_isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return gemm_isa::avx2;
    return gemm_isa::none;
  }();
  return best;
#else
  return gemm_isa::none;
#endif
}

/// Whether `isa` runs on this CPU (gemm_isa::none always does: it means the BLAS).
inline bool builtin_gemm_supports(gemm_isa isa) noexcept {
  return isa == gemm_isa::none || static_cast<int>(isa) <= static_cast<int>(builtin_gemm_isa());
}

namespace detail {
inline std::atomic<bool>& builtin_gemm_switch() noexcept {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("QNAS_BUILTIN_GEMM");
    return !(e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0 || std::strcmp(e, "OFF") == 0));
  }()};
  return on;
}
}  // namespace detail

/// Turns the built-in GEMM kernel on (the default) or off, process-wide. Off, every GEMM goes to
/// cblas_sgemm. The environment variable QNAS_BUILTIN_GEMM=0 (or off) sets the initial state.
inline void set_builtin_gemm(bool on) noexcept { detail::builtin_gemm_switch().store(on, std::memory_order_relaxed); }

/// Whether detail::gemm may use the built-in kernel (it still needs builtin_gemm_isa() != none
/// and a shape where it pays).
inline bool builtin_gemm_enabled() noexcept { return detail::builtin_gemm_switch().load(std::memory_order_relaxed); }

}  // namespace qnas::nn

namespace qnas::nn::detail {

/// Whether the built-in kernel beats the BLAS on C[m, n] = op(A)[m, k] op(B)[k, n].
/// `blas_generic`: the BLAS runs kernels that do not use the CPU's vector units (OpenBLAS's
/// Prescott fallback); the built-in kernel is then 3 to 8 times faster on every shape measured,
/// up to 512 x 512 x 512. Against BLAS kernels that match the CPU (OpenBLAS SkylakeX/Haswell,
/// BLIS) it wins on narrow C (the columns are filters or units: n <= 128) and on a short
/// reduction (k <= 128, the input gradients of conv layers), and loses up to 20 % on wide and
/// deep products (the BLAS blocks for the caches; this kernel re-reads B from L2 per block of
/// rows) and on transposed A with many rows (weight gradients of wide dense layers: A is read
/// with stride m). Products under ~1 M multiply-adds are even (the BLAS's fixed costs); they go
/// to this kernel, which also keeps OpenBLAS's worker threads asleep: after a multi-threaded call
/// they spin for a while and would take the cores from this kernel's threads. The limits come
/// from bench/bench_train_step and single-GEMM timings against OpenBLAS SkylakeX.
inline bool builtin_gemm_pays(bool trans_a, bool /*trans_b*/, std::size_t m, std::size_t n, std::size_t k,
                              bool blas_generic) noexcept {
  if (m == 0 || n == 0 || k == 0) return false;
  if (blas_generic) return true;
  if (m * n * k <= (std::size_t{1} << 20)) return true;  // the BLAS's call and packing overhead dominates
  if (trans_a) return m <= 512 && n <= 128;
  return n <= 128 || (n <= 1024 && k <= 128);
}

/// What the GEMM does to each element of C on its way out, after alpha * op(A) op(B) + beta * C:
/// add bias[j] to every column j (the layer's bias), then clamp at zero (a ReLU that follows the
/// layer). Done in the kernel's store, it saves a pass over C for each; the result is bit for bit
/// that of broadcasting the bias into C and multiplying with beta = 1, then applying the ReLU.
struct gemm_epilogue {
  const float* bias = nullptr;  ///< n values, or nullptr
  bool relu = false;
};

/// A small pool of helper threads for splitting one GEMM's rows. run(parts, fn) calls fn(i) for
/// i in [0, parts), part 0 on the calling thread, and returns when all are done. A call that
/// finds the pool busy (a GEMM from another thread) runs every part on its own thread.
/// A helper that finishes a part spins for up to a millisecond for the next one before it
/// blocks: the GEMMs of one forward pass come a few hundred microseconds apart, and waking a
/// blocked thread costs tens of microseconds (more on a virtual machine's idle vCPU).
class gemm_pool {
 public:
  gemm_pool() = default;
  gemm_pool(const gemm_pool&) = delete;
  gemm_pool& operator=(const gemm_pool&) = delete;
  ~gemm_pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  template <class Fn>
  void run(std::size_t parts, Fn&& fn) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (parts <= 1 || !busy.owns_lock()) {
      for (std::size_t i = 0; i < parts; ++i) fn(i);
      return;
    }
    auto call = [](void* ctx, std::size_t i) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(i); };
    {
      std::lock_guard<std::mutex> lk(m_);
      while (workers_.size() + 1 < parts) workers_.emplace_back([this, id = workers_.size() + 1] { work(id); });
      job_ = call;
      ctx_ = &fn;
      parts_ = parts;
      pending_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0);
    // The parts are about as long as part 0, so the rest finish soon: spin briefly, then block.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4096) {
        pause();
      } else {
        std::unique_lock<std::mutex> lk(m_);
        done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
      }
    }
  }

 private:
  static void pause() noexcept {
#if defined(QNAS_BUILTIN_GEMM_X86)
    _mm_pause();
#endif
  }

  void work(std::size_t id) {
    std::size_t seen = 0;
    for (;;) {
      // Spin for the next GEMM, then block.
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      for (int i = 0; generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_acquire);
           ++i) {
        if (i % 64 == 63 && std::chrono::steady_clock::now() > until) break;
        pause();
      }
      void (*job)(void*, std::size_t) = nullptr;
      void* ctx = nullptr;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] {
          return stop_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_relaxed) != seen;
        });
        if (stop_.load(std::memory_order_relaxed)) return;
        seen = generation_.load(std::memory_order_relaxed);
        if (id >= parts_) continue;
        job = job_;
        ctx = ctx_;
      }
      job(ctx, id);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_one();
      }
    }
  }

  std::mutex run_mutex_;  // one GEMM at a time on the pool
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  void (*job_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  std::size_t parts_ = 0;
  std::atomic<std::size_t> generation_{0}, pending_{0};
  std::atomic<bool> stop_{false};
};

inline gemm_pool& builtin_gemm_pool() {
  static gemm_pool pool;
  return pool;
}

#if defined(QNAS_BUILTIN_GEMM_X86)

#define QNAS_GEMM_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,fma")))
#define QNAS_GEMM_AVX2 __attribute__((target("avx2,fma")))
#define QNAS_GEMM_UNROLL _Pragma("GCC unroll 16")

/// The operands of one GEMM as the tile kernels see them. A[i, p] is a[i * a_row + p * a_col]
/// (no transpose: a_row = k, a_col = 1; transposed: a_row = 1, a_col = m); B is [k, n]
/// row-major with row stride ldb; C is [m, n] row-major.
///
/// Indirect A (a_mode::indirect, an implicit im2col): row i of A is `segs` segments of `seg`
/// contiguous floats, segment s starting at ind[i * segs + s]; `a` is unused. The tile then
/// covers columns [p0, p0 + k) of A and rows [p0, p0 + k) of `b`.
struct gemm_args {
  std::size_t m, n, k;
  const float* a;
  std::size_t a_row, a_col;
  const float* b;
  std::size_t ldb;
  float* c;
  float alpha, beta;
  const float* bias = nullptr;  // epilogue (gemm_epilogue): added to every row of C
  bool relu = false;            // epilogue: max(C, 0) last
  const float* const* ind = nullptr;
  std::size_t seg = 0, segs = 0, p0 = 0;
};

/// How a tile reads A: stored row-major, stored transposed, or through row-segment pointers.
enum class a_mode { rows, transposed, indirect };

// ---- AVX-512: tiles of MR rows x NV vectors of 16 columns; C tile in zmm registers. ----

/// Rows per tile for NV vectors: MR * NV accumulators + NV B vectors + 1 broadcast <= 32
/// registers, and at least 8 independent accumulators to cover the FMA latency.
template <int NV>
inline constexpr int mr_avx512 = NV == 4 ? 6 : NV == 3 ? 8 : 12;

/// Writes the MR x NV accumulator tile to C at (i0, j0): alpha, beta, then the epilogue.
template <int NV, int MR>
QNAS_GEMM_AVX512 inline void store_tile_avx512(const gemm_args& g, std::size_t i0, std::size_t j0, __mmask16 last,
                                               const __m512 (&acc)[MR][NV]) {
  const __m512 alpha = _mm512_set1_ps(g.alpha), beta = _mm512_set1_ps(g.beta), zero = _mm512_setzero_ps();
  const bool read_c = g.beta != 0.0f;  // beta == 0: C is not read (it may hold NaN)
  const bool add_bias = g.bias != nullptr, relu = g.relu;
  __m512 bias[NV];
  QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
    bias[v] = add_bias ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF), g.bias + j0 + 16 * v)
                       : zero;
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
    float* c = g.c + (i0 + static_cast<std::size_t>(r)) * g.n + j0;
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      __m512 y = _mm512_mul_ps(acc[r][v], alpha);
      if (read_c) y = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mk, c + 16 * v), y);
      if (add_bias) y = _mm512_add_ps(y, bias[v]);
      if (relu) y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ), y);  // y > 0 ? y : +0
      _mm512_mask_storeu_ps(c + 16 * v, mk, y);
    }
  }
}

template <int NV, int MR, bool TransA>
QNAS_GEMM_AVX512 inline void tile_avx512(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  const __mmask16 last = static_cast<__mmask16>(tail);
  const float* a = g.a + i0 * g.a_row;
  const float* b = g.b + j0;
  __m512 acc[MR][NV];
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r)
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const std::size_t k = g.k, lda = TransA ? g.a_col : g.a_row, ldb = g.ldb;
  for (std::size_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    __m512 bv[NV];
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
    QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(TransA ? a[p * lda + static_cast<std::size_t>(r)]
                                              : a[static_cast<std::size_t>(r) * lda + p]);
      QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  store_tile_avx512<NV, MR>(g, i0, j0, last, acc);
}

/// The tile over an indirect A (see gemm_args): per segment, MR row pointers; within it, the
/// same broadcast-FMA steps as tile_avx512 over the columns [p0, p0 + k).
template <int NV, int MR>
QNAS_GEMM_AVX512 inline void tile_indirect_avx512(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  const __mmask16 last = static_cast<__mmask16>(tail);
  __m512 acc[MR][NV];
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r)
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const std::size_t seg = g.seg, segs = g.segs, ldb = g.ldb, p_end = g.p0 + g.k;
  const float* const* ind = g.ind + i0 * segs;
  for (std::size_t s = g.p0 / seg; s * seg < p_end; ++s) {
    const float* ap[MR];
    QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) ap[r] = ind[static_cast<std::size_t>(r) * segs + s];
    const std::size_t q0 = std::max(g.p0, s * seg) - s * seg, q1 = std::min(p_end, (s + 1) * seg) - s * seg;
    const float* bs = g.b + j0 + s * seg * ldb;
    for (std::size_t q = q0; q < q1; ++q) {
      const float* bp = bs + q * ldb;
      __m512 bv[NV];
      QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
        bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
      QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(ap[r][q]);
        QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
      }
    }
  }
  store_tile_avx512<NV, MR>(g, i0, j0, last, acc);
}

template <int NV, int MR, a_mode A>
QNAS_GEMM_AVX512 inline void any_tile_avx512(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  if constexpr (A == a_mode::indirect)
    tile_indirect_avx512<NV, MR>(g, i0, j0, tail);
  else
    tile_avx512<NV, MR, A == a_mode::transposed>(g, i0, j0, tail);
}

template <int NV, a_mode A, int... R>
QNAS_GEMM_AVX512 inline void tile_tail_avx512(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail,
                                              std::size_t rows, std::integer_sequence<int, R...>) {
  ((rows == static_cast<std::size_t>(R + 1) ? any_tile_avx512<NV, R + 1, A>(g, i0, j0, tail) : void()), ...);
}

/// Rows [i0, i1) of the columns [j0, j0 + 16 * NV) (the last vector masked by `tail`).
template <int NV, a_mode A>
QNAS_GEMM_AVX512 inline void panel_avx512(const gemm_args& g, std::size_t i0, std::size_t i1, std::size_t j0,
                                          unsigned tail) {
  constexpr int mr = mr_avx512<NV>;
  std::size_t i = i0;
  for (; i + mr <= i1; i += mr) any_tile_avx512<NV, mr, A>(g, i, j0, tail);
  if (i < i1) tile_tail_avx512<NV, A>(g, i, j0, tail, i1 - i, std::make_integer_sequence<int, mr - 1>{});
}

template <a_mode A>
QNAS_GEMM_AVX512 void rows_avx512(const gemm_args& g, std::size_t i0, std::size_t i1) {
  // Column panels of 64; C rows of a block of 96 rows stay in L1/L2 across panels.
  constexpr std::size_t row_block = 96;
  for (std::size_t ib = i0; ib < i1; ib += row_block) {
    const std::size_t ie = std::min(i1, ib + row_block);
    for (std::size_t j0 = 0; j0 < g.n; j0 += 64) {
      const std::size_t w = std::min<std::size_t>(64, g.n - j0);
      const std::size_t nv = (w + 15) / 16;
      const unsigned tail = w % 16 == 0 ? 0xFFFFu : (1u << (w % 16)) - 1u;
      switch (nv) {
        case 1: panel_avx512<1, A>(g, ib, ie, j0, tail); break;
        case 2: panel_avx512<2, A>(g, ib, ie, j0, tail); break;
        case 3: panel_avx512<3, A>(g, ib, ie, j0, tail); break;
        default: panel_avx512<4, A>(g, ib, ie, j0, tail); break;
      }
    }
  }
}

// ---- AVX2: tiles of MR rows x NV vectors of 8 columns (16 ymm registers). ----

template <int NV>
inline constexpr int mr_avx2 = NV == 2 ? 6 : 8;

/// Writes the MR x NV accumulator tile to C at (i0, j0): alpha, beta, then the epilogue. Lanes
/// below `tail` (1..8) of the last vector are live (`last`).
template <int NV, int MR>
QNAS_GEMM_AVX2 inline void store_tile_avx2(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail,
                                           __m256i last, const __m256 (&acc)[MR][NV]) {
  const bool full = tail == 8;
  const __m256 alpha = _mm256_set1_ps(g.alpha), beta = _mm256_set1_ps(g.beta), zero = _mm256_setzero_ps();
  const bool read_c = g.beta != 0.0f;  // beta == 0: C is not read (it may hold NaN)
  const bool add_bias = g.bias != nullptr, relu = g.relu;
  __m256 bias[NV];
  QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
    bias[v] = !add_bias                ? zero
              : v == NV - 1 && !full ? _mm256_maskload_ps(g.bias + j0 + 8 * v, last)
                                     : _mm256_loadu_ps(g.bias + j0 + 8 * v);
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
    float* c = g.c + (i0 + static_cast<std::size_t>(r)) * g.n + j0;
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) {
      __m256 y = _mm256_mul_ps(acc[r][v], alpha);
      const bool masked = v == NV - 1 && !full;
      if (read_c) y = _mm256_fmadd_ps(beta, masked ? _mm256_maskload_ps(c + 8 * v, last) : _mm256_loadu_ps(c + 8 * v), y);
      if (add_bias) y = _mm256_add_ps(y, bias[v]);
      if (relu) y = _mm256_max_ps(y, zero);  // NaN and -0 give the second operand, +0: y > 0 ? y : +0
      if (masked)
        _mm256_maskstore_ps(c + 8 * v, last, y);
      else
        _mm256_storeu_ps(c + 8 * v, y);
    }
  }
}

template <int NV, int MR, bool TransA>
QNAS_GEMM_AVX2 inline void tile_avx2(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  // Lanes below `tail` (1..8) of the last vector are live.
  const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(tail)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const bool full = tail == 8;
  const float* a = g.a + i0 * g.a_row;
  const float* b = g.b + j0;
  __m256 acc[MR][NV];
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r)
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  const std::size_t k = g.k, lda = TransA ? g.a_col : g.a_row, ldb = g.ldb;
  for (std::size_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    __m256 bv[NV];
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 && !full ? _mm256_maskload_ps(bp + 8 * v, last) : _mm256_loadu_ps(bp + 8 * v);
    QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(TransA ? a + p * lda + static_cast<std::size_t>(r)
                                                   : a + static_cast<std::size_t>(r) * lda + p);
      QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  store_tile_avx2<NV, MR>(g, i0, j0, tail, last, acc);
}

/// The tile over an indirect A (see gemm_args and tile_indirect_avx512).
template <int NV, int MR>
QNAS_GEMM_AVX2 inline void tile_indirect_avx2(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(tail)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const bool full = tail == 8;
  __m256 acc[MR][NV];
  QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r)
    QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  const std::size_t seg = g.seg, segs = g.segs, ldb = g.ldb, p_end = g.p0 + g.k;
  const float* const* ind = g.ind + i0 * segs;
  for (std::size_t s = g.p0 / seg; s * seg < p_end; ++s) {
    const float* ap[MR];
    QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) ap[r] = ind[static_cast<std::size_t>(r) * segs + s];
    const std::size_t q0 = std::max(g.p0, s * seg) - s * seg, q1 = std::min(p_end, (s + 1) * seg) - s * seg;
    const float* bs = g.b + j0 + s * seg * ldb;
    for (std::size_t q = q0; q < q1; ++q) {
      const float* bp = bs + q * ldb;
      __m256 bv[NV];
      QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v)
        bv[v] = v == NV - 1 && !full ? _mm256_maskload_ps(bp + 8 * v, last) : _mm256_loadu_ps(bp + 8 * v);
      QNAS_GEMM_UNROLL for (int r = 0; r < MR; ++r) {
        const __m256 ar = _mm256_broadcast_ss(ap[r] + q);
        QNAS_GEMM_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
      }
    }
  }
  store_tile_avx2<NV, MR>(g, i0, j0, tail, last, acc);
}

template <int NV, int MR, a_mode A>
QNAS_GEMM_AVX2 inline void any_tile_avx2(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail) {
  if constexpr (A == a_mode::indirect)
    tile_indirect_avx2<NV, MR>(g, i0, j0, tail);
  else
    tile_avx2<NV, MR, A == a_mode::transposed>(g, i0, j0, tail);
}

template <int NV, a_mode A, int... R>
QNAS_GEMM_AVX2 inline void tile_tail_avx2(const gemm_args& g, std::size_t i0, std::size_t j0, unsigned tail,
                                          std::size_t rows, std::integer_sequence<int, R...>) {
  ((rows == static_cast<std::size_t>(R + 1) ? any_tile_avx2<NV, R + 1, A>(g, i0, j0, tail) : void()), ...);
}

template <int NV, a_mode A>
QNAS_GEMM_AVX2 inline void panel_avx2(const gemm_args& g, std::size_t i0, std::size_t i1, std::size_t j0,
                                      unsigned tail) {
  constexpr int mr = mr_avx2<NV>;
  std::size_t i = i0;
  for (; i + mr <= i1; i += mr) any_tile_avx2<NV, mr, A>(g, i, j0, tail);
  if (i < i1) tile_tail_avx2<NV, A>(g, i, j0, tail, i1 - i, std::make_integer_sequence<int, mr - 1>{});
}

template <a_mode A>
QNAS_GEMM_AVX2 void rows_avx2(const gemm_args& g, std::size_t i0, std::size_t i1) {
  constexpr std::size_t row_block = 96;
  for (std::size_t ib = i0; ib < i1; ib += row_block) {
    const std::size_t ie = std::min(i1, ib + row_block);
    for (std::size_t j0 = 0; j0 < g.n; j0 += 16) {
      const std::size_t w = std::min<std::size_t>(16, g.n - j0);
      if (w > 8)
        panel_avx2<2, A>(g, ib, ie, j0, static_cast<unsigned>(w - 8));
      else
        panel_avx2<1, A>(g, ib, ie, j0, static_cast<unsigned>(w));
    }
  }
}

#undef QNAS_GEMM_UNROLL

// The six row kernels above expand to about 150 unrolled tile functions: some 5 s of compile time
// in every translation unit that runs a GEMM. A program with many translation units can compile
// them once: every translation unit defines QNAS_GEMM_KERNELS_EXTERN (the kernels are declared,
// not instantiated), and one of them also defines QNAS_GEMM_KERNELS_INSTANTIATE (it instantiates
// them). qnas's own tests and examples build this way (docs/networks.md, "Build time").
#if defined(QNAS_GEMM_KERNELS_INSTANTIATE)
#define QNAS_GEMM_KERNELS_DECLARE(mode)                                                              \
  template void rows_avx512<a_mode::mode>(const gemm_args&, std::size_t, std::size_t);           \
  template void rows_avx2<a_mode::mode>(const gemm_args&, std::size_t, std::size_t);
#elif defined(QNAS_GEMM_KERNELS_EXTERN)
#define QNAS_GEMM_KERNELS_DECLARE(mode)                                                              \
  extern template void rows_avx512<a_mode::mode>(const gemm_args&, std::size_t, std::size_t);    \
  extern template void rows_avx2<a_mode::mode>(const gemm_args&, std::size_t, std::size_t);
#endif
#ifdef QNAS_GEMM_KERNELS_DECLARE
QNAS_GEMM_KERNELS_DECLARE(rows)
QNAS_GEMM_KERNELS_DECLARE(transposed)
QNAS_GEMM_KERNELS_DECLARE(indirect)
#undef QNAS_GEMM_KERNELS_DECLARE
#endif

#endif  // QNAS_BUILTIN_GEMM_X86

/// The length of the reduction slices of the built-in kernel for a reduction of k: at most 384,
/// equal but for the last. The direct and the indirect entry points slice alike, so they sum
/// every element in the same order.
inline constexpr std::size_t builtin_gemm_slice(std::size_t k) noexcept {
  constexpr std::size_t max_slice = 384;
  const std::size_t slices = (k + max_slice - 1) / max_slice;
  return slices == 0 ? 0 : (k + slices - 1) / slices;
}

#if defined(QNAS_BUILTIN_GEMM_X86)
/// The operands of the reduction slice [p0, p0 + min(slice, k - p0)) of `g`: the first slice
/// applies beta and adds the epilogue's bias (as a bias broadcast into C would), the others add
/// to C; the ReLU waits for the last. The caller points A and B at the slice (direct) or sets
/// p0 (indirect).
inline gemm_args builtin_gemm_slice_args(const gemm_args& g, std::size_t p0, std::size_t slice,
                                         const gemm_epilogue& ep) noexcept {
  gemm_args s = g;
  s.k = std::min(slice, g.k - p0);
  if (p0 != 0) s.beta = 1.0f;
  s.bias = p0 == 0 ? ep.bias : nullptr;
  s.relu = ep.relu && p0 + s.k == g.k;
  return s;
}
#endif

/// C[m, n] = alpha * op(A) op(B) + beta * C, then the epilogue `ep`, with the built-in kernel of
/// `isa` on up to `threads` threads; same operands and semantics as detail::gemm (beta == 0 does
/// not read C). Returns false, computing nothing, when `isa` is none or does not run on this CPU,
/// or for alpha == 0 or k == 0 (the BLAS handles those without reading A and B).
inline bool builtin_gemm(gemm_isa isa, int threads, bool trans_a, bool trans_b, std::size_t m, std::size_t n,
                         std::size_t k, float alpha, const float* a, const float* b, float beta, float* c,
                         const gemm_epilogue& ep = {}) {
#if defined(QNAS_BUILTIN_GEMM_X86)
  if (isa == gemm_isa::none || !builtin_gemm_supports(isa)) return false;
  if (m == 0 || n == 0) return true;
  if (k == 0 || alpha == 0.0f) return false;
  gemm_args g{m, n, k, a, trans_a ? 1 : k, trans_a ? m : 1, b, n, c, alpha, beta};
  if (trans_b) {
    // B is stored [n, k]: transpose it once into [k, n] (small: these are weights).
    thread_local std::vector<float> bt;
    bt.resize(k * n);
    for (std::size_t j = 0; j < n; ++j) {
      const float* src = b + j * k;
      for (std::size_t p = 0; p < k; ++p) bt[p * n + j] = src[p];
    }
    g.b = bt.data();
  }
  using rows_fn = void (*)(const gemm_args&, std::size_t, std::size_t);
  constexpr a_mode tr = a_mode::transposed, nt = a_mode::rows;
  const rows_fn rows = isa == gemm_isa::avx512 ? (trans_a ? &rows_avx512<tr> : &rows_avx512<nt>)
                                               : (trans_a ? &rows_avx2<tr> : &rows_avx2<nt>);
  // The reduction runs in slices (builtin_gemm_slice), so that the rows of B one slice reads
  // stay in L2 while every block of rows of A passes over them; C accumulates across slices
  // (the first applies beta, the others add).
  const std::size_t slice = builtin_gemm_slice(k);
  auto run_rows = [&](std::size_t i0, std::size_t i1) {
    for (std::size_t p0 = 0; p0 < k; p0 += slice) {
      gemm_args s = builtin_gemm_slice_args(g, p0, slice, ep);
      s.a = g.a + p0 * g.a_col;
      s.b = g.b + p0 * g.ldb;
      rows(s, i0, i1);
    }
  };
  // One part per thread, in whole tiles of rows; below ~1 M multiply-adds a part is not worth
  // waking a thread for.
  constexpr std::size_t min_part = std::size_t{1} << 20, align = 24;
  std::size_t parts = threads > 1 ? static_cast<std::size_t>(threads) : 1;
  parts = std::min(parts, std::max<std::size_t>(1, m * n * k / min_part));
  parts = std::min(parts, (m + align - 1) / align);
  if (parts <= 1) {
    run_rows(0, m);
    return true;
  }
  const std::size_t chunk = ((m + parts - 1) / parts + align - 1) / align * align;
  builtin_gemm_pool().run(parts, [&](std::size_t part) {
    const std::size_t i0 = std::min(m, part * chunk), i1 = std::min(m, i0 + chunk);
    if (i0 < i1) run_rows(i0, i1);
  });
  return true;
#else
  (void)isa, (void)threads, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b,
      (void)beta, (void)c, (void)ep;
  return false;
#endif
}

/// C[m, n] = A B, then the epilogue `ep`, for an indirect A (an implicit im2col): row i of A is
/// `segs` segments of `seg` contiguous floats, segment s starting at ind[i * segs + s]; B is
/// [segs * seg, n] row-major. One thread (callers split rows among threads themselves). The
/// values equal builtin_gemm's on the materialized A bit for bit. Returns false, computing
/// nothing, when `isa` is none or does not run on this CPU.
inline bool builtin_gemm_indirect(gemm_isa isa, std::size_t m, std::size_t n, const float* const* ind,
                                  std::size_t segs, std::size_t seg, const float* b, float* c,
                                  const gemm_epilogue& ep = {}) {
#if defined(QNAS_BUILTIN_GEMM_X86)
  if (isa == gemm_isa::none || !builtin_gemm_supports(isa)) return false;
  const std::size_t k = segs * seg;
  if (m == 0 || n == 0) return true;
  if (k == 0) return false;
  gemm_args g{m, n, k, nullptr, 0, 0, b, n, c, 1.0f, 0.0f};
  g.ind = ind;
  g.seg = seg;
  g.segs = segs;
  const auto rows = isa == gemm_isa::avx512 ? &rows_avx512<a_mode::indirect> : &rows_avx2<a_mode::indirect>;
  const std::size_t slice = builtin_gemm_slice(k);
  for (std::size_t p0 = 0; p0 < k; p0 += slice) {
    gemm_args s = builtin_gemm_slice_args(g, p0, slice, ep);
    s.p0 = p0;
    rows(s, 0, m);
  }
  return true;
#else
  (void)isa, (void)m, (void)n, (void)ind, (void)segs, (void)seg, (void)b, (void)c, (void)ep;
  return false;
#endif
}

}  // namespace qnas::nn::detail
