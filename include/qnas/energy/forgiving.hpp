// AutoQKeras' forgiving factor: trades a metric (accuracy) against a cost (energy or bits)
// relative to a reference model (autoqkeras/forgiving_metrics/forgiving_factor.py).
#pragma once

#include <type_traits>

#include "qnas/core/diagnostics.hpp"
#include "qnas/energy/detail/math.hpp"

namespace qnas::energy {

/// Not constexpr on purpose: reaching it at compile time is the error the compiler names.
inline void forgiving_factor_arguments_are_impossible() {}

/// delta = (trial < ref ? delta_p : delta_n) / 100 * ln(ref / trial) / ln(rate) and
/// score = metric * (1 + delta), with ref = reference * stress.
///
/// delta_p: percent of metric granted per `rate`-fold cost reduction; delta_n: percent taken
/// per `rate`-fold increase; stress < 1 moves the reference down, asking for a cheaper model
/// to break even. Note: AutoQKeras multiplies the reference by stress for the "bits" goal
/// but, for the "energy" goal, scales only the value it returns while delta() still uses the
/// unscaled reference, so stress has no effect there. Here stress applies to every goal.
/// Computed in double (AutoQKeras keeps delta_p, delta_n and rate in float32).
struct forgiving_factor {
  double delta_p = 8.0;  ///< percent per rate-fold reduction
  double delta_n = 8.0;  ///< percent per rate-fold increase
  double rate = 2.0;     ///< cost ratio per delta step, > 1
  double stress = 1.0;   ///< reference multiplier, > 0

  /// Throws qnas::invalid_argument when a parameter or cost is impossible.
  constexpr void check(double reference, double trial) const {
    if (!(rate > 1.0) || !(stress > 0.0) || !(reference > 0.0) || !(trial > 0.0)) {
      if (std::is_constant_evaluated()) forgiving_factor_arguments_are_impossible();
      throw invalid_argument("energy::forgiving_factor",
                             qnas::detail::cat("rate = ", rate, " (must be > 1), stress = ", stress,
                                               ", reference = ", reference, ", trial = ", trial,
                                               " (must be > 0)"));
    }
  }
  /// The relative bonus (> 0 when trial is cheaper than the stressed reference).
  [[nodiscard]] constexpr double delta(double reference, double trial) const {
    check(reference, trial);
    const double ref = reference * stress;
    const double d = (trial < ref ? delta_p : delta_n) / 100.0;
    return d * detail::ln(ref / trial) / detail::ln(rate);
  }
  /// metric * (1 + delta).
  [[nodiscard]] constexpr double score(double metric, double reference, double trial) const {
    return metric * (1.0 + delta(reference, trial));
  }
};

}  // namespace qnas::energy
