// The train-and-evaluate evaluator: build a candidate's network, train it on a proxy task, measure accuracy, energy and size.
//
// A search evaluator (search/evaluator.hpp) that owns everything between a candidate and its
// metrics: a user-supplied builder turns the candidate into a run-time nn::sequential, the
// trainer trains it on a training set, the validation set gives its accuracy, and the energy
// bridge (nn/energy.hpp) prices it under a cost table. `estimate` is the same pricing
// without training: hand it to runner_options::estimate so hard constraints (energy caps, bit
// budgets) reject a candidate before any training is spent on it.
//
// Determinism (DESIGN.md rule 6): initial weights, batch order and stochastic-rounding draws
// are all seeded from evaluation_context::seed, which the runner derives from (evaluation_seed,
// trial) only, and each call builds its own network and optimizer. So every metric except the
// wall time `train_s` is the same on 1 or N runner threads (tested). OpenBLAS's own thread count
// is a separate setting; keep it fixed between runs you compare (examples set it to 1 when the
// runner trains several candidates at once).
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/energy/qtools_compat.hpp"
#include "qnas/energy/size.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/space/candidate.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"
#include "qnas/train/weight_clip.hpp"

namespace qnas::search {

/// How each candidate is trained on the proxy task.
struct proxy_training {
  enum class optimizer { adam, sgd };
  std::size_t epochs = 1;
  std::size_t batch_size = 64;
  optimizer method = optimizer::adam;
  float learning_rate = 1e-3f;
  /// Clamp quantized layers' master weights to their format's range after every update
  /// (train::weight_clip, BinaryConnect): no weight gets stuck outside the range, where the
  /// clipped straight-through estimator gives it no gradient.
  bool clip_weights = false;
  float momentum = 0.9f;       ///< sgd only
  float weight_decay = 0.0f;   ///< sgd only (L2 on weights)
  std::size_t eval_batch_size = 256;
};

/// Everything a train_evaluator needs besides the builder and the data.
struct train_evaluator_options {
  proxy_training training{};
  nn::bridge_options bridge{};    ///< model input format, accumulator widths
  energy::energy_options energy{};    ///< memory kinds, SRAM size, accounting (qtools' by default)
};

/// Turns a candidate into its run-time network, or throws (qnas::invalid_argument) when the
/// candidate cannot be built. Called concurrently: it must not mutate shared state.
using network_builder = std::function<std::unique_ptr<nn::sequential>(const candidate&)>;

/// The static costs of a built network: "energy_pj" (Table, counted components), "bits"
/// (parameters + activations, AutoQKeras' size goal), "parameter_bits", "activation_bits",
/// "params" (trainable scalars), "macs" (per sample).
template <class Table = energy::qtools_compat>
metrics network_costs(nn::sequential& net, const nn::bridge_options& bridge = {},
                      const energy::energy_options& eo = {}) {
  static_assert(energy::check_cost_table<Table>());
  const energy::network_desc d = nn::describe_network(net, bridge);
  const energy::model_energy e = energy::price_model<Table>(d, eo);
  const energy::model_size s = energy::size_bits(d);
  const nn::layer_description total = net.describe();
  return metrics{{std::string(metric_names::energy_pj), e.total_pj},
                 {std::string(metric_names::bits), s.total()},
                 {"parameter_bits", s.parameter_bits},
                 {"activation_bits", s.activation_bits},
                 {"params", static_cast<double>(total.params)},
                 {"macs", static_cast<double>(total.macs)}};
}

/// Evaluator: candidate -> build -> train on `train` -> accuracy on `validation`, plus
/// network_costs<Table>. Metrics: "accuracy" (validation top-1, 0..1), "train_accuracy",
/// "energy_pj", "bits", "parameter_bits", "activation_bits", "params", "macs", "train_s".
/// Copies share the (read-only) data sets and builder.
template <class Table = energy::qtools_compat>
class train_evaluator {
  static_assert(energy::check_cost_table<Table>(), "train_evaluator<Table>: Table must be an energy cost table");

 public:
  /// `space` validates candidates and names them in errors; `train` and `validation` are
  /// checked (non-empty, same image shape and classes).
  train_evaluator(space_description space, network_builder build, std::shared_ptr<const data::dataset> train,
                  std::shared_ptr<const data::dataset> validation, train_evaluator_options o = {})
      : space_(std::make_shared<const space_description>(std::move(space))), build_(std::move(build)),
        train_(std::move(train)), val_(std::move(validation)), o_(o) {
    constexpr const char* where = "qnas::search::train_evaluator";
    if (!build_) throw invalid_argument(where, "the network builder is empty");
    if (!train_ || train_->empty()) throw invalid_argument(where, "the training set is empty");
    if (!val_ || val_->empty()) throw invalid_argument(where, "the validation set is empty");
    if (train_->classes != val_->classes || train_->images.shape()[1] != val_->images.shape()[1] ||
        train_->images.shape()[2] != val_->images.shape()[2] || train_->images.shape()[3] != val_->images.shape()[3])
      throw invalid_argument(where, "the training and validation sets differ in image shape or class count");
    if (o_.training.epochs == 0 || o_.training.batch_size == 0 || o_.training.eval_batch_size == 0)
      throw invalid_argument(where, "epochs, batch_size and eval_batch_size must be > 0");
    if (!(o_.training.learning_rate > 0) || !std::isfinite(o_.training.learning_rate))
      throw invalid_argument(where, qnas::detail::cat("learning_rate must be finite and > 0, got ",
                                                      o_.training.learning_rate));
  }
  /// The same, taking the data sets by value.
  train_evaluator(space_description space, network_builder build, data::dataset train, data::dataset validation,
                  train_evaluator_options o = {})
      : train_evaluator(std::move(space), std::move(build), std::make_shared<const data::dataset>(std::move(train)),
                        std::make_shared<const data::dataset>(std::move(validation)), o) {}

  /// Builds, trains and measures the candidate; every random draw is seeded from ctx.seed.
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    auto net = build(c);
    const auto t0 = std::chrono::steady_clock::now();
    // Independent streams for initial weights, batch order and stochastic rounding.
    std::mt19937_64 init(trial_seed(ctx.seed, 0));
    quantizer::engine_type rounding(trial_seed(ctx.seed, 1));
    net->set_engine(&rounding);
    net->initialize(init);
    const train::fit_options fo{.epochs = o_.training.epochs, .batch_size = o_.training.batch_size,
                                .seed = trial_seed(ctx.seed, 2), .top_k = 1,
                                .eval_batch_size = o_.training.eval_batch_size};
    train::epoch_stats last;
    if (o_.training.method == proxy_training::optimizer::adam) {
      train::adam opt({.learning_rate = o_.training.learning_rate});
      train::trainer t(*net, opt);
      last = fit(t, *net, fo);
    } else {
      train::sgd opt({.learning_rate = o_.training.learning_rate, .momentum = o_.training.momentum,
                      .weight_decay = o_.training.weight_decay});
      train::trainer t(*net, opt);
      last = fit(t, *net, fo);
    }
    const train::evaluation ev = train::evaluate(*net, *val_, o_.training.eval_batch_size, 1);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    metrics m = costs(*net, c);
    // A diverged run (NaN logits) is a bad candidate, not a broken search: accuracy 0.
    m.set(metric_names::accuracy, std::isfinite(ev.accuracy) ? ev.accuracy : 0.0)
        .set("train_accuracy", std::isfinite(last.train_accuracy) ? last.train_accuracy : 0.0)
        .set("train_s", train_s);
    return m;
  }

  /// Energy and size without training (for runner_options::estimate and hard constraints).
  [[nodiscard]] metrics estimate(const candidate& c) const {
    auto net = build(c);
    return costs(*net, c);
  }
  /// estimate() as the function runner_options::estimate holds.
  [[nodiscard]] std::function<metrics(const candidate&)> estimator() const {
    return [self = *this](const candidate& c) { return self.estimate(c); };
  }

  /// The candidate's network, checked against the data (input shape, one output per class).
  /// A builder exception becomes a qnas::invalid_argument naming the candidate.
  [[nodiscard]] std::unique_ptr<nn::sequential> build(const candidate& c) const {
    constexpr const char* where = "qnas::search::train_evaluator";
    check_candidate(c, *space_, where);
    std::unique_ptr<nn::sequential> net;
    try {
      net = build_(c);
    } catch (const std::exception& e) {
      throw invalid_argument(where, qnas::detail::cat("cannot build the network of candidate {", to_string(c, *space_),
                                                      "}: ", e.what()));
    }
    if (!net)
      throw invalid_argument(where, qnas::detail::cat("the builder returned no network for candidate {",
                                                      to_string(c, *space_), "}"));
    const auto& s = train_->images.shape();
    if (!(net->input_shape() == nn::image(s[1], s[2], s[3])))
      throw invalid_argument(where, qnas::detail::cat("the network of candidate {", to_string(c, *space_),
                                                      "} takes ", nn::to_string(net->input_shape()),
                                                      " but the images are ", nn::to_string(nn::image(s[1], s[2], s[3]))));
    if (!(net->output_shape() == nn::flat(train_->classes)))
      throw invalid_argument(where, qnas::detail::cat("the network of candidate {", to_string(c, *space_),
                                                      "} outputs ", nn::to_string(net->output_shape()), " but there are ",
                                                      train_->classes, " classes"));
    return net;
  }

  [[nodiscard]] const space_description& space() const noexcept { return *space_; }
  [[nodiscard]] const train_evaluator_options& options() const noexcept { return o_; }
  [[nodiscard]] const data::dataset& training_set() const noexcept { return *train_; }
  [[nodiscard]] const data::dataset& validation_set() const noexcept { return *val_; }

 private:
  template <class Trainer>
  train::epoch_stats fit(Trainer& t, nn::sequential& net, const train::fit_options& fo) const {
    if (o_.training.clip_weights) return t.fit(*train_, nullptr, fo, train::weight_clip{&net});
    return t.fit(*train_, nullptr, fo);
  }

  metrics costs(nn::sequential& net, const candidate& c) const {
    try {
      return network_costs<Table>(net, o_.bridge, o_.energy);
    } catch (const invalid_argument& e) {
      throw invalid_argument("qnas::search::train_evaluator",
                             qnas::detail::cat("cannot price the network of candidate {", to_string(c, *space_), "}: ",
                                               e.what()));
    }
  }

  std::shared_ptr<const space_description> space_;
  network_builder build_;
  std::shared_ptr<const data::dataset> train_, val_;
  train_evaluator_options o_;
};

}  // namespace qnas::search
