// Welch's t-test: is one strategy's mean outcome over independent runs different from another's?
//
// Search outcomes (the best reward of a run) have unequal variances across strategies (random
// search spreads more than a converged evolution), so the pooled-variance Student test does not
// apply; Welch's test does (Welch, Biometrika 1947):
//   t  = (mean_a - mean_b) / sqrt(va/na + vb/nb)       va, vb: sample variances (n - 1)
//   df = (va/na + vb/nb)^2 / ((va/na)^2/(na-1) + (vb/nb)^2/(nb-1))   (Welch-Satterthwaite)
//   p  = P(|T_df| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)   (two-sided)
// where I_x(a, b) is the regularized incomplete beta function, computed here by its continued
// fraction (modified Lentz; Numerical Recipes, 3rd ed., section 6.4) with no dependency.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

#include "qnas/core/diagnostics.hpp"

namespace qnas::search {

namespace detail {

/// The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2)).
inline double incomplete_beta_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300, eps = 1e-15;
  constexpr int max_terms = 10000;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= max_terms; ++m) {
    const double m2 = 2.0 * m;
    // Even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    // Odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < eps) return h;
  }
  throw error("qnas::search::regularized_incomplete_beta",
              qnas::detail::cat("the continued fraction did not converge for a = ", a, ", b = ", b, ", x = ", x));
}

}  // namespace detail

/// The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and
/// x in [0, 1]; throws qnas::invalid_argument outside that domain.
inline double regularized_incomplete_beta(double a, double b, double x) {
  constexpr const char* where = "qnas::search::regularized_incomplete_beta";
  if (!(a > 0) || !(b > 0) || !std::isfinite(a) || !std::isfinite(b))
    throw invalid_argument(where, qnas::detail::cat("a and b must be finite and > 0, got ", a, " and ", b));
  if (!(x >= 0 && x <= 1)) throw invalid_argument(where, qnas::detail::cat("x must be in [0, 1], got ", x));
  if (x == 0 || x == 1) return x;
  // x^a (1-x)^b / (a B(a, b)), in logarithms so large a and b do not overflow.
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                                b * std::log1p(-x));
  // The fraction converges quickly only on one side of the mean; use I_x(a,b) = 1 - I_{1-x}(b,a).
  if (x < (a + 1.0) / (a + b + 2.0)) return front * detail::incomplete_beta_fraction(a, b, x) / a;
  return 1.0 - front * detail::incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

/// P(T <= t) for Student's t distribution with df > 0 degrees of freedom (df need not be an
/// integer, as Welch's df is not).
inline double student_t_cdf(double t, double df) {
  if (!(df > 0) || !std::isfinite(df))
    throw invalid_argument("qnas::search::student_t_cdf", qnas::detail::cat("df must be finite and > 0, got ", df));
  if (std::isnan(t)) throw invalid_argument("qnas::search::student_t_cdf", "t is NaN");
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  const double tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));  // P(T > |t|)
  return t > 0 ? 1.0 - tail : tail;
}

/// The outcome of welch_t_test(a, b).
struct welch_result {
  double mean_a = 0, mean_b = 0;
  double sd_a = 0, sd_b = 0;  ///< sample standard deviations (n - 1)
  double t = 0;               ///< (mean_a - mean_b) / standard error; > 0 when a's mean is higher
  double df = 0;              ///< Welch-Satterthwaite degrees of freedom
  double p_two_sided = 1;     ///< P(|T_df| >= |t|) under equal means
};

/// Welch's two-sample t-test of equal means (see the top of this header). Each sample needs at
/// least 2 finite values (qnas::invalid_argument otherwise). When both samples are constant the
/// standard error is 0: t is +-infinity and p = 0 if the means differ, t = 0 and p = 1 if not.
inline welch_result welch_t_test(std::span<const double> a, std::span<const double> b) {
  constexpr const char* where = "qnas::search::welch_t_test";
  if (a.size() < 2 || b.size() < 2)
    throw invalid_argument(where, qnas::detail::cat("each sample needs >= 2 values, got ", a.size(), " and ", b.size()));
  auto moments = [&](std::span<const double> v, double& mean, double& var) {
    mean = 0;
    for (double x : v) {
      if (!std::isfinite(x)) throw invalid_argument(where, qnas::detail::cat("sample value ", x, " is not finite"));
      mean += x;
    }
    mean /= static_cast<double>(v.size());
    var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    var /= static_cast<double>(v.size() - 1);
  };
  welch_result r;
  double va = 0, vb = 0;
  moments(a, r.mean_a, va);
  moments(b, r.mean_b, vb);
  r.sd_a = std::sqrt(va);
  r.sd_b = std::sqrt(vb);
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double sa = va / na, sb = vb / nb, se2 = sa + sb;
  if (se2 == 0) {
    const bool same = r.mean_a == r.mean_b;
    r.t = same ? 0.0 : (r.mean_a > r.mean_b ? 1.0 : -1.0) * std::numeric_limits<double>::infinity();
    r.df = na + nb - 2;
    r.p_two_sided = same ? 1.0 : 0.0;
    return r;
  }
  r.t = (r.mean_a - r.mean_b) / std::sqrt(se2);
  r.df = se2 * se2 / (sa * sa / (na - 1) + sb * sb / (nb - 1));
  r.p_two_sided = regularized_incomplete_beta(r.df / 2.0, 0.5, r.df / (r.df + r.t * r.t));
  return r;
}

}  // namespace qnas::search
