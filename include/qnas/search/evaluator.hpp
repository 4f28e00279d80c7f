// Evaluators (candidate -> metrics), the per-trial context they receive, and the record of one trial.
//
// An evaluator knows nothing about strategies (DESIGN.md rule 3): it turns a candidate into
// measurements. The runner calls it from several threads at once, so it must be safe to call
// concurrently (the call operator is const; share read-only data, build per-call state inside).
// The train-and-evaluate evaluator (build the network of a candidate, train it on a proxy task,
// measure accuracy, add the energy model's estimate) is search/train_evaluator.hpp; any
// callable works through make_evaluator below.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/json.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// What the runner tells an evaluator besides the candidate: the trial number and a seed derived
/// from (evaluation seed, trial) only. Seeding training from this, never from a thread id or a
/// clock, is what makes a search give the same results on 1 or 16 threads.
struct evaluation_context {
  std::size_t trial = 0;
  std::uint64_t seed = 0;
};

/// splitmix64 of (base, trial): well-mixed, independent seeds for consecutive trials.
[[nodiscard]] constexpr std::uint64_t trial_seed(std::uint64_t base, std::size_t trial) noexcept {
  std::uint64_t z = base + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(trial) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Sub-concept of evaluator: the const call with a context.
template <class E>
concept evaluator_with_context = requires(const E& e, const candidate& c, const evaluation_context& ctx) {
  { e(c, ctx) } -> std::convertible_to<metrics>;
};
/// Sub-concept of evaluator: the const call without one.
template <class E>
concept evaluator_without_context = requires(const E& e, const candidate& c) {
  { e(c) } -> std::convertible_to<metrics>;
};

/// An evaluator: a const callable taking (const candidate&, const evaluation_context&) or just
/// (const candidate&) and returning metrics. Wrap other shapes with make_evaluator.
template <class E>
concept evaluator =
    std::copy_constructible<E> && (evaluator_with_context<E> || evaluator_without_context<E>);

/// The entry-point check of an evaluator (run_search, runner, run_search_mpi): the first error
/// names the rule E breaks. True when E is an evaluator.
template <class E>
consteval bool check_evaluator() {
  static_assert(std::copy_constructible<E>,
                "qnas: an evaluator must be copy constructible (the runner keeps its own copy)");
  static_assert(evaluator_with_context<E> || evaluator_without_context<E>,
                "qnas: an evaluator needs `qnas::search::metrics operator()(const qnas::candidate&, const "
                "evaluation_context&) const` or `metrics operator()(const qnas::candidate&) const` (const: it "
                "runs on several threads; a function returning a number: wrap it with make_evaluator)");
  return true;
}

/// Calls `e` with whichever of the two signatures it has.
template <evaluator E>
metrics evaluate(const E& e, const candidate& c, const evaluation_context& ctx) {
  if constexpr (requires { e(c, ctx); })
    return e(c, ctx);
  else
    return e(c);
}

/// Adapts a user callable into an evaluator. The callable takes (candidate) or (candidate,
/// evaluation_context) and returns metrics, or a plain number taken as the "accuracy" metric.
template <class F>
class function_evaluator {
 public:
  explicit function_evaluator(F f) : f_(std::move(f)) {}
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if constexpr (std::is_invocable_v<const F&, const candidate&, const evaluation_context&>)
      return wrap(f_(c, ctx));
    else
      return wrap(f_(c));
  }

 private:
  template <class R>
  static metrics wrap(R&& r) {
    if constexpr (std::is_arithmetic_v<std::remove_cvref_t<R>>)
      return metrics{{std::string(metric_names::accuracy), static_cast<double>(r)}};
    else
      return metrics(static_cast<R&&>(r));
  }
  F f_;
};

/// function_evaluator{f}, checking at the call site that f has a supported signature.
template <class F>
function_evaluator<std::decay_t<F>> make_evaluator(F&& f) {
  static_assert(std::is_invocable_v<const std::decay_t<F>&, const candidate&, const evaluation_context&> ||
                    std::is_invocable_v<const std::decay_t<F>&, const candidate&>,
                "make_evaluator(f): f must be callable as f(const candidate&) or f(const candidate&, "
                "const evaluation_context&), and callable on a const object (it runs on several threads)");
  return function_evaluator<std::decay_t<F>>(static_cast<F&&>(f));
}

/// Everything the runner knows about one trial; one line of the JSONL log.
struct trial_record {
  std::size_t index = 0;          ///< 0-based trial number, in ask order
  candidate cand;                 ///< the candidate asked
  metrics values;                 ///< the estimate's metrics merged with the evaluator's (evaluator wins)
  std::optional<double> reward;   ///< told to the strategy; nullopt for a rejected trial that was not told
  double wall_s = 0;              ///< evaluation wall time (0 for a rejected trial)
  std::optional<violation> rejected;  ///< set when a hard constraint rejected it before training
  /// The evaluator's exception message, for a trial whose evaluation threw under
  /// runner_options::on_evaluator_error = record (its metrics are the estimate's only).
  std::optional<std::string> error;

  [[nodiscard]] bool was_rejected() const noexcept { return rejected.has_value(); }
  [[nodiscard]] bool failed() const noexcept { return error.has_value(); }
  /// Rejected nor failed: its metrics hold the evaluator's measurements.
  [[nodiscard]] bool trained() const noexcept { return !rejected && !error; }
};

/// {"trial": 3, "decisions": {name: label}, "metrics": {...}, "reward": 0.8, "wall_s": 0.01}
/// plus "rejected": {"constraint": ..., "detail": ...} for a rejected trial and "error": "..." for
/// one whose evaluation failed.
inline nlohmann::json to_json(const trial_record& r, const space_description& space) {
  nlohmann::json j = {{"trial", r.index}, {"decisions", to_json(r.cand, space)}, {"metrics", to_json(r.values)},
                      {"reward", r.reward ? nlohmann::json(*r.reward) : nlohmann::json(nullptr)}, {"wall_s", r.wall_s}};
  if (r.rejected) j["rejected"] = {{"constraint", r.rejected->constraint}, {"detail", r.rejected->detail}};
  if (r.error) j["error"] = *r.error;
  return j;
}

/// Reads what to_json(trial_record) wrote; qnas::invalid_argument names the trial and field.
inline trial_record trial_record_from_json(const nlohmann::json& j, const space_description& space) {
  constexpr const char* where = "qnas::search::trial_record_from_json";
  if (!j.is_object() || !j.contains("trial") || !j.contains("decisions") || !j.contains("metrics") ||
      !j.contains("reward") || !j.contains("wall_s"))
    throw invalid_argument(where, "a trial record needs trial, decisions, metrics, reward and wall_s: " +
                                      j.dump().substr(0, 200));
  trial_record r;
  try {
    r.index = io::get_integer<std::size_t>(j["trial"], "trial", where);
    r.cand = candidate_from_json(j["decisions"], space);
    r.values = metrics_from_json(j["metrics"]);
    if (!j["reward"].is_null()) r.reward = j["reward"].get<double>();
    r.wall_s = j["wall_s"].get<double>();
    if (j.contains("rejected"))
      r.rejected = violation{j["rejected"].at("constraint").get<std::string>(), j["rejected"].at("detail").get<std::string>()};
    if (j.contains("error")) r.error = j["error"].get<std::string>();
    if (r.rejected && r.error) throw invalid_argument(where, "a trial cannot be both rejected and failed");
  } catch (const std::exception& e) {  // nlohmann type errors and candidate/metrics validation
    throw invalid_argument(where, qnas::detail::cat("trial record ", j["trial"].dump(), ": ", e.what()));
  }
  return r;
}

}  // namespace qnas::search
