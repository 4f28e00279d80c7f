// Learning-rate schedules: functions from the (0-based) optimizer step to a learning rate.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <functional>
#include <numbers>
#include <type_traits>

#include "qnas/core/diagnostics.hpp"

namespace qnas::train {

/// Anything callable as `float(std::size_t step)`; step 0 is the first update.
template <class S>
concept lr_schedule = std::regular_invocable<const S&, std::size_t> &&
                      std::convertible_to<std::invoke_result_t<const S&, std::size_t>, float>;

/// The conformance check of a learning-rate schedule: the first error names the rule S breaks.
template <class S>
consteval bool check_lr_schedule() {
  static_assert(std::regular_invocable<const S&, std::size_t>,
                "qnas: a learning-rate schedule needs `float operator()(std::size_t step) const`");
  if constexpr (std::regular_invocable<const S&, std::size_t>)
    static_assert(std::convertible_to<std::invoke_result_t<const S&, std::size_t>, float>,
                  "qnas: a learning-rate schedule's operator()(std::size_t step) must return a number (float)");
  return true;
}

/// A schedule as a value, for trainers that choose one at run time.
using schedule = std::function<float(std::size_t)>;

/// The same rate at every step.
struct constant_schedule {
  float value = 0.01f;
  [[nodiscard]] float operator()(std::size_t) const noexcept { return value; }
};

/// Optional linear warm-up, then cosine decay (Loshchilov & Hutter, SGDR, without restarts):
///
///   step < warmup:          base * (step + 1) / warmup
///   warmup <= step < total: final + (base - final) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
///   step >= total:          final
///
/// The warm-up reaches `base` at its last step, so no update is taken at rate 0.
struct cosine_schedule {
  float base = 0.01f;
  std::size_t total_steps = 1000;
  std::size_t warmup_steps = 0;
  float final_value = 0.0f;

  [[nodiscard]] float operator()(std::size_t step) const {
    if (warmup_steps > total_steps)
      throw invalid_argument("qnas::train::cosine_schedule",
                             qnas::detail::cat("warmup_steps ", warmup_steps, " exceeds total_steps ", total_steps));
    if (step < warmup_steps)
      return base * static_cast<float>(static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
    if (step >= total_steps) return final_value;
    const double frac = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
    return static_cast<float>(final_value + (static_cast<double>(base) - final_value) *
                                                0.5 * (1.0 + std::cos(std::numbers::pi * frac)));
  }
};

/// Piecewise constant: base * gamma^floor(step / step_size).
struct step_schedule {
  float base = 0.01f;
  std::size_t step_size = 100;
  float gamma = 0.1f;

  [[nodiscard]] float operator()(std::size_t step) const {
    if (step_size == 0) throw invalid_argument("qnas::train::step_schedule", "step_size must be > 0");
    return static_cast<float>(static_cast<double>(base) *
                              std::pow(static_cast<double>(gamma), static_cast<double>(step / step_size)));
  }
};

/// Smooth exponential change: base * rate^(step / period). With rate > 1 this is the
/// exponentially increasing policy learning rate of TuNAS; with rate < 1 a classic decay.
struct exponential_schedule {
  float base = 0.01f;
  float rate = 0.5f;
  std::size_t period = 1000;

  [[nodiscard]] float operator()(std::size_t step) const {
    if (period == 0) throw invalid_argument("qnas::train::exponential_schedule", "period must be > 0");
    return static_cast<float>(static_cast<double>(base) *
                              std::pow(static_cast<double>(rate), static_cast<double>(step) / static_cast<double>(period)));
  }
};

}  // namespace qnas::train
