// compressed_activations: keeps what every layer of a network needs for its backward pass in an
// activation_store (narrow format + optional lossless stage), and frees the float buffers.
//
//   nn::sequential net = ...;
//   train::compressed_activations saved(net, train::activation_codec::of<bfp<4, 16>>(), train::lossless_options{});
//   trainer.fit(...);                       // every training step now keeps encoded activations only
//   std::cout << saved.memory();            // bytes held per layer, vs float32
//   policy.apply(saved.stores());           // an adaptive_compression policy moves the formats
//
// Each layer that accepts a saver (conv2d, depthwise_conv2d, dense, the elementwise activations,
// batch norm; nested layers too) gets one store for its input; the network is switched to
// memory-saving training (nn::sequential::set_memory_saving), so the float outputs and
// gradients live only while the next layer needs them. What backward sees is the format's
// decode(encode(x)) of each saved input, bit for bit.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/train/activation_store.hpp"
#include "qnas/train/adaptive_compression.hpp"

namespace qnas::train {

class compressed_activations {
 public:
  /// Attaches one store per saver-accepting layer of `net` (depth first), each storing with
  /// `codec` and `lossless` and sharing one compression_workspace. Block formats block along
  /// the channels (the last axis), or along the width for single-channel images. Throws
  /// qnas::invalid_argument when a layer already has a saver or no layer accepts one.
  compressed_activations(nn::sequential& net, activation_codec codec, lossless_options lossless = lossless_options{},
                         bool memory_saving = true)
      : net_(&net), workspace_(std::make_shared<compression_workspace>()) {
    static constexpr const char* where = "qnas::train::compressed_activations";
    collect(net, codec, lossless, where);
    if (stores_.empty()) throw invalid_argument(where, "no layer of the network can keep its input in a store");
    for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_input_saver(stores_[i].get());
    if (memory_saving) net.set_memory_saving(true);
    memory_saving_ = memory_saving;
  }
  compressed_activations(const compressed_activations&) = delete;
  compressed_activations& operator=(const compressed_activations&) = delete;
  /// Detaches the stores (the layers keep float data again) and ends memory-saving training.
  ~compressed_activations() {
    for (nn::layer* l : layers_) l->set_input_saver(nullptr);
    if (memory_saving_) net_->set_memory_saving(false);
  }

  [[nodiscard]] std::size_t size() const noexcept { return stores_.size(); }
  /// The stores, in layer order: give them to adaptive_compression::apply.
  [[nodiscard]] const std::vector<activation_store*>& stores() const noexcept { return ptrs_; }
  activation_store& store(std::size_t i) { return *stores_.at(i); }
  /// The layer whose input store i keeps.
  [[nodiscard]] nn::layer& layer(std::size_t i) const { return *layers_.at(i); }
  /// "conv2d 0", "relu 1", ...: the layer kind and its position among the saving layers.
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }

  /// Sets the format of every store's next store() (one format for the whole network).
  void set_codec(const activation_codec& c) {
    for (auto& s : stores_) s->set_codec(c);
  }
  /// Engine for formats with stochastic rounding.
  void set_engine(activation_store::engine_type* engine) {
    for (auto& s : stores_) s->set_engine(engine);
  }

  /// The degradation metric an adaptive_compression policy observes, per store: the normalized
  /// MSE Σ(ŷ - y)² / Σy² between its layer's output computed from the input encoded in the
  /// store's next format (ŷ) and from the float input (y), on `batch`. Runs the network in
  /// inference mode and saves nothing. Layers nested in composites other than nn::sequential
  /// (residual blocks) are not probed: NaN.
  std::vector<double> probe(const xt::xarray<float>& batch) {
    std::vector<double> out(stores_.size(), std::numeric_limits<double>::quiet_NaN());
    probe_into(*net_, batch, out);
    return out;
  }

  /// Bytes held now (after a training forward pass: what the backward pass will read).
  [[nodiscard]] activation_bytes bytes() const noexcept {
    activation_bytes b;
    for (const auto& s : stores_) b += s->bytes();
    return b;
  }
  /// Per-layer table of the bytes held now.
  [[nodiscard]] activation_memory memory() const {
    activation_memory m;
    for (std::size_t i = 0; i < stores_.size(); ++i)
      m.add(names_[i], stores_[i]->stored_codec().name(), stores_[i]->bytes());
    return m;
  }

 private:
  void collect(nn::layer& l, const activation_codec& codec, const lossless_options& lossless, const char* where) {
    if (l.accepts_input_saver()) {
      if (l.input_saver() != nullptr)
        throw invalid_argument(where, "layer " + l.kind() + " already has an input saver");
      const nn::tensor_shape in = l.input_shape();
      const std::ptrdiff_t axis = in.is_image() && in.c == 1 ? -2 : last_axis;
      auto s = std::make_unique<activation_store>(codec, lossless, axis);
      s->set_workspace(workspace_);
      names_.push_back(l.kind() + " " + std::to_string(stores_.size()));
      ptrs_.push_back(s.get());
      stores_.push_back(std::move(s));
      layers_.push_back(&l);
    }
    for (nn::layer* c : l.children()) collect(*c, codec, lossless, where);
  }

  /// Runs `l` on `x` as probe() describes; returns the float output.
  const xt::xarray<float>& probe_into(nn::layer& l, const xt::xarray<float>& x, std::vector<double>& out) {
    if (auto* seq = dynamic_cast<nn::sequential*>(&l)) {
      if (seq->size() == 0) return x;
      const xt::xarray<float>* a = &x;
      for (std::size_t i = 0; i < seq->size(); ++i) a = &probe_into((*seq)[i], *a, out);
      return *a;
    }
    std::size_t i = 0;
    while (i < layers_.size() && layers_[i] != &l) ++i;
    if (i == layers_.size()) return l.forward(x, false);
    probe_true_ = l.forward(x, false);
    activation_store encoded(stores_[i]->codec(), lossless_options::off(), stores_[i]->axis());
    encoded.store(x);
    encoded.load(probe_hat_);
    const xt::xarray<float>& yhat = l.forward(probe_hat_, false);
    out[i] = normalized_mse({probe_true_.data(), probe_true_.size()}, {yhat.data(), yhat.size()});
    return l.forward(x, false);
  }

  nn::sequential* net_;
  std::shared_ptr<compression_workspace> workspace_;
  std::vector<std::unique_ptr<activation_store>> stores_;
  std::vector<activation_store*> ptrs_;
  std::vector<nn::layer*> layers_;
  std::vector<std::string> names_;
  bool memory_saving_ = false;
  xt::xarray<float> probe_true_, probe_hat_;
};

}  // namespace qnas::train
