// The training loop: mini-batches, loss, backward, optimizer and schedule, evaluation, callbacks.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/batching.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/nn/parameter.hpp"
#include "qnas/train/callbacks.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/metrics.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/schedule.hpp"

namespace qnas::train {

/// What the trainer needs from a network: `nn::network<...>` and the run-time `nn::sequential`
/// both model it. forward keeps a pointer to its input until backward.
template <class N>
concept trainable_network = requires(N& n, const xt::xarray<float>& x) {
  { n.forward(x, true) } -> std::convertible_to<const xt::xarray<float>&>;
  n.backward(x, false);
  { n.parameters() } -> std::convertible_to<std::vector<nn::parameter*>>;
  n.zero_grad();
};

/// A loss: `float(logits, labels, dlogits)` returning the mean loss and writing d(loss)/d(logits),
/// or `float(logits, labels, dlogits, const data::batch&)` when it needs to know which images the
/// batch holds (`batch.indices`), e.g. distillation from teacher logits precomputed per image.
template <class L>
concept loss_function = requires(const L& l, const xt::xarray<float>& z, std::span<const label_t> y,
                                 xt::xarray<float>& g, const data::batch& b) {
  { l(z, y, g) } -> std::convertible_to<float>;
} || requires(const L& l, const xt::xarray<float>& z, std::span<const label_t> y, xt::xarray<float>& g,
              const data::batch& b) {
  { l(z, y, g, b) } -> std::convertible_to<float>;
};

/// The conformance check of a loss: the first error names the call L lacks.
template <class L>
consteval bool check_loss_function() {
  static_assert(loss_function<L>,
                "qnas: a loss needs `float operator()(const xt::xarray<float>& logits, std::span<const "
                "qnas::data::label_t> labels, xt::xarray<float>& dlogits) const` (or the same with a trailing `const "
                "qnas::data::batch&`), returning the mean loss and writing d(loss)/d(logits)");
  return true;
}

/// The default loss: mean softmax cross-entropy on logits.
struct cross_entropy_loss {
  float operator()(const xt::xarray<float>& logits, std::span<const label_t> labels, xt::xarray<float>& dlogits) const {
    return softmax_cross_entropy(logits, labels, dlogits);
  }
};

/// The default schedule: leave the optimizer's own learning rate alone.
struct no_schedule {};

/// Settings of `trainer::fit`.
struct fit_options {
  std::size_t epochs = 1;
  std::size_t batch_size = 64;
  std::uint64_t seed = 0;      ///< batch order (the network's initial weights have their own seed)
  std::size_t top_k = 5;       ///< k of the reported top-k validation accuracy
  std::size_t eval_batch_size = 256;
};

/// Loss and accuracy of a network over a data set (inference mode).
struct evaluation {
  double loss = 0.0;
  double accuracy = 0.0;
  double top_k_accuracy = 0.0;
  std::size_t k = 5;
  std::size_t count = 0;
};

namespace detail {
/// Copies a batch (any contiguous row-major float tensor) into the network's input buffer; the
/// buffer keeps its storage across batches of the same size.
template <class T>
void load_batch(const T& images, xt::xarray<float>& into) {
  const auto& s = images.shape();
  if (into.dimension() != s.size() || !std::equal(s.begin(), s.end(), into.shape().begin()))
    into.resize(std::vector<std::size_t>(s.begin(), s.end()));
  std::memcpy(into.data(), images.data(), images.size() * sizeof(float));
}
}  // namespace detail

/// Evaluates `net` on `d` in inference mode (batch norm running statistics, no gradients).
template <trainable_network Net>
evaluation evaluate(Net& net, const data::dataset& d, std::size_t batch_size = 256, std::size_t k = 5) {
  if (d.empty()) throw invalid_argument("qnas::train::evaluate", "the data set is empty");
  data::batcher b(d, {.batch_size = batch_size, .shuffle = false, .drop_last = false, .seed = 0});
  xt::xarray<float> x;
  double loss = 0.0;
  std::size_t top1 = 0, topk = 0;
  while (const data::batch* mb = b.next()) {
    detail::load_batch(mb->images, x);
    const auto& logits = net.forward(x, false);
    const std::span<const label_t> y(mb->labels);
    loss += static_cast<double>(softmax_cross_entropy(logits, y)) * static_cast<double>(mb->size());
    top1 += top_k_correct(logits, y, 1);
    topk += top_k_correct(logits, y, std::min<std::size_t>(k, logits.shape()[1]));
  }
  const auto n = static_cast<double>(d.size());
  return {loss / n, static_cast<double>(top1) / n, static_cast<double>(topk) / n, k, d.size()};
}

/// Trains a network with an optimizer, a learning-rate schedule and a loss:
///
///     train::adam opt({.learning_rate = 1e-3f});
///     train::trainer t(net, opt);
///     auto last = t.fit(train_set, &val_set, {.epochs = 8}, train::progress{}, train::early_stopping{3});
///
/// Callbacks are detected at compile time (see callbacks.hpp); any of them can stop training.
/// A step allocates nothing once the buffers for its batch size exist (network, loss gradient
/// and optimizer state are reused).
template <trainable_network Net, optimizer Opt, class Schedule = no_schedule, loss_function Loss = cross_entropy_loss>
  requires(lr_schedule<Schedule> || std::same_as<Schedule, no_schedule>)
class trainer {
 public:
  trainer(Net& net, Opt& opt, Schedule s = Schedule{}, Loss loss = Loss{})
      : net_(&net), opt_(&opt), schedule_(std::move(s)), loss_(std::move(loss)) {}

  /// Trains for `o.epochs` epochs (or until a callback stops it) and returns the last epoch's
  /// statistics. With `validation` non-null, evaluates after every epoch.
  template <class... Callbacks>
  epoch_stats fit(const data::dataset& train_set, const data::dataset* validation, const fit_options& o,
                  Callbacks&&... callbacks) {
    if (train_set.empty()) throw invalid_argument("qnas::train::trainer::fit", "the training set is empty");
    if (o.batch_size == 0) throw invalid_argument("qnas::train::trainer::fit", "batch_size must be > 0");
    data::batcher b(train_set, {.batch_size = o.batch_size, .shuffle = true, .drop_last = false, .seed = o.seed});
    const auto params = net_->parameters();
    const auto start = std::chrono::steady_clock::now();
    (call_train_begin(callbacks), ...);
    epoch_stats s;
    s.epochs = o.epochs;
    bool stop = false;
    for (std::size_t epoch = 0; epoch < o.epochs && !stop; ++epoch) {
      b.start_epoch(epoch);
      s.epoch = epoch;
      double loss_sum = 0.0;
      std::size_t correct = 0, seen = 0;
      const auto t0 = std::chrono::steady_clock::now();
      while (const data::batch* mb = b.next()) {
        if constexpr (!std::same_as<Schedule, no_schedule>) opt_->set_learning_rate(static_cast<float>(schedule_(step_)));
        s.learning_rate = opt_->learning_rate();
        detail::load_batch(mb->images, x_);
        const std::span<const label_t> y(mb->labels);
        net_->zero_grad();
        const auto& logits = net_->forward(x_, true);
        float loss = 0.0f;
        if constexpr (requires { loss_(logits, y, dlogits_, *mb); })
          loss = loss_(logits, y, dlogits_, *mb);
        else
          loss = loss_(logits, y, dlogits_);
        correct += top_k_correct(logits, y, 1);
        net_->backward(dlogits_, false);
        opt_->step(std::span<nn::parameter* const>(params));
        loss_sum += static_cast<double>(loss) * static_cast<double>(mb->size());
        seen += mb->size();
        [[maybe_unused]] const batch_stats bs{epoch, step_, mb->size(), static_cast<double>(loss),
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
        ++step_;
        bool stop_now = false;  // every callback runs, even after one asked to stop
        ((stop_now = call_batch_end(callbacks, bs) || stop_now), ...);
        if (stop_now) {
          stop = true;
          break;
        }
      }
      s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      s.steps = step_;
      s.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
      s.train_accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
      s.images_per_second = s.seconds > 0 ? static_cast<double>(seen) / s.seconds : 0.0;
      if (validation) {
        const evaluation e = evaluate(*net_, *validation, o.eval_batch_size, o.top_k);
        s.has_validation = true;
        s.val_loss = e.loss;
        s.val_accuracy = e.accuracy;
        s.val_top_k = e.top_k_accuracy;
      }
      ((stop = call_epoch_end(callbacks, s) || stop), ...);
    }
    (call_train_end(callbacks, s), ...);
    return s;
  }

  /// Optimizer steps taken so far (the schedule's argument).
  [[nodiscard]] std::size_t steps() const noexcept { return step_; }

 private:
  template <class C>
  static void call_train_begin(C& c) {
    if constexpr (requires { c.on_train_begin(); }) c.on_train_begin();
  }
  template <class C>
  static bool call_batch_end(C& c, const batch_stats& s) {
    if constexpr (requires { { c.on_batch_end(s) } -> std::convertible_to<bool>; })
      return c.on_batch_end(s);
    else if constexpr (requires { c.on_batch_end(s); }) {
      c.on_batch_end(s);
      return false;
    } else
      return false;
  }
  template <class C>
  static bool call_epoch_end(C& c, const epoch_stats& s) {
    if constexpr (requires { { c.on_epoch_end(s) } -> std::convertible_to<bool>; })
      return c.on_epoch_end(s);
    else if constexpr (requires { c.on_epoch_end(s); }) {
      c.on_epoch_end(s);
      return false;
    } else
      return false;
  }
  template <class C>
  static void call_train_end(C& c, const epoch_stats& s) {
    if constexpr (requires { c.on_train_end(s); }) c.on_train_end(s);
  }

  Net* net_;
  Opt* opt_;
  Schedule schedule_;
  Loss loss_;
  std::size_t step_ = 0;
  xt::xarray<float> x_, dlogits_;
};

}  // namespace qnas::train
