// The search runner: asks in order, evaluates batches in parallel, tells in ask order; logs, checkpoints, budgets, reports.
//
// The runner owns everything a strategy and an evaluator should not care about (DESIGN.md
// rule 3): threads, the JSONL trial log, atomic checkpoints and resume, trial and time budgets,
// hard constraints checked before training, callbacks, the Pareto archive and the final report.
//
// Determinism: a batch of `batch_size` candidates is asked in order, the candidates that pass the
// constraints are evaluated concurrently on up to `threads` std::threads, then their rewards are
// told in ask order. Each evaluation receives a seed that depends on (evaluation_seed, trial)
// only. So for a given strategy seed the trial sequence and every logged value except wall time
// are the same on any number of threads. batch_size, not threads, is what shapes the sequence.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/csv.hpp"
#include "qnas/io/jsonl.hpp"
#include "qnas/io/svg_plot.hpp"
#include "qnas/search/callbacks.hpp"
#include "qnas/search/checkpoint.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/search/parallel.hpp"
#include "qnas/search/pareto.hpp"
#include "qnas/search/stop_signals.hpp"
#include "qnas/search/strategy.hpp"

namespace qnas::search {

/// What the runner does when an evaluator throws.
enum class evaluator_error_policy {
  stop,    ///< rethrow after the batch's other evaluations have finished: the run ends (the default)
  record,  ///< record the trial as failed (trial_record::error), tell the strategy rejected_reward, go on
};

/// Settings of a run. Only batch_size and evaluation_seed shape the trial sequence; the rest
/// (threads, paths, budgets) may change between a run and its resumption.
struct runner_options {
  /// Trial budget (rejected trials count). A fresh search declares it to a budget-aware strategy
  /// (search::expect_trials) whose options leave the budget-dependent values unset; a search you
  /// plan to extend beyond it later should set the strategy's options::expected_trials instead.
  std::size_t max_trials = 100;
  double time_budget_s = 0;         ///< wall-time budget over all sessions, checked between batches; 0 = none
  std::size_t threads = 1;          ///< concurrent evaluations
  std::size_t batch_size = 1;       ///< asks per batch, independent of threads (see the header comment)
  std::uint64_t evaluation_seed = 0;  ///< base of evaluation_context::seed

  std::filesystem::path log_path;         ///< JSONL trial log; empty = none
  std::filesystem::path checkpoint_path;  ///< empty = no checkpoints
  std::size_t checkpoint_every = 10;      ///< write a checkpoint when this many trials passed since the last
  bool resume = false;  ///< continue from checkpoint_path when the file exists (start afresh when it does not)

  /// Cheap estimate (bits, energy, latency, precisions) checked against `constraints` BEFORE
  /// training. Its metrics are also merged into the trial's metrics (the evaluator's win).
  std::function<metrics(const candidate&)> estimate;
  constraint_set constraints;
  /// Reward told to the strategy for a rejected candidate, so RL and evolution learn to avoid
  /// the region; nullopt = do not tell (the strategy never hears of it).
  std::optional<double> rejected_reward = 0.0;

  /// Objectives of the Pareto archive; every trained trial must report these metrics. Empty = no archive.
  std::vector<pareto_axis> pareto_axes = pareto_archive::accuracy_energy();

  /// An evaluator that throws ends the run (stop) or fails only its trial (record). A failed trial
  /// counts against max_trials, is logged and checkpointed with its message, and is told
  /// `rejected_reward` (not told when that is nullopt), as a candidate that cannot be trained.
  evaluator_error_policy on_evaluator_error = evaluator_error_policy::stop;
  /// While the run lasts, the first SIGTERM or SIGINT stops it after the batch in flight, with a
  /// final checkpoint (stop_reason::signal); a second one ends the process at once. See
  /// stop_signals.hpp. false = the signals keep whatever action the program gave them.
  bool stop_on_signals = true;
};

enum class stop_reason { max_trials, time_budget, callback, signal };

constexpr const char* to_string(stop_reason r) noexcept {
  switch (r) {
    case stop_reason::max_trials: return "trial budget reached";
    case stop_reason::time_budget: return "time budget reached";
    case stop_reason::callback: return "stopped by a callback";
    case stop_reason::signal: return "stopped by SIGTERM/SIGINT after the batch in flight";
  }
  return "?";
}

/// For one alternative of one decision: how often trained trials used it and their mean reward.
struct label_stats {
  std::string label;
  std::size_t count = 0;
  double mean_reward = 0;
};
/// Per decision, per alternative (in label order).
struct decision_stats {
  std::string decision;
  std::vector<label_stats> labels;
};

/// Per-decision statistics over the trained (not rejected, rewarded) trials of `history`.
inline std::vector<decision_stats> decision_statistics(const std::vector<trial_record>& history,
                                                       const space_description& space) {
  std::vector<decision_stats> out;
  std::vector<std::vector<double>> sums;
  for (const auto& d : space.decisions()) {
    decision_stats ds{d.name, {}};
    for (const auto& l : d.labels) ds.labels.push_back({l, 0, 0.0});
    out.push_back(std::move(ds));
    sums.emplace_back(d.cardinality, 0.0);
  }
  for (const auto& r : history) {
    if (!r.trained() || !r.reward) continue;
    for (std::size_t i = 0; i < space.num_decisions(); ++i) {
      ++out[i].labels[r.cand[i]].count;
      sums[i][r.cand[i]] += *r.reward;
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t k = 0; k < out[i].labels.size(); ++k)
      if (out[i].labels[k].count) out[i].labels[k].mean_reward = sums[i][k] / out[i].labels[k].count;
  return out;
}

/// Prints the statistics as an aligned table: decision, label, count, mean reward.
inline void print_decision_table(std::ostream& os, const std::vector<decision_stats>& stats) {
  std::size_t wd = 8, wl = 5;
  for (const auto& d : stats) {
    wd = std::max(wd, d.decision.size());
    for (const auto& l : d.labels) wl = std::max(wl, l.label.size());
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-*s  %-*s  %7s  %12s\n", static_cast<int>(wd), "decision", static_cast<int>(wl),
                "label", "count", "mean reward");
  os << buf;
  for (const auto& d : stats)
    for (const auto& l : d.labels) {
      if (l.count)
        std::snprintf(buf, sizeof buf, "%-*s  %-*s  %7zu  %12.6g\n", static_cast<int>(wd), d.decision.c_str(),
                      static_cast<int>(wl), l.label.c_str(), l.count, l.mean_reward);
      else
        std::snprintf(buf, sizeof buf, "%-*s  %-*s  %7zu  %12s\n", static_cast<int>(wd), d.decision.c_str(),
                      static_cast<int>(wl), l.label.c_str(), l.count, "-");
      os << buf;
    }
}

/// What a run returns: the whole history (resumed sessions included), the best trial, the
/// Pareto front and why it stopped.
struct search_result {
  space_description space;
  std::vector<trial_record> history;
  std::optional<std::size_t> best;  ///< index into history of the highest reward among trained trials
  pareto_archive front;       ///< over runner_options::pareto_axes (unused when has_front is false)
  bool has_front = true;      ///< false when the run had no Pareto axes
  std::size_t rejected = 0;
  std::size_t failed = 0;     ///< trials whose evaluation threw (evaluator_error_policy::record)
  double elapsed_s = 0;
  stop_reason reason = stop_reason::max_trials;
  int stop_signal = 0;  ///< the signal number (SIGTERM, SIGINT) when reason is stop_reason::signal

  /// The best trial; qnas::invalid_argument when no trial was trained.
  [[nodiscard]] const trial_record& best_trial() const {
    if (!best) throw invalid_argument("qnas::search::search_result::best_trial", "no trial was trained (all rejected?)");
    return history[*best];
  }
  [[nodiscard]] std::vector<decision_stats> statistics() const { return decision_statistics(history, space); }

  /// Writes the report files: `<prefix>pareto.csv` and `<prefix>pareto.svg` (the first Pareto
  /// axis against the second over all trained trials, the front highlighted). Nothing is written
  /// without Pareto axes; the SVG is skipped when there is only one. `marks` are drawn on top
  /// of the plot, each with its legend entry (e.g. the reference and the chosen model, as
  /// (second axis, first axis) points).
  void write_report_files(const std::filesystem::path& prefix, std::vector<io::plot_series> marks = {}) const {
    if (!has_front) return;
    const auto base = prefix.string();
    front.save_csv(base + "pareto.csv");
    if (front.axes().size() < 2) return;
    const auto& ya = front.axes()[0];
    const auto& xa = front.axes()[1];
    io::svg_plot plot;
    plot.title = ya.metric + " vs " + xa.metric + " (" + std::to_string(history.size()) + " trials)";
    plot.x_label = xa.metric;
    plot.y_label = ya.metric;
    io::plot_series all{"trained trials", {}, io::plot_series::style::scatter, "#9aa7b8"};
    for (const auto& r : history)
      if (r.trained()) all.points.emplace_back(r.values.at(xa.metric), r.values.at(ya.metric));
    io::plot_series fr{"Pareto front", {}, io::plot_series::style::line_and_points, "#d62728"};
    for (const auto& p : front.front()) fr.points.emplace_back(p.values[1], p.values[0]);
    std::sort(fr.points.begin(), fr.points.end());
    plot.add(std::move(all));
    plot.add(std::move(fr));
    for (auto& m : marks) plot.add(std::move(m));
    plot.save(base + "pareto.svg");
  }

  /// Prints the summary: stop reason, counts, best candidate with its metrics, the Pareto front
  /// and the per-decision table.
  void print_report(std::ostream& os) const {
    os << "search: " << history.size() << " trials (" << rejected << " rejected";
    if (failed) os << ", " << failed << " failed";
    os << "), " << elapsed_s << " s, " << to_string(reason) << '\n';
    if (best) {
      const auto& b = history[*best];
      os << "best: trial " << b.index << ", reward " << *b.reward << "\n  " << to_string(b.cand, space) << "\n  "
         << to_json(b.values).dump() << '\n';
    }
    if (has_front) os << "Pareto front (" << front.size() << " points):\n" << front.to_csv().str();
    os << "per-decision statistics (trained trials):\n";
    print_decision_table(os, statistics());
  }
};

namespace detail {
inline void refuse_if(bool bad, const std::filesystem::path& file, const std::string& msg) {
  if (bad)
    throw invalid_argument("qnas::search::runner", "cannot resume from '" + file.string() + "': " + msg);
}
}  // namespace detail

/// Runs a search: `S` proposes, `E` measures, `O` scores. The strategy is held by reference
/// (its state after the run is the user's to inspect); the evaluator is called concurrently.
/// S, E and O are checked against their concepts (strategy, evaluator, objective) by
/// static_asserts whose first error names the missing member (docs/extending.md).
template <class S, class E, class O>
class runner {
  static_assert(check_strategy<S>(), "runner<S, E, O>: S must be a qnas::search::strategy");
  static_assert(check_evaluator<E>(), "runner<S, E, O>: E must be a qnas::search::evaluator");
  static_assert(check_objective<O>(), "runner<S, E, O>: O must be a qnas::search::objective");

 public:
  runner(S& strategy, E eval, O objective, runner_options options)
      : strategy_(strategy), eval_(std::move(eval)), objective_(std::move(objective)), opt_(std::move(options)) {
    constexpr const char* where = "qnas::search::runner";
    if (opt_.threads == 0) throw invalid_argument(where, "threads must be >= 1");
    if (opt_.batch_size == 0) throw invalid_argument(where, "batch_size must be >= 1");
    if (!opt_.checkpoint_path.empty() && opt_.checkpoint_every == 0)
      throw invalid_argument(where, "checkpoint_every must be >= 1 when a checkpoint path is set");
    if (!opt_.constraints.empty() && !opt_.estimate)
      throw invalid_argument(where, "constraints are set but no estimate function computes the metrics they check");
  }

  /// Runs until the trial budget, the time budget or a callback stops it; returns the result.
  /// Callbacks are held by reference for the duration of the call.
  /// Exceptions: an evaluator's exception (unless on_evaluator_error = record), non-finite metrics
  /// or reward (qnas::invalid_argument naming trial and metric) and I/O failures (qnas::io_error
  /// naming the file) end the run; the last checkpoint written before stays valid and can be
  /// resumed.
  template <class... Callbacks>
  search_result run(Callbacks&&... callbacks) {
    static_assert((detail::is_callback_v<std::remove_cvref_t<Callbacks>> && ...),
                  "runner::run(callbacks...): every callback must have at least one of on_search_begin(space, "
                  "progress), on_trial_end(record[, progress]) or on_search_end(progress)");
    const auto& space = strategy_.space();
    const auto session_start = clock::now();
    search_result res{space, {}, std::nullopt, pareto_archive(opt_.pareto_axes.empty()
                                                                  ? std::vector<pareto_axis>{{"reward", direction::maximize}}
                                                                  : opt_.pareto_axes),
                      !opt_.pareto_axes.empty(), 0, 0, 0.0, stop_reason::max_trials};
    const bool archive = res.has_front;
    double elapsed_before = 0;

    // ---- resume or start afresh -------------------------------------------------------------
    const bool resuming = opt_.resume && !opt_.checkpoint_path.empty() && std::filesystem::exists(opt_.checkpoint_path);
    if (resuming) {
      auto st = load_checkpoint(opt_.checkpoint_path, space);
      detail::refuse_if(st.strategy_name != strategy_.name(), opt_.checkpoint_path,
                        "it was written by strategy '" + st.strategy_name + "', this run uses '" + strategy_.name() + "'");
      detail::refuse_if(st.batch_size != opt_.batch_size, opt_.checkpoint_path,
                        qnas::detail::cat("it used batch_size ", st.batch_size, ", this run ", opt_.batch_size,
                                          " (the batch size shapes the trial sequence)"));
      detail::refuse_if(st.evaluation_seed != opt_.evaluation_seed, opt_.checkpoint_path,
                        qnas::detail::cat("it used evaluation_seed ", st.evaluation_seed, ", this run ",
                                          opt_.evaluation_seed));
      // Restores the state, then checks it against the checkpoint's own history (asks, tells).
      load_strategy_state(strategy_, st, opt_.checkpoint_path);
      elapsed_before = st.elapsed_s;
      res.rejected = st.rejected;
      for (auto& r : st.history) {
        if (r.failed()) ++res.failed;
        absorb(res, r, archive);
        res.history.push_back(std::move(r));
      }
    }
    if (!resuming) declare_budget();
    last_checkpoint_ = res.history.size();
    checkpoint_current_ = resuming;  // the file on disk already holds exactly this state
    const std::size_t session_base = res.history.size();

    // The log restarts from exactly the checkpoint's history, so trials logged after the last
    // checkpoint by an interrupted session do not appear twice.
    io::jsonl_writer log;
    if (!opt_.log_path.empty()) {
      std::string text;
      for (const auto& r : res.history) text += to_json(r, space).dump() + '\n';
      io::write_file_atomic(opt_.log_path, text);
      log = io::jsonl_writer(opt_.log_path, io::jsonl_writer::mode::append);
    }

    search_progress prog;
    auto update_progress = [&] {
      prog.trials = res.history.size();
      prog.rejected = res.rejected;
      prog.max_trials = opt_.max_trials;
      prog.session_s = seconds_since(session_start);
      prog.elapsed_s = elapsed_before + prog.session_s;
      prog.time_budget_s = opt_.time_budget_s;
      prog.session_trials = res.history.size() - session_base;
      if (res.best) prog.best_reward = res.history[*res.best].reward, prog.best_trial = *res.best;
    };
    update_progress();
    (detail::call_search_begin(callbacks, space, prog), ...);

    const stop_signal_guard signals(opt_.stop_on_signals);
    bool stop = false;
    while (!stop && res.history.size() < opt_.max_trials) {
      if (const int sig = signals.received()) {
        res.reason = stop_reason::signal;
        res.stop_signal = sig;
        stop = true;
        break;
      }
      if (opt_.time_budget_s > 0 && elapsed_before + seconds_since(session_start) >= opt_.time_budget_s) {
        res.reason = stop_reason::time_budget;
        break;
      }
      const std::size_t first = res.history.size();
      const std::size_t k = std::min(opt_.batch_size, opt_.max_trials - first);

      // Ask in order; check hard constraints on the cheap estimate, in order.
      std::vector<trial_record> batch(k);
      for (std::size_t i = 0; i < k; ++i) {
        auto& r = batch[i];
        r.index = first + i;
        r.cand = strategy_.ask();
        check_candidate(r.cand, space, "qnas::search::runner (a candidate from the strategy)");
        if (opt_.estimate) {
          r.values = opt_.estimate(r.cand);
          check_finite(r.values, r.index, "estimate");
          r.rejected = opt_.constraints.check(r.values);
        }
      }
      evaluate_batch(batch);

      // Tell, log and call back in ask order.
      for (auto& r : batch) {
        if (r.rejected) {
          r.reward = opt_.rejected_reward;
          ++res.rejected;
        } else if (r.error) {
          r.reward = opt_.rejected_reward;
          ++res.failed;
        } else {
          check_finite(r.values, r.index);
          const double reward = static_cast<double>(objective_(r.values));
          if (!std::isfinite(reward))
            throw invalid_argument("qnas::search::runner",
                                   qnas::detail::cat("trial ", r.index, ": the objective returned ", reward, " for ",
                                                     to_json(r.values).dump()));
          r.reward = reward;
        }
        if (r.reward) strategy_.tell(r.cand, *r.reward);
        if (log.is_open()) log.write(to_json(r, space));
        absorb(res, r, archive);
        res.history.push_back(std::move(r));
        update_progress();
        bool want_stop = false;
        ((want_stop = detail::call_trial_end(callbacks, res.history.back(), prog) || want_stop), ...);
        if (want_stop) stop = true, res.reason = stop_reason::callback;
      }
      if (const int sig = signals.received(); !stop && sig) stop = true, res.reason = stop_reason::signal, res.stop_signal = sig;
      if (!opt_.checkpoint_path.empty() && res.history.size() - last_checkpoint_ >= opt_.checkpoint_every)
        write_checkpoint(res, elapsed_before + seconds_since(session_start));
    }
    if (!stop && res.history.size() >= opt_.max_trials) res.reason = stop_reason::max_trials;
    res.elapsed_s = elapsed_before + seconds_since(session_start);
    if (!opt_.checkpoint_path.empty() && (res.history.size() != last_checkpoint_ || !checkpoint_current_))
      write_checkpoint(res, res.elapsed_s);
    update_progress();
    (detail::call_search_end(callbacks, prog), ...);
    return res;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds_since(clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  }

  /// A fresh search tells a budget-aware strategy its trial budget (search::expect_trials), so the
  /// options its caller left unset follow max_trials (regularized_evolution's population and
  /// tournament, reinforce's learning rate). A resumed search keeps the values it saved.
  void declare_budget() {
    try {
      expect_trials(strategy_, opt_.max_trials);
    } catch (const invalid_argument& e) {
      throw invalid_argument("qnas::search::runner",
                             qnas::detail::cat("cannot start a fresh search with this strategy: ", e.what(),
                                               " (a strategy that has already asked cannot start another search: "
                                               "construct a new one, or resume from its checkpoint)"));
    }
  }

  /// Updates best and archive with a record (not yet in history).
  void absorb(search_result& res, const trial_record& r, bool archive) {
    if (!r.trained() || !r.reward) return;
    if (!res.best || *r.reward > *res.history[*res.best].reward) res.best = r.index;
    if (archive) {
      try {
        res.front.insert(r.index, r.values, to_string(r.cand, res.space));
      } catch (const invalid_argument& e) {
        throw invalid_argument("qnas::search::runner",
                               qnas::detail::cat("trial ", r.index, ": a Pareto axis metric is missing (", e.what(),
                                                 "); report it from the evaluator or change runner_options::pareto_axes"));
      }
    }
  }

  /// Evaluates the non-rejected trials of a batch on up to opt_.threads threads. Results land in
  /// their own slot, so the order of completion does not matter. Under evaluator_error_policy::stop
  /// the first exception (in trial order) is rethrown after every thread has joined; under record
  /// each failed trial keeps its message.
  void evaluate_batch(std::vector<trial_record>& batch) {
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (!batch[i].rejected) todo.push_back(i);
    std::vector<std::exception_ptr> errors(batch.size());
    auto work = [&](std::size_t j) {
      auto& r = batch[todo[j]];
      const auto t0 = clock::now();
      try {
        auto m = evaluate(eval_, r.cand, evaluation_context{r.index, trial_seed(opt_.evaluation_seed, r.index)});
        r.values.merge(m);
      } catch (...) {
        errors[todo[j]] = std::current_exception();
      }
      r.wall_s = seconds_since(t0);
    };
    parallel_for(todo.size(), opt_.threads, work);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!errors[i]) continue;
      if (opt_.on_evaluator_error == evaluator_error_policy::stop) std::rethrow_exception(errors[i]);
      batch[i].error = describe_exception(errors[i]);
    }
  }

  static std::string describe_exception(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return x.what();
    } catch (...) {
      return "an exception not derived from std::exception";
    }
  }

  void write_checkpoint(const search_result& res, double elapsed) {
    checkpoint_state st;
    st.strategy_name = strategy_.name();
    st.strategy_state = strategy_.save();
    st.trials = res.history.size();
    st.rejected = res.rejected;
    st.elapsed_s = elapsed;
    st.batch_size = opt_.batch_size;
    st.evaluation_seed = opt_.evaluation_seed;
    st.history = res.history;
    save_checkpoint(opt_.checkpoint_path, st, res.space);
    last_checkpoint_ = res.history.size();
    checkpoint_current_ = true;
  }

  S& strategy_;
  E eval_;
  O objective_;
  runner_options opt_;
  std::size_t last_checkpoint_ = 0;
  bool checkpoint_current_ = false;
};

/// runner(strategy, evaluator, objective, options).run(callbacks...) in one call. S, E and O
/// are checked as runner checks them: the first error names what is missing.
template <class S, class E, class O, class... Callbacks>
search_result run_search(S& strategy, E eval, O objective, runner_options options, Callbacks&&... callbacks) {
  static_assert(check_strategy<S>(), "run_search(strategy, ...): the strategy must be a qnas::search::strategy");
  static_assert(check_evaluator<E>(), "run_search(..., evaluator, ...): the evaluator must be a qnas::search::evaluator");
  static_assert(check_objective<O>(), "run_search(..., objective, ...): the objective must be a qnas::search::objective");
  return runner<S, E, O>(strategy, std::move(eval), std::move(objective), std::move(options))
      .run(static_cast<Callbacks&&>(callbacks)...);
}

}  // namespace qnas::search
