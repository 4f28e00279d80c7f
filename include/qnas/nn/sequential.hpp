// The run-time network: a sequence of layer objects whose sizes and quantizers are chosen at run time.
#pragma once

#include <cstddef>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qnas/nn/layer.hpp"

namespace qnas::nn {

/// A chain of layers, itself a layer (so residual blocks nest one). This is what a search
/// candidate builds (`emplace<conv2d_layer>(filters, 3, 2, padding::same, formats)` with sizes
/// and quantizers picked at run time, one type for every candidate) and what the compile-time
/// `network<...>` builds on.
class sequential : public layer {
 public:
  explicit sequential(tensor_shape input) : layer("sequential", input, input) {}

  /// Appends a layer whose input shape must equal the current output shape.
  layer& add(std::unique_ptr<layer> l) {
    if (!l) throw invalid_argument("qnas::nn::sequential::add", "null layer");
    if (!(l->input_shape() == output_shape()))
      throw invalid_argument("qnas::nn::sequential::add",
                             qnas::detail::cat("layer ", layers_.size(), " (", l->kind(), ") expects input ",
                                         to_string(l->input_shape()), " but the network produces ",
                                         to_string(output_shape()), " there"));
    set_output_shape(l->output_shape());
    l->set_engine(engine_);
    layers_.push_back(std::move(l));
    params_cache_.clear();
    return *layers_.back();
  }

  /// Constructs a layer of type L with the current output shape as its input shape:
  /// `net.emplace<conv2d_layer>(16, 3, 2)`.
  template <class L, class... Args>
  L& emplace(Args&&... args) {
    auto p = std::make_unique<L>(output_shape(), static_cast<Args&&>(args)...);
    L& ref = *p;
    add(std::move(p));
    return ref;
  }

  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  layer& operator[](std::size_t i) { return *layers_.at(i); }
  const layer& operator[](std::size_t i) const { return *layers_.at(i); }
  /// Removes layer i (used by batch-norm folding); the shapes around it must agree.
  void erase(std::size_t i) {
    const tensor_shape before = i == 0 ? input_shape() : layers_[i - 1]->output_shape();
    if (!(layers_.at(i)->output_shape() == before))
      throw invalid_argument("qnas::nn::sequential::erase", "removing layer " + std::to_string(i) + " would change shapes");
    layers_.erase(layers_.begin() + static_cast<std::ptrdiff_t>(i));
    params_cache_.clear();
  }

  std::vector<parameter*> parameters() override {
    std::vector<parameter*> out;
    for (auto& l : layers_)
      for (parameter* p : l->parameters()) out.push_back(p);
    return out;
  }
  void initialize(std::mt19937_64& engine) override {
    for (auto& l : layers_) l->initialize(engine);
  }
  /// The layers store their own state.
  std::vector<state_tensor> state() override { return {}; }
  std::vector<layer*> children() override {
    std::vector<layer*> out;
    for (auto& l : layers_) out.push_back(l.get());
    return out;
  }
  void set_engine(quantizer::engine_type* engine) override {
    engine_ = engine;
    for (auto& l : layers_) l->set_engine(engine);
  }
  /// Memory-saving training: every layer's output is freed as soon as the next layer has run
  /// and no backward pass needs it, and every gradient as soon as the layer before has consumed
  /// it; conv2d also frees its im2col buffers after use. What remains alive from forward to
  /// backward is what the layers hold for their backward pass (their input savers' data, or
  /// their float inputs where they have no saver). Buffers are allocated again at every step.
  /// Together with input savers that encode (train::compressed_activations), this is what cuts
  /// the peak memory of a training step.
  void set_memory_saving(bool on) override {
    layer::set_memory_saving(on);
    for (auto& l : layers_) l->set_memory_saving(on);
  }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override {
    return !layers_.empty() && layers_.front()->reads_input_in_backward();
  }
  void release_input_grad() override {
    if (!layers_.empty()) layers_.front()->release_input_grad();
  }

  /// Sets every parameter gradient to zero (backward accumulates). The parameter list is cached,
  /// so a training step does not allocate; the cache is rebuilt after add/erase.
  void zero_grad() {
    if (params_cache_.empty()) params_cache_ = parameters();
    for (parameter* p : params_cache_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    for (const auto& l : layers_) {
      const layer_description c = l->describe();
      d.params += c.params;
      d.macs += c.macs;
    }
    d.config = std::to_string(layers_.size()) + " layers";
    d.op = layer_op::sequential;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    if (layers_.empty()) {
      check_input(x);
      return x;
    }
    const xt::xarray<float>* a = &x;
    std::size_t producer = layers_.size();  // the layer whose output `a` is (none: the input)
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer& l = *layers_[i];
      // Inference: a conv2d/dense followed by a plain ReLU applies it in its GEMM's store, and
      // the ReLU layer is skipped (same values, one pass over the activations fewer).
      const bool fuse = !training && i + 1 < layers_.size() && l.fuses_relu() && layers_[i + 1]->is_plain_relu();
      a = fuse ? &l.forward_relu(*a) : &l.forward(*a, training);
      // Layer i has consumed the producer's output; free it unless a backward pass reads it.
      if (memory_saving_ && producer < layers_.size() &&
          (!training || (!l.reads_input_in_backward() && !layers_[producer]->reads_output_in_backward())))
        layers_[producer]->release_output();
      producer = i;
      if (fuse) ++i;
    }
    return *a;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_input_grad) override {
    if (layers_.empty()) return need_input_grad ? dy : empty_;
    const xt::xarray<float>* g = &dy;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      g = &layers_[i]->backward(*g, i > 0 || need_input_grad);
      if (memory_saving_ && i + 1 < layers_.size()) layers_[i + 1]->release_input_grad();
    }
    return *g;
  }
  [[nodiscard]] bool reads_own_output() const noexcept override {
    return !layers_.empty() && layers_.back()->reads_output_in_backward();
  }
  void release_output_impl() override {
    if (!layers_.empty()) layers_.back()->release_output();
  }

 private:
  std::vector<std::unique_ptr<layer>> layers_;
  std::vector<parameter*> params_cache_;
};

namespace detail {
inline void collect_descriptions(layer& l, int depth, std::vector<layer_description>& out) {
  layer_description d = l.describe();
  d.depth = depth;
  out.push_back(d);
  for (layer* c : l.children()) collect_descriptions(*c, depth + 1, out);
}
}  // namespace detail

/// Descriptions of every layer of `net` in order, nested layers after their parent (depth + 1).
inline std::vector<layer_description> describe_layers(sequential& net) {
  std::vector<layer_description> out;
  for (layer* c : net.children()) detail::collect_descriptions(*c, 0, out);
  return out;
}

/// A table of the layers: kind, configuration, output shape, parameters, MACs and formats
/// (weights / output activations). Totals at the bottom.
inline void print_summary(std::ostream& os, sequential& net) {
  const auto rows = describe_layers(net);
  std::ostringstream t;
  t << std::left << std::setw(28) << "layer" << std::setw(14) << "output" << std::right << std::setw(10) << "params"
    << std::setw(12) << "MACs" << "  " << std::left << std::setw(22) << "weights" << "activations\n";
  std::size_t params = 0, macs = 0;
  for (const auto& d : rows) {
    std::string name = std::string(static_cast<std::size_t>(2 * d.depth), ' ') + d.kind;
    if (!d.config.empty()) name += " " + d.config;
    t << std::left << std::setw(28) << name << std::setw(14) << to_string(d.output) << std::right << std::setw(10)
      << d.params << std::setw(12) << d.macs << "  " << std::left << std::setw(22)
      << (d.params ? d.weight_format_name : std::string("-")) << d.output_format_name << "\n";
    if (d.depth == 0) {
      params += d.params;
      macs += d.macs;
    }
  }
  t << "input " << to_string(net.input_shape()) << ", total params " << params << ", MACs per sample " << macs << "\n";
  os << t.str();
}

inline std::ostream& operator<<(std::ostream& os, sequential& net) {
  print_summary(os, net);
  return os;
}

}  // namespace qnas::nn
