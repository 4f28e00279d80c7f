// Activation layers: relu, relu6, swish, softmax (elementwise on any shape; softmax on flat).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <type_traits>

#include "qnas/core/config.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

namespace detail {
struct relu_op;

/// An elementwise activation: `Op::f(x)` forward, `Op::grad(x, y, dy)` the input gradient from input, output and output gradient.
template <class Op>
class elementwise_layer : public with_buffers<layer> {
 public:
  explicit elementwise_layer(tensor_shape in) : with_buffers<layer>(Op::name, in, in) {
    if (!in.valid()) throw invalid_argument(std::string("qnas::nn::") + Op::name, "needs a non-empty input");
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.op = layer_op::activation;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    x_ = saver_ != nullptr ? nullptr : &x;
    ensure_batch(y_, n, output_shape());
    const float* QNAS_RESTRICT xi = x.data();
    float* QNAS_RESTRICT y = y_.data();
    const std::size_t size = x.size();
    for (std::size_t i = 0; i < size; ++i) y[i] = Op::f(xi[i]);
    save_input(x, training);
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    if (!need_dx) return empty_;
    const std::size_t size = dy.size();
    if (saver_ != nullptr) {
      // The input is restored into the gradient buffer and replaced by the gradient element by
      // element; the output is recomputed from it. Neither had to be kept from forward.
      restore_input(dx_);
      const float* QNAS_RESTRICT g = dy.data();
      float* QNAS_RESTRICT dx = dx_.data();
      for (std::size_t i = 0; i < size; ++i) {
        const float xi = dx[i];
        dx[i] = Op::grad(xi, Op::f(xi), g[i]);
      }
      return dx_;
    }
    ensure_batch(dx_, dy.shape()[0], input_shape());
    const float* QNAS_RESTRICT g = dy.data();
    float* QNAS_RESTRICT dx = dx_.data();
    // Restrict-qualified so the loop vectorizes (the buffers are distinct by construction).
    const float* QNAS_RESTRICT xi = x_->data();
    const float* QNAS_RESTRICT y = y_.data();
    for (std::size_t i = 0; i < size; ++i) dx[i] = Op::grad(xi[i], y[i], g[i]);
    return dx_;
  }

 public:
  [[nodiscard]] bool accepts_input_saver() const noexcept override { return true; }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return saver_ == nullptr; }
  [[nodiscard]] bool is_plain_relu() const noexcept override {
    return std::is_same_v<Op, relu_op> && output_quantizer().is_identity();
  }

 protected:
  [[nodiscard]] bool reads_own_output() const noexcept override { return saver_ == nullptr; }

 private:
  const xt::xarray<float>* x_ = nullptr;
};

struct relu_op {
  static constexpr const char* name = "relu";
  static float f(float x) noexcept { return x > 0.0f ? x : 0.0f; }
  static float grad(float x, float, float g) noexcept { return x > 0.0f ? g : 0.0f; }
};
struct relu6_op {
  static constexpr const char* name = "relu6";
  static float f(float x) noexcept { return std::min(std::max(x, 0.0f), 6.0f); }
  static float grad(float x, float, float g) noexcept { return (x > 0.0f && x < 6.0f) ? g : 0.0f; }
};
/// swish(x) = x * sigmoid(x); d/dx = s + x * s * (1 - s) = s + y * (1 - s).
struct swish_op {
  static constexpr const char* name = "swish";
  static float f(float x) noexcept { return x / (1.0f + std::exp(-x)); }
  static float grad(float x, float y, float g) noexcept {
    const float s = 1.0f / (1.0f + std::exp(-x));
    return g * (s + y * (1.0f - s));
  }
};
struct sigmoid_op {
  static constexpr const char* name = "sigmoid";
  static float f(float x) noexcept { return 1.0f / (1.0f + std::exp(-x)); }
  static float grad(float, float y, float g) noexcept { return g * y * (1.0f - y); }
};

template <class Op>
struct elementwise_spec {
  static constexpr const char* name() { return Op::name; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return in; }
  static constexpr std::size_t params(tensor_shape) { return 0; }
  static constexpr std::size_t macs(tensor_shape) { return 0; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {}
  static std::unique_ptr<layer> make(tensor_shape in) { return std::make_unique<elementwise_layer<Op>>(in); }
};
}  // namespace detail

using relu_layer = detail::elementwise_layer<detail::relu_op>;
using relu6_layer = detail::elementwise_layer<detail::relu6_op>;
using swish_layer = detail::elementwise_layer<detail::swish_op>;
using sigmoid_layer = detail::elementwise_layer<detail::sigmoid_op>;

/// max(x, 0). Quantize its output with `quantized<relu, F>` (QKeras quantized_relu).
struct relu : detail::elementwise_spec<detail::relu_op> {};
/// min(max(x, 0), 6), MobileNet's bounded rectifier.
struct relu6 : detail::elementwise_spec<detail::relu6_op> {};
/// x * sigmoid(x) (a.k.a. SiLU), MobileNetV3 / EfficientNet.
struct swish : detail::elementwise_spec<detail::swish_op> {};
/// 1 / (1 + exp(-x)).
struct sigmoid : detail::elementwise_spec<detail::sigmoid_op> {};

/// Run-time softmax over the features of a flat input (probabilities for inference; train on
/// logits with the softmax cross-entropy loss, which is faster and more accurate).
class softmax_layer : public with_buffers<layer> {
 public:
  explicit softmax_layer(tensor_shape in) : with_buffers<layer>("softmax", in, in) {
    if (!in.is_flat() || in.c == 0) throw invalid_argument("qnas::nn::softmax", "needs a flat input, got " + to_string(in));
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.op = layer_op::activation;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x), k = input_shape().c;
    detail::ensure_batch(y_, n, output_shape());
    for (std::size_t r = 0; r < n; ++r) {
      const float* xi = x.data() + r * k;
      float* y = y_.data() + r * k;
      const float m = *std::max_element(xi, xi + k);
      float s = 0.0f;
      for (std::size_t j = 0; j < k; ++j) s += (y[j] = std::exp(xi[j] - m));
      for (std::size_t j = 0; j < k; ++j) y[j] /= s;
    }
    return y_;
  }
  // dx = y * (dy - sum(dy * y))
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    if (!need_dx) return empty_;
    const std::size_t n = dy.shape()[0], k = input_shape().c;
    detail::ensure_batch(dx_, n, input_shape());
    for (std::size_t r = 0; r < n; ++r) {
      const float* g = dy.data() + r * k;
      const float* y = y_.data() + r * k;
      float* dx = dx_.data() + r * k;
      float dot = 0.0f;
      for (std::size_t j = 0; j < k; ++j) dot += g[j] * y[j];
      for (std::size_t j = 0; j < k; ++j) dx[j] = y[j] * (g[j] - dot);
    }
    return dx_;
  }

 public:
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return false; }

 protected:
  [[nodiscard]] bool reads_own_output() const noexcept override { return true; }  // dx is computed from y
};

/// Softmax over the features of a flat input.
struct softmax {
  static constexpr const char* name() { return "softmax"; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return in; }
  static constexpr std::size_t params(tensor_shape) { return 0; }
  static constexpr std::size_t macs(tensor_shape) { return 0; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    static_assert(In.rank == 1, "qnas::nn::softmax: the input must be flat (rank 1); put flatten before it (see the "
                                "layer Index and input shape In in this instantiation)");
  }
  static std::unique_ptr<layer> make(tensor_shape in) { return std::make_unique<softmax_layer>(in); }
};

/// Run-time flatten: [h, w, c] -> [h*w*c] (NHWC order, so a copy of the same bytes).
class flatten_layer : public with_buffers<layer> {
 public:
  explicit flatten_layer(tensor_shape in) : with_buffers<layer>("flatten", in, flat(in.size())) {
    if (!in.valid()) throw invalid_argument("qnas::nn::flatten", "needs a non-empty input");
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.op = layer_op::flatten;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x);
    detail::ensure_batch(y_, n, output_shape());
    std::copy(x.data(), x.data() + x.size(), y_.data());
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    if (!need_dx) return empty_;
    detail::ensure_batch(dx_, dy.shape()[0], input_shape());
    std::copy(dy.data(), dy.data() + dy.size(), dx_.data());
    return dx_;
  }

 public:
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return false; }
};

/// Flattens an image [h, w, c] into a feature vector [h*w*c].
struct flatten {
  static constexpr const char* name() { return "flatten"; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return nn::flat(in.size()); }
  static constexpr std::size_t params(tensor_shape) { return 0; }
  static constexpr std::size_t macs(tensor_shape) { return 0; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {}
  static std::unique_ptr<layer> make(tensor_shape in) { return std::make_unique<flatten_layer>(in); }
};

}  // namespace qnas::nn
