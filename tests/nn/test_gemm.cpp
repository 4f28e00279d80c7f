// The built-in GEMM kernel (gemm_kernel.hpp) against cblas_sgemm: every instruction set this CPU
// runs, all four transpose cases, tails of rows and columns, reduction slices, alpha/beta (beta =
// 0 must overwrite a NaN-filled C), several threads, and the switch that sends GEMMs to the BLAS.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "qnas/nn/blas.hpp"

using namespace qnas::nn;

namespace {

struct gemm_case {
  bool trans_a, trans_b;
  std::size_t m, n, k;
  float alpha, beta;
};

std::string describe(const gemm_case& g) {
  return std::string(g.trans_a ? "T" : "N") + (g.trans_b ? "T" : "N") + " m=" + std::to_string(g.m) +
         " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) + " alpha=" + std::to_string(g.alpha) +
         " beta=" + std::to_string(g.beta);
}

constexpr std::size_t guard = 37;  // floats after C that no GEMM may write (masked tail stores)
constexpr float sentinel = -12345.0f;

struct operands {
  std::vector<float> a, b, c0;
};

operands make_operands(const gemm_case& g, std::mt19937& e) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  operands o;
  o.a.resize(g.m * g.k);
  o.b.resize(g.k * g.n);
  o.c0.resize(g.m * g.n);
  for (auto& v : o.a) v = u(e);
  for (auto& v : o.b) v = u(e);
  // beta == 0: C holds garbage (NaN) that must be overwritten, never read.
  for (auto& v : o.c0) v = g.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : u(e);
  return o;
}

/// C with guard floats after it, all set to the sentinel first.
std::vector<float> with_guard(const std::vector<float>& c) {
  std::vector<float> out(c);
  out.resize(c.size() + guard, sentinel);
  return out;
}

/// Checks `got` against cblas_sgemm within the rounding bound of a length-k dot product in any
/// summation order: |error| <= 2 (k + 2) eps (|alpha| sum_p |a_ip b_pj| + |beta c_ij|), for each
/// result twice (the BLAS's and the kernel's), and that the guard after C is untouched.
void check_against_blas(const gemm_case& g, const operands& o, const std::vector<float>& got) {
  std::vector<float> want(o.c0);
  detail::blas_gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(), o.b.data(), g.beta, want.data());
  const double eps = std::numeric_limits<float>::epsilon();
  std::size_t bad = 0;
  std::string first;
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) {
      double mag = 0.0;
      for (std::size_t p = 0; p < g.k; ++p) {
        const double aip = g.trans_a ? o.a[p * g.m + i] : o.a[i * g.k + p];
        const double bpj = g.trans_b ? o.b[j * g.k + p] : o.b[p * g.n + j];
        mag += std::fabs(aip * bpj);
      }
      const double c = g.beta == 0.0f ? 0.0 : static_cast<double>(o.c0[i * g.n + j]);
      const double bound = 4.0 * static_cast<double>(g.k + 2) * eps * (std::fabs(g.alpha) * mag + std::fabs(g.beta * c)) +
                           std::numeric_limits<float>::min();
      const float x = got[i * g.n + j], y = want[i * g.n + j];
      if (!(std::fabs(static_cast<double>(x) - y) <= bound)) {
        if (bad++ == 0)
          first = "C[" + std::to_string(i) + "," + std::to_string(j) + "] = " + std::to_string(x) + ", BLAS " +
                  std::to_string(y) + ", bound " + std::to_string(bound);
      }
    }
  INFO(describe(g));
  INFO(first);
  CHECK(bad == 0);
  std::size_t touched = 0;
  for (std::size_t i = 0; i < guard; ++i) touched += got[g.m * g.n + i] != sentinel;
  CHECK(touched == 0);
}

/// The instruction sets of the built-in kernel this CPU runs.
std::vector<gemm_isa> runnable_isas() {
  std::vector<gemm_isa> out;
  for (gemm_isa isa : {gemm_isa::avx2, gemm_isa::avx512})
    if (builtin_gemm_supports(isa)) out.push_back(isa);
  return out;
}

constexpr float alphas[] = {1.0f, 1.0f, 0.5f, -2.0f};
constexpr float betas[] = {0.0f, 1.0f, 0.0f, 0.75f};

}  // namespace

TEST_CASE("the built-in GEMM matches cblas_sgemm on small shapes with row and column tails") {
  const auto isas = runnable_isas();
  if (isas.empty()) MESSAGE("no AVX2 / AVX-512 on this CPU: only the BLAS path is tested");
  const std::size_t ms[] = {1, 2, 3, 5, 6, 7, 11, 12, 13, 17, 24, 31, 64, 70};
  const std::size_t ns[] = {1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 70};
  const std::size_t ks[] = {1, 2, 3, 9, 16, 17, 33, 70};
  std::mt19937 e(11);
  std::size_t round = 0;
  for (gemm_isa isa : isas) {
    INFO("isa ", to_string(isa));
    for (int t = 0; t < 4; ++t)
      for (std::size_t m : ms)
        for (std::size_t n : ns)
          for (std::size_t k : ks) {
            const std::size_t ab = round++ % 4;
            const gemm_case g{(t & 1) != 0, (t & 2) != 0, m, n, k, alphas[ab], betas[ab]};
            const operands o = make_operands(g, e);
            auto c = with_guard(o.c0);
            REQUIRE(detail::builtin_gemm(isa, 1, g.trans_a, g.trans_b, m, n, k, g.alpha, o.a.data(), o.b.data(),
                                         g.beta, c.data()));
            check_against_blas(g, o, c);
          }
  }
}

TEST_CASE("the built-in GEMM matches cblas_sgemm on the reference CNN's shapes and long reductions") {
  // Forward (NN), input gradients (NT) and weight gradients (TN) of conv 3x3/2 16-32-64 and
  // dense 10 at batch 64; then reductions over several slices of k (> 384) and wider C.
  const std::vector<gemm_case> shapes = {
      {false, false, 12544, 16, 9, 1.0f, 1.0f},  {false, false, 3136, 32, 144, 1.0f, 1.0f},
      {false, false, 1024, 64, 288, 1.0f, 1.0f}, {false, false, 64, 10, 1024, 1.0f, 1.0f},
      {false, true, 12544, 9, 16, 1.0f, 0.0f},   {false, true, 3136, 144, 32, 1.0f, 0.0f},
      {false, true, 1024, 288, 64, 1.0f, 0.0f},  {false, true, 64, 1024, 10, 1.0f, 0.0f},
      {true, false, 9, 16, 12544, 1.0f, 1.0f},   {true, false, 144, 32, 3136, 1.0f, 0.0f},
      {true, false, 288, 64, 1024, 1.0f, 1.0f},  {true, false, 1024, 10, 64, 1.0f, 0.0f},
      {false, false, 50, 130, 385, 0.5f, 0.25f}, {true, true, 70, 200, 1000, -1.0f, 0.0f},
      {false, false, 100, 257, 769, 1.0f, 1.0f},
  };
  std::mt19937 e(12);
  for (gemm_isa isa : runnable_isas())
    for (const auto& g : shapes)
      for (int threads : {1, 2}) {
        INFO("isa ", to_string(isa), ", threads ", threads);
        const operands o = make_operands(g, e);
        auto c = with_guard(o.c0);
        REQUIRE(detail::builtin_gemm(isa, threads, g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(),
                                     o.b.data(), g.beta, c.data()));
        check_against_blas(g, o, c);
      }
}

TEST_CASE("the built-in GEMM gives the same bits on any number of threads") {
  std::mt19937 e(13);
  for (gemm_isa isa : runnable_isas()) {
    const gemm_case g{false, false, 3136, 32, 144, 1.0f, 1.0f};
    const operands o = make_operands(g, e);
    auto one = o.c0, two = o.c0, three = o.c0;
    detail::builtin_gemm(isa, 1, false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, one.data());
    detail::builtin_gemm(isa, 2, false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, two.data());
    detail::builtin_gemm(isa, 3, false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, three.data());
    CHECK(one == two);
    CHECK(one == three);
  }
}

TEST_CASE("GEMMs from several threads at once share the helper threads safely") {
  const auto isas = runnable_isas();
  if (isas.empty()) return;
  const gemm_case g{false, false, 1024, 64, 288, 1.0f, 0.0f};
  std::mt19937 e(14);
  std::vector<operands> ops;
  for (int t = 0; t < 4; ++t) ops.push_back(make_operands(g, e));
  std::vector<std::vector<float>> out(4, std::vector<float>(g.m * g.n));
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int r = 0; r < 5; ++r)
        detail::builtin_gemm(isas.back(), 2, false, false, g.m, g.n, g.k, 1.0f, ops[t].a.data(), ops[t].b.data(),
                             0.0f, out[t].data());
    });
  for (auto& c : callers) c.join();
  for (int t = 0; t < 4; ++t) {
    auto c = with_guard(out[t]);
    check_against_blas(g, ops[t], c);
  }
}

TEST_CASE("detail::gemm: the switch, the fallback and the degenerate cases") {
  std::mt19937 e(15);
  const gemm_case g{false, false, 3136, 32, 144, 1.0f, 1.0f};
  const operands o = make_operands(g, e);
  std::vector<float> blas(o.c0), off(o.c0), on(o.c0);
  detail::blas_gemm(false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, blas.data());

  REQUIRE(builtin_gemm_enabled());  // on by default (QNAS_BUILTIN_GEMM unset in the tests)
  set_builtin_gemm(false);
  CHECK_FALSE(builtin_gemm_enabled());
  detail::gemm(false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, off.data());
  CHECK(off == blas);  // switched off, detail::gemm is cblas_sgemm exactly
  set_builtin_gemm(true);
  CHECK(builtin_gemm_enabled());
  detail::gemm(false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(), 1.0f, on.data());
  on.resize(on.size() + guard, sentinel);
  check_against_blas(g, o, on);

  // gemm_isa::none (and an instruction set the CPU lacks) computes nothing and says so.
  std::vector<float> c(o.c0);
  CHECK_FALSE(detail::builtin_gemm(gemm_isa::none, 1, false, false, g.m, g.n, g.k, 1.0f, o.a.data(), o.b.data(),
                                   1.0f, c.data()));
  CHECK(c == o.c0);
  if (!builtin_gemm_supports(gemm_isa::avx512))
    CHECK_FALSE(detail::builtin_gemm(gemm_isa::avx512, 1, false, false, g.m, g.n, g.k, 1.0f, o.a.data(),
                                     o.b.data(), 1.0f, c.data()));
  const std::string in_use =
      std::string("built-in GEMM on this CPU: ") + to_string(builtin_gemm_isa()) + "; BLAS: " + blas_core();
  MESSAGE(in_use);

  // alpha == 0 or k == 0: the kernel declines, and detail::gemm leaves beta * C (BLAS semantics:
  // A and B are not read, so NaN in them does not spread).
  std::vector<float> a_nan(o.a.size(), std::numeric_limits<float>::quiet_NaN());
  for (gemm_isa isa : runnable_isas()) {
    CHECK_FALSE(detail::builtin_gemm(isa, 1, false, false, g.m, g.n, g.k, 0.0f, a_nan.data(), o.b.data(), 1.0f,
                                     c.data()));
    CHECK_FALSE(detail::builtin_gemm(isa, 1, false, false, g.m, g.n, 0, 1.0f, o.a.data(), o.b.data(), 1.0f,
                                     c.data()));
  }
  std::vector<float> half(o.c0);
  detail::gemm(false, false, g.m, g.n, g.k, 0.0f, a_nan.data(), o.b.data(), 0.5f, half.data());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < half.size(); ++i) wrong += half[i] != 0.5f * o.c0[i];
  CHECK(wrong == 0);
  std::vector<float> zeroed(o.c0.size(), std::numeric_limits<float>::quiet_NaN());
  detail::gemm(false, false, g.m, g.n, 0, 1.0f, o.a.data(), o.b.data(), 0.0f, zeroed.data());
  std::size_t nonzero = 0;
  for (float v : zeroed) nonzero += v != 0.0f;
  CHECK(nonzero == 0);
}

TEST_CASE("builtin_gemm_pays: every shape with a generic BLAS, narrow or short products otherwise") {
  CHECK(detail::builtin_gemm_pays(false, false, 512, 512, 512, true));
  CHECK(detail::builtin_gemm_pays(false, false, 3136, 32, 144, false));
  CHECK(detail::builtin_gemm_pays(false, true, 3136, 144, 32, false));
  CHECK(detail::builtin_gemm_pays(true, false, 144, 32, 3136, false));
  CHECK_FALSE(detail::builtin_gemm_pays(false, false, 512, 512, 512, false));
  CHECK_FALSE(detail::builtin_gemm_pays(true, false, 576, 128, 4096, false));
  CHECK_FALSE(detail::builtin_gemm_pays(false, false, 0, 16, 9, true));
}

TEST_CASE("the GEMM epilogue (bias, ReLU) equals a broadcast bias with beta = 1 and a ReLU pass, bit for bit") {
  // Every path: the built-in kernel of each instruction set (k over one and several reduction
  // slices, column tails) and the BLAS fallback of detail::gemm.
  const std::vector<gemm_case> shapes = {{false, false, 37, 16, 9, 1.0f, 0.0f},  {false, false, 70, 70, 144, 1.0f, 0.0f},
                                         {false, false, 13, 33, 385, 1.0f, 0.0f}, {true, false, 24, 10, 50, 0.5f, 0.0f},
                                         {false, true, 19, 65, 800, 1.0f, 0.0f}};
  std::mt19937 e(16);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const auto& g : shapes)
    for (bool relu : {false, true}) {
      INFO(describe(g), relu ? " + relu" : "");
      const operands o = make_operands(g, e);
      std::vector<float> bias(g.n);
      for (float& v : bias) v = u(e);
      const detail::gemm_epilogue ep{bias.data(), relu};
      auto reference = [&](gemm_isa isa) {
        std::vector<float> c(g.m * g.n);
        detail::broadcast_rows(bias.data(), g.m, g.n, c.data());
        if (isa == gemm_isa::none)
          detail::blas_gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(), o.b.data(), 1.0f, c.data());
        else
          REQUIRE(detail::builtin_gemm(isa, 1, g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(), o.b.data(),
                                       1.0f, c.data()));
        if (relu)
          for (float& v : c) v = v > 0.0f ? v : 0.0f;
        return c;
      };
      for (gemm_isa isa : runnable_isas())
        for (int threads : {1, 2}) {
          INFO("isa ", to_string(isa), ", threads ", threads);
          auto c = with_guard(o.c0);  // NaN: beta == 0 must not read C
          REQUIRE(detail::builtin_gemm(isa, threads, g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(),
                                       o.b.data(), 0.0f, c.data(), ep));
          const auto want = reference(isa);
          CHECK(std::equal(want.begin(), want.end(), c.begin()));
          CHECK(std::count(c.begin() + static_cast<std::ptrdiff_t>(want.size()), c.end(), sentinel) == guard);
        }
      set_builtin_gemm(false);
      std::vector<float> c(o.c0);
      detail::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, o.a.data(), o.b.data(), 0.0f, c.data(), ep);
      set_builtin_gemm(true);
      CHECK(c == reference(gemm_isa::none));
    }
}

TEST_CASE("the indirect GEMM (rows of A as segment pointers) equals the GEMM on the materialized A, bit for bit") {
  // Segments of 3, 16 and 100 floats; k from one slice to several, with slice boundaries inside
  // segments (k = 700: slices of 350 over segments of 100).
  struct shape {
    std::size_t m, n, segs, seg;
  };
  const shape shapes[] = {{37, 16, 3, 3}, {50, 32, 3, 16}, {13, 70, 9, 16}, {29, 65, 7, 100}, {12, 5, 1, 1}};
  std::mt19937 e(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const auto& s : shapes)
    for (gemm_isa isa : runnable_isas())
      for (bool relu : {false, true}) {
        const std::size_t k = s.segs * s.seg;
        INFO("isa ", to_string(isa), " m=", s.m, " n=", s.n, " segments ", s.segs, " x ", s.seg, relu ? " + relu" : "");
        // A pool of floats that the segments point into, in shuffled order, some shared.
        std::vector<float> pool((s.m * s.segs / 2 + 1) * s.seg);
        for (float& v : pool) v = u(e);
        std::vector<const float*> ind(s.m * s.segs);
        std::vector<float> a(s.m * k);
        std::uniform_int_distribution<std::size_t> pick(0, pool.size() / s.seg - 1);
        for (std::size_t i = 0; i < s.m; ++i)
          for (std::size_t t = 0; t < s.segs; ++t) {
            ind[i * s.segs + t] = pool.data() + pick(e) * s.seg;
            std::copy(ind[i * s.segs + t], ind[i * s.segs + t] + s.seg, a.begin() + static_cast<std::ptrdiff_t>(i * k + t * s.seg));
          }
        std::vector<float> b(k * s.n), bias(s.n);
        for (float& v : b) v = u(e);
        for (float& v : bias) v = u(e);
        const detail::gemm_epilogue ep{bias.data(), relu};
        std::vector<float> want(s.m * s.n, std::numeric_limits<float>::quiet_NaN());
        REQUIRE(detail::builtin_gemm(isa, 1, false, false, s.m, s.n, k, 1.0f, a.data(), b.data(), 0.0f, want.data(), ep));
        auto got = with_guard(std::vector<float>(s.m * s.n, std::numeric_limits<float>::quiet_NaN()));
        REQUIRE(detail::builtin_gemm_indirect(isa, s.m, s.n, ind.data(), s.segs, s.seg, b.data(), got.data(), ep));
        CHECK(std::equal(want.begin(), want.end(), got.begin()));
        CHECK(std::count(got.begin() + static_cast<std::ptrdiff_t>(want.size()), got.end(), sentinel) == guard);
      }
  std::vector<float> c(4);
  const float* rows[2] = {c.data(), c.data()};
  CHECK_FALSE(detail::builtin_gemm_indirect(gemm_isa::none, 2, 1, rows, 1, 2, c.data(), c.data()));
}
