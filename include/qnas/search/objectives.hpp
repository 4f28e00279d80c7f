// Metrics records, objectives (metrics -> reward) and hard constraints checked before training.
//
// An evaluator measures; an objective decides what "better" means. Keeping them apart lets one
// set of trained candidates be re-scored under another trade-off, and lets the runner reject a
// candidate from a cheap estimate (bits, energy) before spending minutes training it.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/energy/forgiving.hpp"

namespace qnas::search {

/// Well-known metric names. Evaluators may add any others (e.g. "precision.conv1.w" for a
/// per-layer bit width); objectives and constraints name the metrics they read.
namespace metric_names {
inline constexpr std::string_view accuracy = "accuracy";              ///< in [0, 1], higher is better
inline constexpr std::string_view energy_pj = "energy_pj";            ///< inference energy, picojoules
inline constexpr std::string_view latency_cycles = "latency_cycles";  ///< inference latency, clock cycles
inline constexpr std::string_view latency_s = "latency_s";            ///< inference latency, seconds
inline constexpr std::string_view bits = "bits";                      ///< model size in bits (weights + biases)
}  // namespace metric_names

/// What an evaluator (or a cheap estimate) reports for one candidate: named doubles.
/// A map rather than a fixed struct because each project measures different things; ordered so
/// logs list metrics in the same order on every run.
class metrics {
 public:
  using map_type = std::map<std::string, double, std::less<>>;

  metrics() = default;
  metrics(std::initializer_list<std::pair<const std::string, double>> init) : values_(init) {}
  explicit metrics(map_type values) : values_(std::move(values)) {}

  /// Sets (or overwrites) one metric; returns *this for chaining.
  metrics& set(std::string_view name, double v) {
    values_.insert_or_assign(std::string(name), v);
    return *this;
  }
  [[nodiscard]] bool has(std::string_view name) const { return values_.find(name) != values_.end(); }
  [[nodiscard]] std::optional<double> get(std::string_view name) const {
    const auto it = values_.find(name);
    return it == values_.end() ? std::nullopt : std::optional<double>(it->second);
  }
  /// The metric called `name`; qnas::invalid_argument listing the metrics present when absent.
  [[nodiscard]] double at(std::string_view name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) {
      std::string have;
      for (const auto& [k, v] : values_) have += (have.empty() ? "" : ", ") + k;
      throw invalid_argument("qnas::search::metrics::at",
                             qnas::detail::cat("no metric '", name, "' (present: ", have.empty() ? "none" : have, ")"));
    }
    return it->second;
  }
  /// Copies every metric of `other` into *this (other's values win).
  metrics& merge(const metrics& other) {
    for (const auto& [k, v] : other.values_) values_.insert_or_assign(k, v);
    return *this;
  }
  [[nodiscard]] const map_type& values() const noexcept { return values_; }
  [[nodiscard]] std::size_t size() const noexcept { return values_.size(); }
  [[nodiscard]] bool empty() const noexcept { return values_.empty(); }
  bool operator==(const metrics&) const = default;

 private:
  map_type values_;
};

/// {"accuracy": 0.91, "energy_pj": 1.2e6}
inline nlohmann::json to_json(const metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.values()) j[k] = v;
  return j;
}
/// Reads what to_json(metrics) wrote; qnas::invalid_argument for non-numbers.
inline metrics metrics_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw invalid_argument("qnas::search::metrics_from_json", "expected an object, got " + j.dump());
  metrics m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number())
      throw invalid_argument("qnas::search::metrics_from_json",
                             qnas::detail::cat("metric '", it.key(), "' is not a number: ", it->dump()));
    m.set(it.key(), it->get<double>());
  }
  return m;
}

/// Throws qnas::invalid_argument naming the metric and the trial when any metric is NaN or
/// infinite: a NaN accuracy would otherwise poison every comparison the strategy makes.
inline void check_finite(const metrics& m, std::size_t trial, std::string_view source = "evaluator") {
  for (const auto& [k, v] : m.values())
    if (!std::isfinite(v))
      throw invalid_argument("qnas::search::check_finite",
                             qnas::detail::cat("trial ", trial, ": the ", source, " reported metric '", k, "' = ", v,
                                         " (NaN and infinities are not valid measurements)"));
}

/// Sub-concept of objective: the const call on a metrics record.
template <class O>
concept objective_call = requires(const O& o, const metrics& m) {
  { o(m) } -> std::convertible_to<double>;
};

/// An objective turns a metrics record into one reward; higher is better.
template <class O>
concept objective = std::copy_constructible<O> && objective_call<O>;

/// The entry-point check of an objective (run_search, runner, run_search_mpi): the first error
/// names the rule O breaks. True when O is an objective.
template <class O>
consteval bool check_objective() {
  static_assert(std::copy_constructible<O>, "qnas: an objective must be copy constructible");
  static_assert(objective_call<O>,
                "qnas: an objective needs `double operator()(const qnas::search::metrics&) const` (the reward; "
                "higher is better)");
  return true;
}

namespace detail {
inline double positive(const metrics& m, std::string_view name, std::string_view who) {
  const double v = m.at(name);
  if (!(v > 0))
    throw invalid_argument(who, qnas::detail::cat("metric '", name, "' must be > 0 (it is ", v, ")"));
  return v;
}
inline void require_positive(double v, std::string_view what, std::string_view who) {
  if (!(v > 0) || !std::isfinite(v))
    throw invalid_argument(who, qnas::detail::cat(what, " must be a finite number > 0 (it is ", v, ")"));
}
}  // namespace detail

/// Reward = one metric as is (default: accuracy). The plain "maximise validation accuracy".
struct maximize_metric {
  std::string name = std::string(metric_names::accuracy);
  double operator()(const metrics& m) const { return m.at(name); }
};

/// TuNAS absolute reward (Bender et al., 2020): Q + beta * |T / T0 - 1|.
/// Q is the quality metric (accuracy), T the cost metric (latency by default), T0 the target.
/// With beta < 0 the reward falls linearly as the cost moves away from the target in *either*
/// direction, which keeps the search near the target instead of drifting to tiny models.
struct tunas_reward {
  double target = 1.0;   ///< T0, in the unit of `cost`
  double beta = -0.1;    ///< TuNAS default; must be < 0 to penalise
  std::string quality = std::string(metric_names::accuracy);
  std::string cost = std::string(metric_names::latency_s);

  double operator()(const metrics& m) const {
    constexpr const char* who = "qnas::search::tunas_reward";
    detail::require_positive(target, "target T0", who);
    const double t = m.at(cost);
    return m.at(quality) + beta * std::abs(t / target - 1.0);
  }
};

/// MnasNet reward (Tan et al., 2019): Q * (T / T0)^w with w = alpha when T <= T0, beta otherwise.
/// soft(): alpha = beta = -0.07 (a 2x slower model must be ~5 % more accurate to tie).
/// hard(): alpha = 0, beta = -1 (no reward for being faster than the target, a steep penalty above it).
struct mnas_reward {
  double target = 1.0;  ///< T0, in the unit of `cost`
  double alpha = -0.07;
  double beta = -0.07;
  std::string quality = std::string(metric_names::accuracy);
  std::string cost = std::string(metric_names::latency_s);

  static mnas_reward soft(double target, std::string cost = std::string(metric_names::latency_s)) {
    return {target, -0.07, -0.07, std::string(metric_names::accuracy), std::move(cost)};
  }
  static mnas_reward hard(double target, std::string cost = std::string(metric_names::latency_s)) {
    return {target, 0.0, -1.0, std::string(metric_names::accuracy), std::move(cost)};
  }

  double operator()(const metrics& m) const {
    constexpr const char* who = "qnas::search::mnas_reward";
    detail::require_positive(target, "target T0", who);
    const double t = detail::positive(m, cost, who);
    return m.at(quality) * std::pow(t / target, t <= target ? alpha : beta);
  }
};

/// AutoQKeras score: metric * (1 + delta), with the forgiving factor
///   delta = (trial < ref ? delta_p : delta_n) / 100 * ln(ref / trial) / ln(rate),
/// where ref = reference * stress. Read it as: every `rate`-fold reduction of the cost (bits or
/// energy) below the reference is worth delta_p percent of accuracy, every `rate`-fold increase
/// costs delta_n percent. stress < 1 asks for a model cheaper than the reference.
/// The formula is energy::forgiving_factor's (energy/forgiving.hpp); this objective reads its
/// inputs from a metrics record, names the offending metric in errors, and plugs into the runner.
struct forgiving_factor_score {
  double reference = 1.0;  ///< the reference model's cost (e.g. its energy in pJ or its bits)
  double delta_p = 8.0;    ///< percent gained per `rate`-fold reduction (AutoQKeras example value)
  double delta_n = 8.0;    ///< percent lost per `rate`-fold increase
  double rate = 2.0;       ///< the cost ratio one delta step stands for, > 1
  double stress = 1.0;     ///< scales the reference: the effective target is reference * stress
  std::string quality = std::string(metric_names::accuracy);
  std::string cost = std::string(metric_names::energy_pj);

  /// The forgiving factor delta for a trial cost (no percent: 0.08 means +8 %).
  [[nodiscard]] double delta(double trial) const {
    constexpr const char* who = "qnas::search::forgiving_factor_score";
    detail::require_positive(reference, "reference", who);
    detail::require_positive(stress, "stress", who);
    if (!(rate > 1.0) || !std::isfinite(rate))
      throw invalid_argument(who, qnas::detail::cat("rate must be a finite number > 1 (it is ", rate,
                                                    "): it is the cost ratio one delta step stands for"));
    detail::require_positive(trial, qnas::detail::cat("trial cost '", cost, "'"), who);
    return energy::forgiving_factor{delta_p, delta_n, rate, stress}.delta(reference, trial);
  }
  double operator()(const metrics& m) const { return m.at(quality) * (1.0 + delta(m.at(cost))); }
};

/// A hard constraint violated by a candidate: which constraint, and the value that broke it.
struct violation {
  std::string constraint;  ///< e.g. "bits <= 65536"
  std::string detail;      ///< e.g. "bits = 81920"
  [[nodiscard]] std::string str() const { return constraint + " violated: " + detail; }
};

/// Hard constraints on the metrics of a cheap estimate (bit budget, energy cap, latency cap,
/// supported precisions). The runner calls the estimate and check() BEFORE training; a candidate
/// that violates one is logged with the reason and never trained.
class constraint_set {
 public:
  using predicate = std::function<std::optional<std::string>(const metrics&)>;  ///< nullopt = satisfied

  /// metric <= cap (a bit budget, an energy or latency cap). An absent metric is a violation:
  /// an estimate that forgot to report it must not pass silently.
  constraint_set& at_most(std::string name, double cap) {
    add(qnas::detail::cat(name, " <= ", cap), [name, cap](const metrics& m) -> std::optional<std::string> {
      const auto v = m.get(name);
      if (!v) return "the estimate did not report '" + name + "'";
      if (!(*v <= cap)) return qnas::detail::cat(name, " = ", *v);
      return std::nullopt;
    });
    return *this;
  }
  /// metric >= floor.
  constraint_set& at_least(std::string name, double floor) {
    add(qnas::detail::cat(name, " >= ", floor), [name, floor](const metrics& m) -> std::optional<std::string> {
      const auto v = m.get(name);
      if (!v) return "the estimate did not report '" + name + "'";
      if (!(*v >= floor)) return qnas::detail::cat(name, " = ", *v);
      return std::nullopt;
    });
    return *this;
  }
  /// Every metric whose name starts with `prefix` takes one of `allowed` (supported precisions:
  /// the estimate reports "precision.conv1.w" = 6 and the hardware supports {4, 8}).
  constraint_set& one_of(std::string prefix, std::vector<double> allowed) {
    std::string list;
    for (double a : allowed) list += (list.empty() ? "" : ", ") + qnas::detail::cat(a);
    add(qnas::detail::cat(prefix, "* in {", list, "}"), [prefix, allowed](const metrics& m) -> std::optional<std::string> {
      for (auto it = m.values().lower_bound(prefix); it != m.values().end() && it->first.starts_with(prefix); ++it) {
        bool ok = false;
        for (double a : allowed) ok = ok || it->second == a;
        if (!ok) return qnas::detail::cat(it->first, " = ", it->second);
      }
      return std::nullopt;
    });
    return *this;
  }
  /// Any other rule: `check` returns nullopt when satisfied, else what it found.
  constraint_set& add(std::string name, predicate check) {
    rules_.push_back({std::move(name), std::move(check)});
    return *this;
  }

  /// The first violated constraint, in the order they were added, or nullopt.
  [[nodiscard]] std::optional<violation> check(const metrics& m) const {
    for (const auto& r : rules_)
      if (auto found = r.check(m)) return violation{r.name, *found};
    return std::nullopt;
  }
  [[nodiscard]] bool empty() const noexcept { return rules_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return rules_.size(); }

 private:
  struct rule {
    std::string name;
    predicate check;
  };
  std::vector<rule> rules_;
};

}  // namespace qnas::search
