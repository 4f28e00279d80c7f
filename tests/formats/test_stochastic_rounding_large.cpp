// Stochastic rounding where a value's float spacing nears 1 (|v| in [2^20, 2^23) after division
// by the step): integer-valued inputs stay put, P(round up) is the fractional part, and the
// draws are the ones earlier versions consumed. Earlier versions computed floor(v + u) in
// float; v + u rounds to v's spacing there, which moved integers up and biased the fractions.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {

/// An engine that returns a given sequence of 24-bit draws (u = k * 2^-24) and counts calls.
struct scripted_engine {
  using result_type = std::uint32_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return 0xFFFFFFu; }
  std::vector<result_type> draws;
  std::size_t calls = 0;
  result_type operator()() { return draws[calls++ % draws.size()]; }
};

constexpr std::uint32_t draw_of(double u) { return static_cast<std::uint32_t>(u * 16777216.0); }

/// The fraction of n stochastic roundings of v that land on `up`.
double fraction_up(float v, float up, int n, std::uint32_t seed) {
  std::mt19937 eng(seed);
  stochastic_rounder<std::mt19937> r(eng);
  int ups = 0;
  for (int i = 0; i < n; ++i) {
    const float q = r(v);
    REQUIRE((q == up || q == up - 1.0f));
    ups += q == up;
  }
  return static_cast<double>(ups) / n;
}

template <class F>
void check_idempotent(float lo, float hi, std::uint32_t seed) {
  std::mt19937 eng(seed);
  auto round = detail::make_rounder<F>(eng);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int i = 0; i < 20000; ++i) {
    const float x = (i % 2 ? 1.0f : -1.0f) * dist(eng);
    const float q = F::quantize_one(x, round);
    const float qq = F::quantize_one(q, round);
    if (qq != q) {
      FAIL_CHECK(F::name(), ": q(", x, ") = ", q, " but q(q(x)) = ", qq);
      return;
    }
  }
}

}  // namespace

TEST_CASE("stochastic rounding leaves integer-valued inputs unchanged near 2^23") {
  std::mt19937 eng(11);
  stochastic_rounder<std::mt19937> r(eng);
  // every spacing from 2^-3 to 2^0 below 2^23, and both signs; the old rounder moved an integer
  // of [2^22, 2^23) up with probability 1/4 (u >= 3/4 made v + u round to v + 1)
  for (float base : {1048576.0f, 2097152.0f, 4194304.0f, 8388607.0f - 1000.0f}) {
    for (int k = 0; k < 1000; ++k) {
      const float v = base + static_cast<float>(k);
      REQUIRE(r(v) == v);
      REQUIRE(r(-v) == -v);
    }
  }
  for (float v : {8388608.0f, 2147483648.0f, -2147483648.0f, 16777217.0f - 1.0f})
    CHECK(r(v) == v);
}

TEST_CASE("stochastic rounding goes up exactly when the draw reaches 1 - frac(v)") {
  // u = k * 2^-24. For v >= 0: up iff u >= 1 - frac(v); for v < 0, up (toward +inf) iff
  // u >= frac(|v|). Both are the rule floor(v + u) follows in exact arithmetic.
  scripted_engine eng;
  stochastic_rounder<scripted_engine> r(eng);
  const float v = 4194304.5f;  // 2^22 + 1/2: spacing 1/2
  eng.draws = {draw_of(0.5) - 1, draw_of(0.5), draw_of(0.75), draw_of(0.0)};
  CHECK(r(v) == 4194304.0f);  // u = 1/2 - 2^-24: below 1 - 1/2
  CHECK(r(v) == 4194305.0f);  // u = 1/2
  CHECK(r(v) == 4194305.0f);  // u = 3/4
  CHECK(r(v) == 4194304.0f);  // u = 0
  eng.draws = {draw_of(0.25) - 1, draw_of(0.25), draw_of(0.9)};
  eng.calls = 0;
  const float w = -2097152.25f;  // -(2^21 + 1/4): floor -2^21 - 1, frac(v) = 3/4
  CHECK(r(w) == -2097153.0f);  // u < 1/4: stays at the floor
  CHECK(r(w) == -2097152.0f);  // u = 1/4 = 1 - 3/4: up
  CHECK(r(w) == -2097152.0f);
  // small values keep the old results (v + u was exact there)
  eng.draws = {draw_of(0.7) - 1};
  eng.calls = 0;
  CHECK(r(0.3f) == 0.0f);  // u just below 1 - 0.3 (0.3f is a little above 0.3, 0.7 * 2^24 is not an integer)
  eng.draws = {draw_of(0.75)};
  eng.calls = 0;
  CHECK(r(0.25f) == 1.0f);
  CHECK(r(-0.25f) == 0.0f);
  CHECK(!std::signbit(r(-0.25f)));  // +0, as floor(v + u) gave
  // one engine call per value, integer or not, as before
  eng.calls = 0;
  for (float x : {1.0f, 0.5f, -3.0f, 8388608.0f, 1e30f, -0.0f}) (void)r(x);
  CHECK(eng.calls == 6);
}

TEST_CASE("stochastic rounding is unbiased where the float spacing nears 1") {
  // frac 1/2 at spacing 1/2 (the old rounder went up 3/4 of the time), frac 1/4 at spacing 1/4
  // (old: 3/8), frac 3/4 at spacing 1/4 (old: 7/8), negatives mirrored; and small values
  constexpr int n = 40000;  // standard error of a fraction <= 0.0025; tolerance 0.015
  CHECK(fraction_up(4194304.5f, 4194305.0f, n, 1) == doctest::Approx(0.5).epsilon(0.03));
  CHECK(fraction_up(2097152.25f, 2097153.0f, n, 2) == doctest::Approx(0.25).epsilon(0.06));
  CHECK(fraction_up(2097152.75f, 2097153.0f, n, 3) == doctest::Approx(0.75).epsilon(0.02));
  CHECK(fraction_up(-4194304.5f, -4194304.0f, n, 4) == doctest::Approx(0.5).epsilon(0.03));
  CHECK(fraction_up(-2097152.25f, -2097152.0f, n, 5) == doctest::Approx(0.75).epsilon(0.02));
  CHECK(fraction_up(8388607.5f, 8388608.0f, n, 6) == doctest::Approx(0.5).epsilon(0.03));
  CHECK(fraction_up(1048576.125f, 1048577.0f, n, 7) == doctest::Approx(0.125).epsilon(0.12));
  CHECK(fraction_up(0.3f, 1.0f, n, 8) == doctest::Approx(0.3).epsilon(0.05));
  CHECK(fraction_up(-0.3f, 0.0f, n, 9) == doctest::Approx(0.7).epsilon(0.025));
}

TEST_CASE("fixed_point<32, 0, stochastic> and fixed_point<24, ...> are idempotent") {
  // fixed_point<32, 0>: v = x * 2^31, so |x| in [2^-9, 2^-8) is |v| in [2^22, 2^23)
  using S32 = fixed_point<32, 0, true, false, stochastic>;
  check_idempotent<S32>(0x1p-11f, 0x1p-8f, 21);
  check_idempotent<S32>(0x1p-8f, 1.0f, 22);  // |v| >= 2^23: already integers
  // fixed_point<24, 0>: v = x * 2^23
  using S24 = fixed_point<24, 0, true, false, stochastic>;
  check_idempotent<S24>(0.125f, 1.0f, 23);
  using S24i = fixed_point<24, 23, true, true, stochastic>;  // integer-valued: v = x
  check_idempotent<S24i>(1048576.0f, 8388607.0f, 24);
  using R32 = fixed_point<32, 32, false, false, stochastic>;  // relu, v = x
  check_idempotent<R32>(2097152.0f, 4294967040.0f, 25);
  // and the whole law set of the conformance kit, which skipped stochastic 32-bit formats
  auto laws = [](auto t) {
    using F = typename decltype(t)::type;
    const auto report = testing::check_format<F>();
    CHECK_MESSAGE(static_cast<bool>(report), report);
  };
  laws(std::type_identity<S32>{});
  laws(std::type_identity<S24>{});
  laws(std::type_identity<fixed_point<31, 7, true, true, stochastic>>{});
}

TEST_CASE("fixed_point<32, 0, stochastic> through quantize(): the mean is the input") {
  // x = (2^22 + 1/2) * 2^-31: halfway between two codes of 23 bits
  using S32 = fixed_point<32, 0, true, false, stochastic>;
  const float x = 4194304.5f * 0x1p-31f;
  xt::xarray<float> in = xt::ones<float>({20000}) * x;
  std::mt19937 eng(31);
  const auto q = quantize<S32>(in, last_axis, eng);
  double ups = 0;
  for (float v : q) {
    REQUIRE((v == 4194304.0f * 0x1p-31f || v == 4194305.0f * 0x1p-31f));
    ups += v == 4194305.0f * 0x1p-31f;
  }
  CHECK(ups / static_cast<double>(q.size()) == doctest::Approx(0.5).epsilon(0.04));
}
