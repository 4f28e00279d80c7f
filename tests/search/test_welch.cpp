// Welch's t-test and the functions under it, checked against closed forms and published
// Student-t critical values.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "qnas/search/welch_test.hpp"

using namespace qnas;
using namespace qnas::search;

TEST_CASE("the regularized incomplete beta function matches its closed forms") {
  for (double x : {0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    CAPTURE(x);
    CHECK(regularized_incomplete_beta(1, 1, x) == doctest::Approx(x).epsilon(1e-13));
    CHECK(regularized_incomplete_beta(3.5, 1, x) == doctest::Approx(std::pow(x, 3.5)).epsilon(1e-13));
    CHECK(regularized_incomplete_beta(1, 2.5, x) == doctest::Approx(1 - std::pow(1 - x, 2.5)).epsilon(1e-13));
    // Symmetry: I_x(a, b) = 1 - I_{1-x}(b, a), across the switch of continued fractions.
    CHECK(regularized_incomplete_beta(7.3, 0.5, x) ==
          doctest::Approx(1 - regularized_incomplete_beta(0.5, 7.3, 1 - x)).epsilon(1e-13));
  }
  CHECK(regularized_incomplete_beta(50, 50, 0.5) == doctest::Approx(0.5).epsilon(1e-13));
  CHECK_THROWS_AS((void)regularized_incomplete_beta(0, 1, 0.5), qnas::invalid_argument);
  CHECK_THROWS_AS((void)regularized_incomplete_beta(1, 1, 1.5), qnas::invalid_argument);
  CHECK_THROWS_AS((void)regularized_incomplete_beta(1, 1, std::nan("")), qnas::invalid_argument);
}

TEST_CASE("Student's t CDF matches closed forms and published critical values") {
  for (double t : {-30.0, -2.0, -0.4, 0.0, 0.7, 3.0, 12.0}) {
    CAPTURE(t);
    // df = 1 is the Cauchy distribution, df = 2 has an algebraic CDF.
    CHECK(student_t_cdf(t, 1) == doctest::Approx(0.5 + std::atan(t) / std::numbers::pi).epsilon(1e-13));
    CHECK(student_t_cdf(t, 2) == doctest::Approx(0.5 + t / (2 * std::sqrt(2 + t * t))).epsilon(1e-13));
  }
  // Two-sided 5 % and 1 % critical values (any Student-t table).
  CHECK(student_t_cdf(2.228139, 10) == doctest::Approx(0.975).epsilon(1e-6));
  CHECK(student_t_cdf(2.749996, 30) == doctest::Approx(0.995).epsilon(1e-6));
  CHECK(student_t_cdf(1.983972, 100) == doctest::Approx(0.975).epsilon(1e-6));
  CHECK(student_t_cdf(-2.626405, 100) == doctest::Approx(0.005).epsilon(1e-5));
  CHECK(student_t_cdf(INFINITY, 3) == 1.0);
  CHECK_THROWS_AS((void)student_t_cdf(1, 0), qnas::invalid_argument);
}

TEST_CASE("Welch's t-test: statistic, Welch-Satterthwaite df and p") {
  const std::vector<double> a{1, 2, 3, 4, 5}, b{2, 4, 6, 8, 10};
  const auto r = welch_t_test(a, b);
  // Variances 2.5 and 10: se^2 = 0.5 + 2 = 2.5, t = -3 / sqrt(2.5), df = 6.25 / (0.25/4 + 4/4).
  CHECK(r.mean_a == 3);
  CHECK(r.mean_b == 6);
  CHECK(r.t == doctest::Approx(-3 / std::sqrt(2.5)).epsilon(1e-14));
  CHECK(r.df == doctest::Approx(6.25 / 1.0625).epsilon(1e-14));
  CHECK(r.p_two_sided == doctest::Approx(2 * student_t_cdf(r.t, r.df)).epsilon(1e-13));
  CHECK(r.p_two_sided > 0.1);
  CHECK(r.p_two_sided < 0.12);
  // Swapping the samples flips t and keeps p.
  const auto s = welch_t_test(b, a);
  CHECK(s.t == doctest::Approx(-r.t).epsilon(1e-14));
  CHECK(s.p_two_sided == doctest::Approx(r.p_two_sided).epsilon(1e-14));
  // Constant samples: p is 0 or 1, t infinite or 0.
  const std::vector<double> c{2, 2, 2}, d{3, 3};
  CHECK(welch_t_test(c, d).p_two_sided == 0.0);
  CHECK(std::isinf(welch_t_test(c, d).t));
  CHECK(welch_t_test(c, c).p_two_sided == 1.0);
  CHECK_THROWS_AS((void)welch_t_test(std::vector<double>{1}, d), qnas::invalid_argument);
  CHECK_THROWS_AS((void)welch_t_test(std::vector<double>{1, NAN}, d), qnas::invalid_argument);
}
