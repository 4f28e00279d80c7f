// TuNAS: one loop that trains a supernet's shared weights and a REINFORCE policy over its space.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/io/jsonl.hpp"
#include "qnas/io/svg_plot.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/search/reinforce.hpp"
#include "qnas/search/supernet.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/optimizer.hpp"

namespace qnas::search {

/// Warm-up probability at `step`: 1 at step 0, decaying linearly to 0 at `warmup_steps` (and 0
/// afterwards; always 0 when warmup_steps is 0). Used for both op warm-up (p: all ops of a
/// decision active) and filter warm-up (q: the largest filter count).
inline double warmup_probability(std::uint64_t step, std::uint64_t warmup_steps) noexcept {
  if (warmup_steps == 0 || step >= warmup_steps) return 0.0;
  return 1.0 - static_cast<double>(step) / static_cast<double>(warmup_steps);
}

struct tunas_options {
  std::uint64_t steps = 1000;          ///< joint steps (one weight update + one policy update each)
  std::size_t batch_size = 64;
  std::size_t validation_batch_size = 0;  ///< images per reward evaluation (0: batch_size); larger
                                          ///< batches give a less noisy accuracy term
  double warmup_fraction = 0.25;       ///< fraction of steps over which p and q decay 1 -> 0
  bool op_warmup = true;
  bool filter_warmup = true;
  std::uint64_t rl_delay = 0;          ///< effective delay is max(rl_delay, warm-up steps)
  double target = 1.0;                 ///< T0: the energy target in pJ
  double beta = -0.5;                  ///< reward Q + beta * |T / T0 - 1| (beta < 0)
  double rl_learning_rate = 0.05;      ///< REINFORCE (Adam) step at the start; grows 10x by the end
  double baseline_momentum = 0.95;
  train::adam_options weights{};       ///< optimizer of the shared weights
  bool rematerialize = true;
  std::uint64_t seed = 1;
};

/// What one joint step did (one JSONL line of the log).
struct tunas_step {
  std::uint64_t step = 0;
  candidate sampled;
  double train_loss = 0, accuracy = 0, energy_pj = 0, cost_ratio = 0, reward = 0, baseline = 0;
  double op_p = 0, filter_q = 0;
  std::vector<std::vector<double>> probabilities;  ///< per decision, after this step's update

  [[nodiscard]] nlohmann::json to_json(const space_description& d) const {
    nlohmann::json p = nlohmann::json::object();
    for (std::size_t i = 0; i < probabilities.size(); ++i) p[d[i].name] = probabilities[i];
    return {{"step", step},         {"candidate", qnas::to_json(sampled, d)},
            {"train_loss", train_loss}, {"accuracy", accuracy},
            {"energy_pj", energy_pj}, {"cost_ratio", cost_ratio},
            {"reward", reward},       {"baseline", baseline},
            {"op_warmup_p", op_p},    {"filter_warmup_q", filter_q},
            {"probabilities", p}};
  }
};

/// The joint TuNAS loop over a supernet. Each step: the policy samples a candidate; the shared
/// weights take one Adam step on a training batch, with op and filter warm-up applied per
/// decision (each op decision runs all of its ops, averaged, with probability p; each filter
/// decision uses its largest count with probability q); then the sampled candidate (no warm-up)
/// is evaluated on a validation batch and rewarded with `accuracy + beta * |E / E0 - 1|`, E its
/// inference energy under the energy model. The policy is `qnas::search::reinforce` (per-decision
/// softmax, EMA baseline, Adam with beta1 = 0, RL delay, exponentially increasing learning rate).
class tunas {
 public:
  tunas(supernet& net, tunas_options o)
      : net_(net), opt_(o), weights_opt_(o.weights), engine_(o.seed),
        policy_(net.space(),
                {.learning_rate = o.rl_learning_rate, .baseline_momentum = o.baseline_momentum, .entropy_weight = 0.0,
                 .delay = std::max(o.rl_delay, warmup_steps(o)),
                 .total_tells = o.steps > std::max(o.rl_delay, warmup_steps(o)) ? o.steps - std::max(o.rl_delay, warmup_steps(o)) : 0},
                o.seed ^ 0x9e3779b97f4a7c15ULL) {
    constexpr const char* where = "qnas::search::tunas";
    if (!(o.warmup_fraction >= 0.0 && o.warmup_fraction <= 1.0))
      throw invalid_argument(where, detail::cat("warmup_fraction must be in [0, 1], got ", o.warmup_fraction));
    if (!(o.target > 0.0) || !std::isfinite(o.target))
      throw invalid_argument(where, detail::cat("target must be finite and > 0, got ", o.target));
    if (!(o.beta < 0.0)) throw invalid_argument(where, detail::cat("beta must be < 0, got ", o.beta));
    if (o.batch_size == 0 || o.steps == 0) throw invalid_argument(where, "steps and batch_size must be > 0");
    net_.set_rematerialize(o.rematerialize);
  }

  /// Number of warm-up steps: round(warmup_fraction * steps).
  static std::uint64_t warmup_steps(const tunas_options& o) noexcept {
    return static_cast<std::uint64_t>(std::llround(o.warmup_fraction * static_cast<double>(o.steps)));
  }
  /// The RL delay in effect (never shorter than the warm-up).
  [[nodiscard]] std::uint64_t rl_delay() const noexcept { return std::max(opt_.rl_delay, warmup_steps(opt_)); }

  /// The setting used for the weight update of `c` at `step`: warm-up applied per decision.
  [[nodiscard]] supernet_setting training_setting(const candidate& c, std::uint64_t step) {
    supernet_setting st = net_.setting_of(c);
    const double p = opt_.op_warmup ? warmup_probability(step, warmup_steps(opt_)) : 0.0;
    const double q = opt_.filter_warmup ? warmup_probability(step, warmup_steps(opt_)) : 0.0;
    std::size_t prev = net_.spec().input.c;
    for (std::size_t s = 0; s < net_.num_stages(); ++s) {
      const auto d = net_.decisions(s);
      auto& ss = st.stages[s];
      const bool op_decision = d.kernel >= 0 || d.skip >= 0;
      if (op_decision && p > 0.0 && uniform(engine_) < p) {
        ss.branches.clear();
        for (std::uint32_t b = 0; b < net_.num_ops(s); ++b) ss.branches.push_back(b);
      }
      if (d.skip >= 0) {
        ss.filters = prev;  // a residual block follows its input's width
      } else if (d.filters >= 0 && q > 0.0 && uniform(engine_) < q) {
        ss.filters = net_.max_filters(s);
      }
      prev = ss.filters;
    }
    return st;
  }

  /// One joint step on the given training and validation batches.
  tunas_step step(const xt::xarray<float>& train_x, std::span<const data::label_t> train_y, const xt::xarray<float>& val_x,
                  std::span<const data::label_t> val_y) {
    tunas_step r;
    r.step = step_;
    r.op_p = opt_.op_warmup ? warmup_probability(step_, warmup_steps(opt_)) : 0.0;
    r.filter_q = opt_.filter_warmup ? warmup_probability(step_, warmup_steps(opt_)) : 0.0;
    r.sampled = policy_.ask();
    // 1. one update of the shared weights
    const supernet_setting ts = training_setting(r.sampled, step_);
    net_.zero_grad();
    const auto& logits = net_.forward(train_x, ts);
    r.train_loss = train::softmax_cross_entropy(logits, train_y, dlogits_);
    net_.backward(dlogits_);
    auto params = net_.parameters();
    weights_opt_.step(params);
    // 2. the sampled candidate on a validation batch, and its energy
    const auto& vl = net_.forward(val_x, net_.setting_of(r.sampled));
    r.accuracy = accuracy_of(vl, val_y);
    r.energy_pj = net_.energy_pj(r.sampled);
    r.cost_ratio = r.energy_pj / opt_.target;
    const tunas_reward objective{opt_.target, opt_.beta, std::string(metric_names::accuracy),
                                 std::string(metric_names::energy_pj)};
    r.reward = objective(metrics{{std::string(metric_names::accuracy), r.accuracy},
                                 {std::string(metric_names::energy_pj), r.energy_pj}});
    // 3. the REINFORCE update (the policy itself waits out the RL delay)
    policy_.tell(r.sampled, r.reward);
    r.baseline = policy_.save().at("baseline").at("value").get<double>();
    for (std::size_t i = 0; i < net_.space().num_decisions(); ++i) r.probabilities.push_back(policy_.probabilities(i));
    ++step_;
    return r;
  }

  /// Runs opt.steps joint steps, drawing random batches (with replacement across steps) from
  /// `train` and `validation`; calls `on_step(const tunas_step&)` after each.
  template <class OnStep>
  void run(const data::dataset& train, const data::dataset& validation, OnStep&& on_step) {
    const std::size_t vb = opt_.validation_batch_size ? opt_.validation_batch_size : opt_.batch_size;
    if (train.size() < opt_.batch_size || validation.size() < vb)
      throw invalid_argument("qnas::search::tunas::run", "the data sets are smaller than one batch");
    while (step_ < opt_.steps) {
      fill_batch(train, opt_.batch_size, tx_, ty_);
      fill_batch(validation, vb, vx_, vy_);
      on_step(step(tx_, ty_, vx_, vy_));
    }
  }

  /// The final architecture: the per-decision argmax of the policy.
  [[nodiscard]] candidate result() const { return policy_.argmax(); }
  [[nodiscard]] const reinforce& policy() const noexcept { return policy_; }
  [[nodiscard]] std::uint64_t steps_done() const noexcept { return step_; }

  /// Accuracy of a batch of logits.
  static double accuracy_of(const xt::xarray<float>& logits, std::span<const data::label_t> y) {
    const std::size_t n = logits.shape()[0], k = logits.shape()[1];
    std::size_t hit = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * k;
      hit += static_cast<std::size_t>(std::max_element(row, row + k) - row) == static_cast<std::size_t>(y[i]);
    }
    return static_cast<double>(hit) / static_cast<double>(n);
  }

 private:
  static double uniform(std::mt19937_64& e) { return static_cast<double>(e() >> 11) * 0x1.0p-53; }

  void fill_batch(const data::dataset& d, std::size_t b, xt::xarray<float>& x, std::vector<data::label_t>& y) {
    const std::size_t sz = d.image_size();
    nn::detail::ensure_shape(x, std::array<std::size_t, 4>{b, d.height(), d.width(), d.channels()});
    y.resize(b);
    for (std::size_t i = 0; i < b; ++i) {
      const std::size_t j = static_cast<std::size_t>(e_u64() % d.size());
      std::copy_n(d.images.data() + j * sz, sz, x.data() + i * sz);
      y[i] = d.labels[j];
    }
  }
  std::uint64_t e_u64() { return engine_(); }

  supernet& net_;
  tunas_options opt_;
  train::adam weights_opt_;
  std::mt19937_64 engine_;
  reinforce policy_;
  std::uint64_t step_ = 0;
  xt::xarray<float> dlogits_, tx_, vx_;
  std::vector<data::label_t> ty_, vy_;
};

/// Writes the step log as JSONL (one line per step).
inline void write_tunas_log(const std::filesystem::path& path, const std::vector<tunas_step>& log,
                            const space_description& d) {
  io::jsonl_writer w(path);
  for (const auto& s : log) w.write(s.to_json(d));
}

/// SVG plots of a search: the cost ratio E/E0 per step (with the baseline and reward), and one
/// line per alternative of every decision's probability over time.
inline void write_tunas_plots(const std::filesystem::path& cost_svg, const std::filesystem::path& probs_svg,
                              const std::vector<tunas_step>& log, const space_description& d) {
  io::svg_plot cost;
  cost.title = "TuNAS: cost ratio E / E0 of the sampled candidate";
  cost.x_label = "step";
  cost.y_label = "E / E0";
  io::plot_series cr{"cost ratio", {}, io::plot_series::style::scatter, "#1f77b4"};
  io::plot_series one{"target", {}, io::plot_series::style::line, "#d62728"};
  for (const auto& s : log) cr.points.emplace_back(static_cast<double>(s.step), s.cost_ratio);
  if (!log.empty()) {
    one.points = {{0.0, 1.0}, {static_cast<double>(log.back().step), 1.0}};
  }
  cost.add(std::move(cr));
  cost.add(std::move(one));
  cost.save(cost_svg);

  static constexpr const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  io::svg_plot probs;
  probs.title = "TuNAS: policy probabilities";
  probs.x_label = "step";
  probs.y_label = "probability";
  std::size_t k = 0;
  for (std::size_t i = 0; i < d.num_decisions(); ++i)
    for (std::size_t a = 0; a < d.cardinality(i); ++a, ++k) {
      io::plot_series s{d[i].name + "=" + d[i].labels[a], {}, io::plot_series::style::line, colors[k % 10]};
      for (const auto& st : log) s.points.emplace_back(static_cast<double>(st.step), st.probabilities[i][a]);
      probs.add(std::move(s));
    }
  probs.save(probs_svg);
}

}  // namespace qnas::search
