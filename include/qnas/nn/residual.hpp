// Residual connection: y = x + f(x) around a block of layers (f's output shape must equal x's).
#pragma once

#include <cstddef>
#include <memory>

#include "qnas/nn/sequential.hpp"

namespace qnas::nn {

/// Run-time residual block: owns the inner sequential f and adds its input to f's output.
class residual_layer : public layer {
 public:
  /// An empty block on `in`: append layers to body(), then call seal().
  explicit residual_layer(tensor_shape in) : layer("residual", in, in), body_(std::make_unique<sequential>(in)) {}
  /// Wraps a finished block (throws when its output shape differs from its input shape).
  explicit residual_layer(std::unique_ptr<sequential> body)
      : layer("residual", body->input_shape(), body->input_shape()), body_(std::move(body)) {
    seal();
  }

  sequential& body() noexcept { return *body_; }
  /// Checks that the block maps its input shape to itself.
  void seal() const {
    if (!(body_->output_shape() == body_->input_shape()))
      throw invalid_argument("qnas::nn::residual", "the block maps " + to_string(body_->input_shape()) + " to " +
                                                       to_string(body_->output_shape()) +
                                                       "; a residual add needs equal shapes");
  }

  std::vector<parameter*> parameters() override { return body_->parameters(); }
  void initialize(std::mt19937_64& e) override { body_->initialize(e); }
  std::vector<layer*> children() override { return body_->children(); }
  /// The block's layers store their own state.
  std::vector<state_tensor> state() override { return {}; }
  void set_engine(quantizer::engine_type* e) override {
    engine_ = e;
    body_->set_engine(e);
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    const layer_description b = body_->describe();
    d.op = layer_op::residual;
    d.params = b.params;
    d.macs = b.macs;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    const xt::xarray<float>& f = body_->forward(x, training);
    detail::ensure_batch(y_, n, output_shape());
    const float* a = x.data();
    const float* b = f.data();
    float* y = y_.data();
    for (std::size_t i = 0; i < y_.size(); ++i) y[i] = a[i] + b[i];
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const xt::xarray<float>& g = body_->backward(dy, need_dx);
    if (!need_dx) return empty_;
    detail::ensure_shape(dx_, dy.shape());
    const float* a = dy.data();
    const float* b = g.data();
    float* d = dx_.data();
    for (std::size_t i = 0; i < dx_.size(); ++i) d[i] = a[i] + b[i];
    return dx_;
  }

 private:
  std::unique_ptr<sequential> body_;
  xt::xarray<float> y_, dx_;
};

}  // namespace qnas::nn
