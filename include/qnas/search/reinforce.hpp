// reinforce: one independent softmax per decision trained by REINFORCE, as in TuNAS.
//
// Policy: logits start at 0 (uniform). Update after each tell (Bender et al., "Can weight
// sharing outperform random architecture search?", CVPR 2020, the TuNAS paper):
//   advantage A = reward - baseline, baseline an exponential moving average (momentum 0.95)
//   gradient ascent on A * log pi(c) + entropy_weight * H(pi), with Adam (beta1 = 0,
//   beta2 = 0.999); optional RL delay (the first `delay` tells only move the baseline) and an
//   exponentially increasing learning rate that reaches 10x the initial one at `total_tells`.
// The final architecture is the per-decision argmax of the logits (argmax()).
// Unset, the learning rate follows default_learning_rate() from the declared trial budget
// (options::expected_trials or expect_trials()), measured by bench/bench_strategy_defaults.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/io/json.hpp"
#include "qnas/search/strategy.hpp"

namespace qnas::search {

namespace detail {

/// Adam over a flat parameter vector (ascent: params += step). Bias-corrected moments.
struct adam {
  double beta1 = 0.0;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  std::vector<double> m, v;
  std::uint64_t t = 0;

  void resize(std::size_t n) {
    m.assign(n, 0.0);
    v.assign(n, 0.0);
    t = 0;
  }
  /// params += lr * mhat / (sqrt(vhat) + eps), with g the gradient to ascend.
  void step(std::vector<double>& params, const std::vector<double>& g, double lr) {
    ++t;
    const double c1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double c2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    for (std::size_t i = 0; i < params.size(); ++i) {
      m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
      params[i] += lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + epsilon);
    }
  }
  [[nodiscard]] nlohmann::json save() const { return {{"m", m}, {"v", v}, {"t", t}}; }
  void load(const nlohmann::json& j, std::size_t n, std::string_view where) {
    auto mm = j.at("m").get<std::vector<double>>();
    auto vv = j.at("v").get<std::vector<double>>();
    if (mm.size() != n || vv.size() != n)
      throw invalid_argument(where, cat("optimizer state has ", mm.size(), "/", vv.size(), " entries, expected ", n));
    m = std::move(mm);
    v = std::move(vv);
    t = io::get_integer<std::uint64_t>(j.at("t"), "t", "qnas::search::reinforce::load");
  }
};

/// Numerically stable softmax of logits[0..n) into p.
inline void softmax(const double* logits, double* p, std::size_t n) noexcept {
  double mx = logits[0];
  for (std::size_t k = 1; k < n; ++k) mx = std::max(mx, logits[k]);
  double s = 0.0;
  for (std::size_t k = 0; k < n; ++k) s += (p[k] = std::exp(logits[k] - mx));
  for (std::size_t k = 0; k < n; ++k) p[k] /= s;
}

/// Draws an index from probabilities p[0..n) with one uniform draw (inverse CDF).
inline std::uint32_t sample_index(const double* p, std::size_t n, engine_type& e) noexcept {
  double u = uniform01(e);
  for (std::size_t k = 0; k + 1 < n; ++k) {
    if (u < p[k]) return static_cast<std::uint32_t>(k);
    u -= p[k];
  }
  return static_cast<std::uint32_t>(n - 1);
}

/// d/dlogits of (adv * log p[c] + beta * H(p)) for one softmax, accumulated into g.
/// d log p_c / dz_k = [k == c] - p_k;  dH/dz_k = -p_k (log p_k + H).
inline void policy_gradient(const double* p, std::size_t n, std::uint32_t c, double adv, double beta,
                            double* g) noexcept {
  double h = 0.0;
  if (beta != 0.0)
    for (std::size_t k = 0; k < n; ++k) h -= p[k] > 0 ? p[k] * std::log(p[k]) : 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    g[k] += adv * ((k == c ? 1.0 : 0.0) - p[k]);
    if (beta != 0.0 && p[k] > 0) g[k] += beta * (-p[k] * (std::log(p[k]) + h));
  }
}

/// Reward baseline: an exponential moving average, initialised with the first reward (so the
/// first advantage is 0 rather than the reward itself).
struct ema_baseline {
  double momentum = 0.95;
  double value = 0.0;
  bool initialised = false;
  /// Returns the advantage of `reward` against the current baseline, then updates it.
  double advantage(double reward) noexcept {
    if (!initialised) {
      value = reward;
      initialised = true;
    }
    const double a = reward - value;
    value = momentum * value + (1.0 - momentum) * reward;
    return a;
  }
  [[nodiscard]] nlohmann::json save() const { return {{"value", value}, {"initialised", initialised}}; }
  void load(const nlohmann::json& j) {
    value = j.at("value").get<double>();
    initialised = j.at("initialised").get<bool>();
  }
};

/// The counters of a policy's learning state must agree: the baseline starts at the first reward,
/// Adam counts one step per update, and every value is finite (a NaN would poison every later
/// ask). `updates` is the number of updates the tells imply, `told` whether any reward was told;
/// names the field that disagrees.
inline void check_learning_state(const std::vector<double>& params, const adam& a, const ema_baseline& b,
                                 std::uint64_t updates, bool told, std::string_view where) {
  for (std::size_t i = 0; i < params.size(); ++i)
    if (!std::isfinite(params[i])) throw invalid_argument(where, cat("parameter ", i, " is ", params[i], ", not finite"));
  for (std::size_t i = 0; i < a.m.size(); ++i)
    if (!std::isfinite(a.m[i]) || !std::isfinite(a.v[i]) || a.v[i] < 0)
      throw invalid_argument(where, cat("field 'adam': moment ", i, " is ", a.m[i], " / ", a.v[i],
                                        " (must be finite, the second >= 0)"));
  if (a.t != updates)
    throw invalid_argument(where, cat("field 'adam.t' is ", a.t, ", but the tells imply ", updates, " updates"));
  if (!std::isfinite(b.value)) throw invalid_argument(where, cat("field 'baseline.value' is ", b.value, ", not finite"));
  if (b.initialised != told)
    throw invalid_argument(where, cat("field 'baseline.initialised' is ", b.initialised ? "true" : "false", ", but ",
                                      told ? "rewards were" : "no reward was", " told"));
}

/// learning_rate * 10^(step / total) (TuNAS's exponentially increasing RL learning rate), or the
/// constant learning_rate when total == 0. Clamped at 10x past the end.
inline double increasing_lr(double lr, std::uint64_t step, std::uint64_t total) noexcept {
  if (total == 0) return lr;
  return lr * std::pow(10.0, std::min(1.0, static_cast<double>(step) / static_cast<double>(total)));
}

}  // namespace detail

/// REINFORCE over independent per-decision softmax distributions. A batch of asks before the
/// tells is fine: each tell updates the current policy with its candidate's log-probability
/// gradient under that policy.
class reinforce {
 public:
  struct options {
    /// Adam step (in logit units) at the start; unset: default_learning_rate(expected_trials, delay)
    std::optional<double> learning_rate = std::nullopt;
    double baseline_momentum = 0.95;
    double entropy_weight = 0.0;     ///< entropy bonus coefficient (0: none)
    std::uint64_t delay = 0;         ///< RL delay: tells before the policy starts to learn
    std::uint64_t total_tells = 0;   ///< the lr grows to 10x at this many updates (0: constant lr)
    double adam_beta1 = 0.0;
    double adam_beta2 = 0.999;
    /// The declared trial budget B (0: unknown). It only derives learning_rate when that is
    /// unset; saved with the state so a checkpoint says what the search was told. Last, so that
    /// options written positionally before it existed keep their meaning.
    std::uint64_t expected_trials = 0;
  };

  reinforce(const space_description& space, options opt, std::uint64_t seed)
      : space_(space), requested_(opt), opt_(resolve(opt)), engine_(seed) {
    check_options(opt, "reinforce");
    std::size_t n = 0;
    for (const auto& d : space_.decisions()) {
      offsets_.push_back(n);
      n += d.cardinality;
    }
    logits_.assign(n, 0.0);
    probs_.assign(n, 0.0);
    grad_.assign(n, 0.0);
    adam_.beta1 = opt_.adam_beta1;
    adam_.beta2 = opt_.adam_beta2;
    adam_.resize(n);
    baseline_.momentum = opt_.baseline_momentum;
    refresh_probs();
  }
  reinforce(const space_description& space, std::uint64_t seed) : reinforce(space, options{}, seed) {}

  /// The default learning rate for a declared budget of B evaluations with an RL delay of d:
  ///   lr = min(0.2, 1 / sqrt(n)),  n = max(1, B - d) the number of policy updates,
  /// and lr = 0.1 (the rule at n = 100) when B is unknown (0).
  /// Why: Adam moves every logit by about lr per update whatever the reward's scale, and with a
  /// noisy advantage those moves add up like a random walk, to about lr * sqrt(n) logits over the
  /// search; lr = 1 / sqrt(n) keeps that noise-driven drift near one logit at any budget, while
  /// the consistent (signal) part, lr * n = sqrt(n), still grows. On NAS-Bench-201 the best rate
  /// of a grid falls with the budget the same way (docs/search_spaces_and_strategies.md); above
  /// 0.2 the policy collapses on its first rewards, hence the cap for budgets under 25 updates.
  /// The rule assumes a constant rate (total_tells = 0); the TuNAS schedule raises it 10x.
  static double default_learning_rate(std::uint64_t expected_trials, std::uint64_t delay = 0) noexcept {
    if (expected_trials == 0) return 0.1;
    const double n = expected_trials > delay ? static_cast<double>(expected_trials - delay) : 1.0;
    return std::min(0.2, 1.0 / std::sqrt(n));
  }
  /// Options with learning_rate filled in by the rule above where it is unset.
  static options resolve(options o) noexcept {
    if (!o.learning_rate) o.learning_rate = default_learning_rate(o.expected_trials, o.delay);
    return o;
  }

  /// Declares the trial budget after construction (a runner that knows its max_trials calls this
  /// before the first tell; see search::expect_trials): sets expected_trials unless the options
  /// set it, and re-derives learning_rate when the constructor's options left it unset. Values
  /// the caller wrote are never overridden; after load() every value is the saved one. Throws
  /// qnas::invalid_argument after the first tell (the rate shapes every update).
  void expect_trials(std::uint64_t n) {
    if (tells_ != 0)
      throw invalid_argument("reinforce::expect_trials",
                             detail::cat("the budget must be declared before the first tell (", tells_, " were told)"));
    if (requested_.expected_trials == 0) requested_.expected_trials = n;
    const options o = resolve(requested_);
    check_options(o, "reinforce::expect_trials");
    opt_ = o;
  }

  /// The rules for options, checked by the constructor and by load(). An unset learning_rate is
  /// checked as the rule derives it.
  static void check_options(const options& opt, std::string_view where) {
    const options o = resolve(opt);
    detail::check_policy_gradient_options(*o.learning_rate, o.baseline_momentum, o.entropy_weight, o.adam_beta1,
                                          o.adam_beta2, where);
  }

  /// The options in use: learning_rate always set (derived where the caller left it unset).
  [[nodiscard]] const options& get_options() const noexcept { return opt_; }
  [[nodiscard]] double learning_rate() const noexcept { return *opt_.learning_rate; }

  /// Against a checkpoint: every told reward was counted in 'tells'.
  void check_counts(const trial_counts& n) const {
    if (tells_ != n.told)
      throw invalid_argument("reinforce::load",
                             detail::cat("field 'tells' is ", tells_, ", but ", n.told, " rewards were told"));
  }

  [[nodiscard]] candidate ask() {
    candidate c;
    c.choices.resize(space_.num_decisions());
    for (std::size_t i = 0; i < c.size(); ++i)
      c[i] = detail::sample_index(&probs_[offsets_[i]], space_.cardinality(i), engine_);
    return c;
  }

  void tell(const candidate& c, double reward) {
    detail::check_tell(c, reward, space_, "reinforce::tell");
    const double adv = baseline_.advantage(reward);
    if (tells_++ < opt_.delay) return;
    std::fill(grad_.begin(), grad_.end(), 0.0);
    for (std::size_t i = 0; i < c.size(); ++i)
      detail::policy_gradient(&probs_[offsets_[i]], space_.cardinality(i), c[i], adv, opt_.entropy_weight,
                              &grad_[offsets_[i]]);
    adam_.step(logits_, grad_, detail::increasing_lr(*opt_.learning_rate, adam_.t, opt_.total_tells));
    refresh_probs();
  }

  /// The final architecture: the most probable alternative of every decision (lowest index on ties).
  [[nodiscard]] candidate argmax() const {
    candidate c;
    c.choices.resize(space_.num_decisions());
    for (std::size_t i = 0; i < c.size(); ++i) {
      const auto* l = &logits_[offsets_[i]];
      c[i] = static_cast<std::uint32_t>(std::max_element(l, l + space_.cardinality(i)) - l);
    }
    return c;
  }
  /// The policy's probabilities for decision i.
  [[nodiscard]] std::vector<double> probabilities(std::size_t i) const {
    return {probs_.begin() + static_cast<std::ptrdiff_t>(offsets_[i]),
            probs_.begin() + static_cast<std::ptrdiff_t>(offsets_[i] + space_.cardinality(i))};
  }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_);
    // The rate is saved as used (derived or not), so a resumed search is the same search even if
    // the rule changes in a later version.
    j["options"] = {{"learning_rate", *opt_.learning_rate}, {"baseline_momentum", opt_.baseline_momentum},
                    {"entropy_weight", opt_.entropy_weight}, {"delay", opt_.delay},
                    {"total_tells", opt_.total_tells}, {"adam_beta1", opt_.adam_beta1},
                    {"adam_beta2", opt_.adam_beta2}, {"expected_trials", opt_.expected_trials}};
    j["logits"] = logits_;
    j["adam"] = adam_.save();
    j["baseline"] = baseline_.save();
    j["tells"] = tells_;
    return j;
  }

  void load(const nlohmann::json& j) {
    detail::read_state("qnas::search::reinforce::load", [&] {
      constexpr const char* where = "reinforce::load";
      engine_type e;
      detail::load_header(j, name(), space_, e);
      const auto& o = j.at("options");
      constexpr const char* loader = "qnas::search::reinforce::load";
      options opt;
      opt.learning_rate = o.at("learning_rate").get<double>();
      opt.baseline_momentum = o.at("baseline_momentum").get<double>();
      opt.entropy_weight = o.at("entropy_weight").get<double>();
      opt.delay = io::get_integer<std::uint64_t>(o.at("delay"), "delay", loader);
      opt.total_tells = io::get_integer<std::uint64_t>(o.at("total_tells"), "total_tells", loader);
      opt.adam_beta1 = o.at("adam_beta1").get<double>();
      opt.adam_beta2 = o.at("adam_beta2").get<double>();
      // States saved before expected_trials existed lack it: their budget was not declared.
      if (o.contains("expected_trials"))
        opt.expected_trials = io::get_integer<std::uint64_t>(o.at("expected_trials"), "expected_trials", loader);
      auto logits = j.at("logits").get<std::vector<double>>();
      if (logits.size() != logits_.size())
        throw invalid_argument(where, detail::cat("state has ", logits.size(), " logits, the space needs ", logits_.size()));
      detail::adam a;
      a.beta1 = opt.adam_beta1;
      a.beta2 = opt.adam_beta2;
      a.load(j.at("adam"), logits_.size(), where);
      detail::ema_baseline b;
      b.momentum = opt.baseline_momentum;
      b.load(j.at("baseline"));
      const auto tells = io::get_integer<std::uint64_t>(j.at("tells"), "tells", "qnas::search::reinforce::load");
      check_options(opt, where);
      detail::check_learning_state(logits, a, b, tells > opt.delay ? tells - opt.delay : 0, tells > 0, where);
      opt_ = opt;
      requested_ = opt;  // every value of a saved search is fixed: expect_trials() must not re-derive them
      engine_ = e;
      logits_ = std::move(logits);
      adam_ = std::move(a);
      baseline_ = b;
      tells_ = tells;
      refresh_probs();
    });
  }

  [[nodiscard]] std::string name() const { return "reinforce"; }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  void refresh_probs() {
    for (std::size_t i = 0; i < space_.num_decisions(); ++i)
      detail::softmax(&logits_[offsets_[i]], &probs_[offsets_[i]], space_.cardinality(i));
  }

  space_description space_;
  options requested_;  // as the caller wrote them: what expect_trials() may still derive
  options opt_;        // as used: learning_rate set
  engine_type engine_;
  std::vector<std::size_t> offsets_;  // first logit of each decision
  std::vector<double> logits_, probs_, grad_;
  detail::adam adam_;
  detail::ema_baseline baseline_;
  std::uint64_t tells_ = 0;
};

static_assert(strategy<reinforce>);

}  // namespace qnas::search
