// minifloat: the number_format laws (qnas::testing::check_format) for every alias and for
// combinations of the special-value, overflow, subnormal and rounding policies.
#include <doctest/doctest.h>

#include <type_traits>

#include "qnas/formats/minifloat.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
template <class F>
void check_laws() {
  const auto report = testing::check_format<F>();
  CHECK_MESSAGE(static_cast<bool>(report), report);
}
}  // namespace

TEST_CASE("minifloat aliases obey the format laws") {
  check_laws<fp32>();
  check_laws<fp16>();
  check_laws<bf16>();
  check_laws<fp8_e4m3>();
  check_laws<fp8_e5m2>();
  check_laws<fp6_e3m2>();
  check_laws<fp6_e2m3>();
  check_laws<fp4_e2m1>();
}

TEST_CASE("minifloat policy combinations obey the format laws") {
  check_laws<minifloat<4, 3, specials_fn, to_nan>>();
  check_laws<minifloat<5, 2>>();                                    // to_inf
  check_laws<minifloat<5, 2, to_nan>>();
  check_laws<minifloat<4, 3, specials_fn, flush_subnormals>>();
  check_laws<minifloat<8, 7, flush_subnormals>>();                  // bf16 without subnormals
  check_laws<minifloat<3, 2, specials_finite, nearest_away>>();
  check_laws<minifloat<4, 3, specials_fn, toward_zero>>();
  check_laws<minifloat<5, 2, toward_zero>>();                       // to_inf, but truncating
  check_laws<minifloat<4, 3, specials_fn, stochastic>>();
  check_laws<minifloat<2, 1, specials_finite, flush_subnormals, nearest_away>>();
  check_laws<minifloat<2, 0>>();                                    // IEEE-like with M = 0: Inf, no NaN
  check_laws<minifloat<4, 0, specials_fn>>();                       // powers of two only
  check_laws<minifloat<1, 2, specials_finite>>();                   // E = 1
  check_laws<minifloat<6, 9, specials_fn, saturate>>();
}
