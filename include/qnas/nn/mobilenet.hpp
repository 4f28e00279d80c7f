// MobileNetV2/V3 building blocks: squeeze-and-excite and the inverted bottleneck (expand,
// depthwise, optional squeeze-excite, linear projection, residual when shapes allow).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <span>

#include "qnas/data/random.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/blas.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// Squeeze-and-excite (Hu et al. 2018; MobileNetV3): per-channel gates from the image's channel
/// means, g = sigmoid(relu(mean(x) W1 + b1) W2 + b2), y = x * g. W1 is [c, r], W2 [r, c] with
/// r = max(1, c / reduction). The weight quantizer applies to W1 and W2 (biases stay float).
class squeeze_excite_layer : public layer {
 public:
  explicit squeeze_excite_layer(tensor_shape in, std::size_t reduction = 4, quantizer weights = {})
      : layer("squeeze_excite", in, in), c_(in.c), r_(std::max<std::size_t>(1, in.c / std::max<std::size_t>(1, reduction))),
        wq_(std::move(weights)) {
    if (!in.is_image() || !in.valid())
      throw invalid_argument("qnas::nn::squeeze_excite", "needs a non-empty image input, got " + to_string(in));
    auto make = [](const char* name, std::vector<std::size_t> s, bool decay) {
      return parameter{name, xt::zeros<float>(s), xt::zeros<float>(s), decay};
    };
    w1_ = make("squeeze_excite.w1", {c_, r_}, true);
    b1_ = make("squeeze_excite.b1", {r_}, false);
    w2_ = make("squeeze_excite.w2", {r_, c_}, true);
    b2_ = make("squeeze_excite.b2", {c_}, false);
  }

  [[nodiscard]] std::size_t reduced() const noexcept { return r_; }
  std::vector<parameter*> parameters() override { return {&w1_, &b1_, &w2_, &b2_}; }
  void initialize(std::mt19937_64& e) override {
    // Portable normal draws (random.hpp): the same seed gives the same weights with any standard library.
    qnas::detail::fill_normal(std::span<float>(w1_.value.data(), w1_.value.size()),
                              std::sqrt(2.0 / static_cast<double>(c_)), e);
    qnas::detail::fill_normal(std::span<float>(w2_.value.data(), w2_.value.size()),
                              std::sqrt(1.0 / static_cast<double>(r_)), e);
    std::fill(b1_.value.begin(), b1_.value.end(), 0.0f);
    std::fill(b2_.value.begin(), b2_.value.end(), 0.0f);
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.config = "r=" + std::to_string(r_);
    d.params = 2 * c_ * r_ + r_ + c_;
    d.macs = macs_per_sample(input_shape(), r_);
    d.weight_format = wq_.info();
    d.weight_format_name = wq_.name();
    return d;
  }
  static constexpr std::size_t macs_per_sample(tensor_shape in, std::size_t r) { return 2 * in.c * r + in.size(); }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x), hw = input_shape().h * input_shape().w;
    x_ = &x;
    detail::ensure_batch(y_, n, output_shape());
    resize(s_, n, c_);
    resize(z_, n, r_);
    resize(g_, n, c_);
    const float* w1 = w1_.value.data();
    const float* w2 = w2_.value.data();
    if (!wq_.is_identity()) {
      detail::quantize_into(wq_, w1_.value, w1q_, engine_);
      detail::quantize_into(wq_, w2_.value, w2q_, engine_);
      w1 = w1q_.data();
      w2 = w2q_.data();
    }
    std::fill(s_.begin(), s_.end(), 0.0f);
    for (std::size_t b = 0; b < n; ++b) {
      float* s = s_.data() + b * c_;
      for (std::size_t p = 0; p < hw; ++p) {
        const float* xi = x.data() + (b * hw + p) * c_;
        for (std::size_t j = 0; j < c_; ++j) s[j] += xi[j];
      }
      for (std::size_t j = 0; j < c_; ++j) s[j] /= static_cast<float>(hw);
    }
    detail::broadcast_rows(b1_.value.data(), n, r_, z_.data());
    detail::gemm(false, false, n, r_, c_, 1.0f, s_.data(), w1, 1.0f, z_.data());
    for (auto& v : z_) v = std::max(v, 0.0f);
    detail::broadcast_rows(b2_.value.data(), n, c_, g_.data());
    detail::gemm(false, false, n, c_, r_, 1.0f, z_.data(), w2, 1.0f, g_.data());
    for (auto& v : g_) v = 1.0f / (1.0f + std::exp(-v));
    for (std::size_t b = 0; b < n; ++b) {
      const float* g = g_.data() + b * c_;
      for (std::size_t p = 0; p < hw; ++p) {
        const std::size_t o = (b * hw + p) * c_;
        for (std::size_t j = 0; j < c_; ++j) y_.data()[o + j] = x.data()[o + j] * g[j];
      }
    }
    return y_;
  }

  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t n = dy.shape()[0], hw = input_shape().h * input_shape().w;
    const float* x = x_->data();
    // dg = sum_p dy * x; da2 = dg * g * (1 - g)
    resize(da2_, n, c_);
    std::fill(da2_.begin(), da2_.end(), 0.0f);
    for (std::size_t b = 0; b < n; ++b) {
      float* d = da2_.data() + b * c_;
      for (std::size_t p = 0; p < hw; ++p) {
        const std::size_t o = (b * hw + p) * c_;
        for (std::size_t j = 0; j < c_; ++j) d[j] += dy.data()[o + j] * x[o + j];
      }
      const float* g = g_.data() + b * c_;
      for (std::size_t j = 0; j < c_; ++j) d[j] *= g[j] * (1.0f - g[j]);
    }
    const float* w1 = wq_.is_identity() ? w1_.value.data() : w1q_.data();
    const float* w2 = wq_.is_identity() ? w2_.value.data() : w2q_.data();
    accumulate_weight(w2_, [&](float* out, float beta) {
      detail::gemm(true, false, r_, c_, n, 1.0f, z_.data(), da2_.data(), beta, out);
    });
    detail::add_column_sums(da2_.data(), n, c_, b2_.grad.data());
    resize(dz_, n, r_);
    detail::gemm(false, true, n, r_, c_, 1.0f, da2_.data(), w2, 0.0f, dz_.data());
    for (std::size_t i = 0; i < dz_.size(); ++i)
      if (z_.data()[i] <= 0.0f) dz_.data()[i] = 0.0f;
    accumulate_weight(w1_, [&](float* out, float beta) {
      detail::gemm(true, false, c_, r_, n, 1.0f, s_.data(), dz_.data(), beta, out);
    });
    detail::add_column_sums(dz_.data(), n, r_, b1_.grad.data());
    if (!need_dx) return empty_;
    resize(ds_, n, c_);
    detail::gemm(false, true, n, c_, r_, 1.0f / static_cast<float>(hw), dz_.data(), w1, 0.0f, ds_.data());
    detail::ensure_batch(dx_, n, input_shape());
    for (std::size_t b = 0; b < n; ++b) {
      const float* g = g_.data() + b * c_;
      const float* ds = ds_.data() + b * c_;
      for (std::size_t p = 0; p < hw; ++p) {
        const std::size_t o = (b * hw + p) * c_;
        for (std::size_t j = 0; j < c_; ++j) dx_.data()[o + j] = dy.data()[o + j] * g[j] + ds[j];
      }
    }
    return dx_;
  }

 private:
  static void resize(xt::xarray<float>& a, std::size_t rows, std::size_t cols) {
    detail::ensure_shape(a, std::array<std::size_t, 2>{rows, cols});
  }
  /// gemm_into(out, beta) computes the gradient w.r.t. the (quantized) weight; float32 writes
  /// straight into grad, a quantized weight goes through the clipped straight-through mask.
  template <class Gemm>
  void accumulate_weight(parameter& w, Gemm&& gemm_into) {
    if (wq_.is_identity()) {
      gemm_into(w.grad.data(), 1.0f);
      return;
    }
    detail::ensure_shape(gw_, w.value.shape());
    gemm_into(gw_.data(), 0.0f);
    detail::ste_mask_accumulate(wq_.info(), w.value.data(), gw_.data(), w.grad.data(), w.grad.size());
  }

  std::size_t c_, r_;
  quantizer wq_;
  parameter w1_, b1_, w2_, b2_;
  const xt::xarray<float>* x_ = nullptr;
  xt::xarray<float> y_, dx_, s_, z_, g_, da2_, dz_, ds_, w1q_, w2q_, gw_;
};

/// The activation inside an inverted bottleneck: relu6 (MobileNetV2) or swish (the smooth
/// MobileNetV3 / EfficientNet choice).
enum class block_activation { relu6, swish };

/// Hyper-parameters of an inverted bottleneck (MobileNetV2, Sandler et al. 2018; with
/// squeeze-excite as in MobileNetV3, Howard et al. 2019).
struct inverted_bottleneck_config {
  std::size_t expansion = 6;   ///< hidden channels = expansion * input channels (1: no expand conv)
  std::size_t kernel = 3;      ///< depthwise kernel
  std::size_t filters = 16;    ///< output channels
  std::size_t stride = 1;      ///< depthwise stride
  bool squeeze_excite = false;
  block_activation activation = block_activation::relu6;
  /// weights: the three convolutions and the SE weights; output: the activations and the
  /// block output. Biases are absent (each convolution is followed by batch norm).
  layer_formats formats{};
};

/// Builds the block as run-time layers: [1x1 conv, BN, act] (when expansion > 1), kxk depthwise
/// conv (stride), BN, act, [squeeze-excite], 1x1 conv, BN; wrapped in a residual add when
/// stride is 1 and the input has `filters` channels.
inline std::unique_ptr<layer> make_inverted_bottleneck(tensor_shape in, const inverted_bottleneck_config& c) {
  if (c.expansion == 0 || c.filters == 0)
    throw invalid_argument("qnas::nn::inverted_bottleneck", "expansion and filters must be > 0");
  const layer_formats conv_f{c.formats.weights, {}, {}};
  auto s = std::make_unique<sequential>(in);
  auto activation = [&] {
    layer& a = c.activation == block_activation::relu6 ? static_cast<layer&>(s->emplace<relu6_layer>())
                                                       : static_cast<layer&>(s->emplace<swish_layer>());
    a.set_output_quantizer(c.formats.output);
  };
  if (c.expansion > 1) {
    s->emplace<conv2d_layer>(in.c * c.expansion, 1, 1, padding::same, conv_f, false);
    s->emplace<batch_norm_layer>();
    activation();
  }
  s->emplace<depthwise_conv2d_layer>(c.kernel, c.stride, padding::same, conv_f, false);
  s->emplace<batch_norm_layer>();
  activation();
  if (c.squeeze_excite) s->emplace<squeeze_excite_layer>(4, c.formats.weights);
  s->emplace<conv2d_layer>(c.filters, 1, 1, padding::same, conv_f, false);
  s->emplace<batch_norm_layer>();
  std::unique_ptr<layer> block;
  if (c.stride == 1 && in.c == c.filters)
    block = std::make_unique<residual_layer>(std::move(s));
  else
    block = std::move(s);
  block->set_output_quantizer(c.formats.output);
  return block;
}

/// Compile-time inverted bottleneck: `inverted_bottleneck<6, 3, 24>` (expansion 6, 3x3
/// depthwise, 24 output channels), `inverted_bottleneck<4, 5, 40, true, 2>` (with squeeze-excite,
/// stride 2).
template <std::size_t Expansion, std::size_t Kernel, std::size_t Filters, bool SqueezeExcite = false,
          std::size_t Stride = 1, class Weights = unquantized, class Output = unquantized>
struct inverted_bottleneck {
  static_assert(Expansion > 0, "qnas::nn::inverted_bottleneck<Expansion, ...>: Expansion must be > 0");
  static_assert(Kernel > 0, "qnas::nn::inverted_bottleneck<Expansion, Kernel, ...>: Kernel must be > 0");
  static_assert(Filters > 0, "qnas::nn::inverted_bottleneck<Expansion, Kernel, Filters, ...>: Filters must be > 0");
  static_assert(Stride > 0, "qnas::nn::inverted_bottleneck<..., Stride, ...>: Stride must be > 0");
  static_assert(format_argument<Weights> && format_argument<Output>,
                "qnas::nn::inverted_bottleneck<..., Weights, Output>: formats must be number_formats or unquantized");

  static constexpr const char* name() { return "inverted_bottleneck"; }
  static constexpr tensor_shape output_shape(tensor_shape in) {
    return image(conv_output_size(in.h, Kernel, Stride, padding::same),
                 conv_output_size(in.w, Kernel, Stride, padding::same), Filters);
  }
  static constexpr std::size_t hidden(tensor_shape in) { return in.c * Expansion; }
  static constexpr std::size_t reduced(tensor_shape in) { return std::max<std::size_t>(1, hidden(in) / 4); }
  /// Counts what the built layers hold: weights, batch-norm scale and shift, and the learned
  /// steps of an lsq weight format (one per tensor or per output channel) in each of the three
  /// convolutions. Squeeze-excite keeps no steps: it quantizes with its weights' initial steps.
  static constexpr std::size_t params(tensor_shape in) {
    const std::size_t m = hidden(in);
    std::size_t p = Expansion > 1 ? in.c * m + 2 * m + detail::weight_step_count<Weights>(m) : 0;
    p += Kernel * Kernel * m + 2 * m + detail::weight_step_count<Weights>(m);
    if (SqueezeExcite) p += 2 * m * reduced(in) + reduced(in) + m;
    return p + m * Filters + 2 * Filters + detail::weight_step_count<Weights>(Filters);
  }
  static constexpr std::size_t macs(tensor_shape in) {
    const std::size_t m = hidden(in);
    const tensor_shape o = output_shape(in);
    const std::size_t hw = in.h * in.w, ohw = o.h * o.w;
    std::size_t t = Expansion > 1 ? hw * in.c * m + hw * m : 0;  // expand conv + its BN
    t += ohw * Kernel * Kernel * m + ohw * m;                      // depthwise + BN
    if (SqueezeExcite) t += squeeze_excite_layer::macs_per_sample(image(o.h, o.w, m), reduced(in));
    return t + ohw * m * Filters + ohw * Filters;                 // project + BN
  }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    static_assert(In.rank == 3, "qnas::nn::inverted_bottleneck: the input must be an image [h, w, c] (see the layer "
                                "Index and input shape In in this instantiation)");
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    return make_inverted_bottleneck(
        in, {Expansion, Kernel, Filters, Stride, SqueezeExcite, block_activation::relu6,
             {detail::to_quantizer<Weights>(), {}, detail::to_quantizer<Output>()}});
  }
};

}  // namespace qnas::nn
