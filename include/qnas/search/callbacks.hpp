// Runner callbacks, detected at compile time, and the ready-made ones: a progress line and early stopping.
//
// Like ensmallen's callbacks: a callback is any object with some of the member functions below;
// the runner calls the ones that exist and ignores the rest, with no virtual base and no cost for
// the absent ones.
//
//   void on_search_begin(const space_description&, const search_progress&);
//   bool on_trial_end(const trial_record&, const search_progress&);   // or (const trial_record&);
//                                                                     // return true to stop (may return void)
//   void on_search_end(const search_progress&);
//
// on_trial_end is called in trial order on the runner's thread, after the strategy was told,
// so callbacks need no locking. A stop request takes effect at the end of the current batch
// (every trial already evaluated is told and logged), so a stopped search can be resumed into
// the same sequence as an uninterrupted one.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

#include "qnas/search/evaluator.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// Where a search stands; handed to every callback.
struct search_progress {
  std::size_t trials = 0;       ///< completed (including rejected)
  std::size_t rejected = 0;     ///< rejected by a hard constraint, never trained
  std::size_t max_trials = 0;   ///< the trial budget
  double elapsed_s = 0;         ///< wall time so far, over all sessions of a resumed search
  double time_budget_s = 0;     ///< 0 = none
  std::optional<double> best_reward;      ///< best reward of a trained trial so far
  std::optional<std::size_t> best_trial;  ///< its trial number
  std::size_t session_trials = 0;         ///< completed in this session (rate is over these)
  double session_s = 0;                   ///< wall time of this session

  /// Trials per second in this session (0 before the first trial).
  [[nodiscard]] double rate() const noexcept { return session_s > 0 ? session_trials / session_s : 0.0; }
  /// Estimated seconds left: the sooner of the trial budget at the current rate and the time budget.
  [[nodiscard]] double eta_s() const noexcept {
    double eta = rate() > 0 ? (max_trials > trials ? (max_trials - trials) / rate() : 0.0)
                            : std::numeric_limits<double>::infinity();
    if (time_budget_s > 0) eta = std::min(eta, std::max(0.0, time_budget_s - elapsed_s));
    return eta;
  }
};

namespace detail {
template <class C>
void call_search_begin(C& c, const space_description& s, const search_progress& p) {
  if constexpr (requires { c.on_search_begin(s, p); }) c.on_search_begin(s, p);
}
/// Calls on_trial_end if present; true when the callback asks to stop.
template <class C>
bool call_trial_end(C& c, const trial_record& r, const search_progress& p) {
  if constexpr (requires { c.on_trial_end(r, p); }) {
    if constexpr (std::is_void_v<decltype(c.on_trial_end(r, p))>) {
      c.on_trial_end(r, p);
      return false;
    } else {
      return static_cast<bool>(c.on_trial_end(r, p));
    }
  } else if constexpr (requires { c.on_trial_end(r); }) {
    if constexpr (std::is_void_v<decltype(c.on_trial_end(r))>) {
      c.on_trial_end(r);
      return false;
    } else {
      return static_cast<bool>(c.on_trial_end(r));
    }
  } else {
    return false;
  }
}
template <class C>
void call_search_end(C& c, const search_progress& p) {
  if constexpr (requires { c.on_search_end(p); }) c.on_search_end(p);
}
}  // namespace detail

/// A runner callback: an object with at least one of the members above (the runner calls those
/// it has). runner::run checks each callback with this concept.
template <class C>
concept search_callback =
    requires(C& c, const space_description& s, const search_progress& p) { c.on_search_begin(s, p); } ||
    requires(C& c, const trial_record& r, const search_progress& p) { c.on_trial_end(r, p); } ||
    requires(C& c, const trial_record& r) { c.on_trial_end(r); } ||
    requires(C& c, const search_progress& p) { c.on_search_end(p); };

namespace detail {
template <class C>
inline constexpr bool is_callback_v = search_callback<C>;
}  // namespace detail

/// Prints one progress line every `every` trials and at the end:
///   "trial 17/30  rejected 2  3.1 trials/s  best 0.8123 (trial 9)  ETA 4.2 s"
struct progress_printer {
  std::ostream* out = nullptr;  ///< nullptr: print nothing
  std::size_t every = 10;

  static std::string line(const search_progress& p) {
    char buf[256];
    char best[64] = "best -";
    if (p.best_reward) std::snprintf(best, sizeof best, "best %.6g (trial %zu)", *p.best_reward, *p.best_trial);
    const double eta = p.eta_s();
    char eta_s[32] = "ETA -";
    if (std::isfinite(eta)) std::snprintf(eta_s, sizeof eta_s, "ETA %.1f s", eta);
    std::snprintf(buf, sizeof buf, "trial %zu/%zu  rejected %zu  %.2f trials/s  %s  %s", p.trials, p.max_trials,
                  p.rejected, p.rate(), best, eta_s);
    return buf;
  }
  void on_trial_end(const trial_record&, const search_progress& p) const {
    if (out && every > 0 && p.trials % every == 0) *out << line(p) << '\n' << std::flush;
  }
  void on_search_end(const search_progress& p) const {
    if (out) *out << line(p) << "  (done)\n" << std::flush;
  }
};

/// Stops the search when the best reward has not improved by more than `min_delta` for
/// `patience` consecutive completed trials (rejected trials count: they are trials spent).
/// Its count restarts with each session of a resumed search (callbacks are not checkpointed).
struct early_stopping {
  std::size_t patience = 50;
  double min_delta = 0.0;

  explicit early_stopping(std::size_t patience_trials = 50, double min_improvement = 0.0)
      : patience(patience_trials), min_delta(min_improvement) {}

  bool on_trial_end(const trial_record& /*record*/, const search_progress& p) {
    if (p.best_reward && (!best_ || *p.best_reward > *best_ + min_delta)) {
      best_ = p.best_reward;
      since_ = 0;
      return false;
    }
    return ++since_ >= patience;
  }
  [[nodiscard]] std::size_t trials_without_improvement() const noexcept { return since_; }

 private:
  std::optional<double> best_;
  std::size_t since_ = 0;
};

}  // namespace qnas::search
