// Fully connected layer: y[n, units] = x[n, in] * W[in, units] + b, one BLAS GEMM each way.
#pragma once

#include <cstddef>
#include <memory>

#include "qnas/nn/blas.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// Run-time dense layer on a flat input. Weights are [in, units] (so x * W needs no transpose).
class dense_layer : public with_buffers<weighted_layer> {
 public:
  dense_layer(tensor_shape in, std::size_t units, layer_formats f = {}, bool use_bias = true)
      : with_buffers<weighted_layer>("dense", in, flat(units), std::move(f)), in_features_(in.size()), units_(units) {
    if (!in.is_flat() || in.c == 0)
      throw invalid_argument("qnas::nn::dense", "needs a non-empty flat input, got " + to_string(in) +
                                                    " (put a flatten layer before it)");
    if (units == 0) throw invalid_argument("qnas::nn::dense", "units must be > 0");
    init_params({in_features_, units_}, units_, use_bias);
  }

  [[nodiscard]] std::size_t units() const noexcept { return units_; }
  [[nodiscard]] bool fuses_relu() const noexcept override { return output_quantizer().is_identity(); }
  void initialize(std::mt19937_64& engine) override { he_normal(engine, in_features_); }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = weighted_layer::describe();
    d.config = std::to_string(units_);
    d.op = layer_op::dense;
    d.macs = in_features_ * units_;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    x_ = saver_ != nullptr ? nullptr : &x;
    detail::ensure_batch(y_, n, output_shape());
    quantize_params();
    // The bias (and, in inference, a ReLU that follows) are applied in the GEMM's store.
    const detail::gemm_epilogue ep{use_bias_ ? bq() : nullptr, !training && relu_epilogue()};
    detail::gemm(false, false, n, units_, in_features_, 1.0f, x.data(), wq(), 0.0f, y_.data(), ep);
    save_input(x, training);
    return y_;
  }

  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t n = dy.shape()[0];
    if (saver_ != nullptr) restore_input(restored_);
    const float* x = saver_ != nullptr ? restored_.data() : x_->data();
    if (float* g = direct_weight_grad()) {
      detail::gemm(true, false, in_features_, units_, n, 1.0f, x, dy.data(), 1.0f, g);
    } else {
      detail::gemm(true, false, in_features_, units_, n, 1.0f, x, dy.data(), 0.0f, weight_grad_scratch());
      accumulate_weight_scratch();
    }
    if (memory_saving_) detail::free_buffer(restored_);
    accumulate_bias_grad_from_rows(dy.data(), n);
    if (!need_dx) return empty_;
    detail::ensure_batch(dx_, n, input_shape());
    detail::gemm(false, true, n, in_features_, units_, 1.0f, dy.data(), wq(), 0.0f, dx_.data());
    return dx_;
  }

 public:
  [[nodiscard]] bool accepts_input_saver() const noexcept override { return true; }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return saver_ == nullptr; }

 private:
  std::size_t in_features_, units_;
  const xt::xarray<float>* x_ = nullptr;
  xt::xarray<float> restored_;
};

/// Compile-time dense layer: `dense<10>`; `dense<10, fixed_point<8, 1>, fixed_point<8, 3>>`
/// quantizes weights and bias; `Output` quantizes the output activations.
template <std::size_t Units, class Weights = unquantized, class Bias = unquantized, class Output = unquantized,
          bool UseBias = true>
struct dense {
  static_assert(Units > 0, "qnas::nn::dense<Units, ...>: Units must be > 0");
  static_assert(format_argument<Weights>, "qnas::nn::dense<Units, Weights, ...>: Weights must be a number_format or unquantized");
  static_assert(format_argument<Bias>, "qnas::nn::dense<Units, Weights, Bias, ...>: Bias must be a number_format or unquantized");
  static_assert(format_argument<Output>, "qnas::nn::dense<..., Output>: Output must be a number_format or unquantized");

  static constexpr std::size_t units = Units;
  static constexpr const char* name() { return "dense"; }
  static constexpr tensor_shape output_shape(tensor_shape) { return flat(Units); }
  static constexpr std::size_t params(tensor_shape in) {
    return in.size() * Units + (UseBias ? Units : 0) + detail::weight_step_count<Weights>(Units);
  }
  static constexpr std::size_t macs(tensor_shape in) { return in.size() * Units; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    static_assert(In.rank == 1,
                  "qnas::nn::dense<Units>: the input must be flat (rank 1); put flatten (or global_avg_pool) "
                  "before it (see the layer Index and input shape In in this instantiation)");
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    return std::make_unique<dense_layer>(in, Units, detail::formats_of<Weights, Bias, Output>(), UseBias);
  }
};

}  // namespace qnas::nn
