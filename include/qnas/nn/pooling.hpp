// Pooling layers on NHWC: max_pool, avg_pool (windows) and global_avg_pool (-> flat channels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// Run-time max or average pool over k x k windows. Average pooling divides by the number of
/// window positions inside the image (padding is not counted, as in TensorFlow).
class pool_layer : public with_buffers<layer> {
 public:
  enum class mode { max, average };

  pool_layer(tensor_shape in, mode m, std::size_t kernel, std::size_t stride, padding pad = padding::valid)
      : with_buffers<layer>(m == mode::max ? "max_pool" : "avg_pool", in, out_shape(in, kernel, stride, pad)),
        g_(window_geometry::of(in, kernel, stride, pad)), mode_(m), pad_(pad) {}

  [[nodiscard]] const window_geometry& geometry() const noexcept { return g_; }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.config = detail::window_config(g_.kernel_h, g_.stride, pad_);
    d.op = mode_ == mode::max ? layer_op::max_pool : layer_op::avg_pool;
    d.window = {g_.kernel_h, g_.stride, pad_};
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x), c = g_.channels;
    detail::ensure_batch(y_, n, output_shape());
    if (mode_ == mode::max) argmax_.resize(y_.size());
    counts_.resize(g_.out_h * g_.out_w);
    float* y = y_.data();
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t oy = 0; oy < g_.out_h; ++oy)
        for (std::size_t ox = 0; ox < g_.out_w; ++ox) {
          const std::size_t out_off = ((b * g_.out_h + oy) * g_.out_w + ox) * c;
          float* yo = y + out_off;
          std::uint32_t* am = mode_ == mode::max ? argmax_.data() + out_off : nullptr;
          for (std::size_t j = 0; j < c; ++j) yo[j] = mode_ == mode::max ? -std::numeric_limits<float>::infinity() : 0.0f;
          std::size_t count = 0;
          for_window(b, oy, ox, [&](std::size_t in_off) {
            const float* xi = x.data() + in_off;
            ++count;
            if (am) {
              for (std::size_t j = 0; j < c; ++j)
                if (xi[j] > yo[j]) {
                  yo[j] = xi[j];
                  am[j] = static_cast<std::uint32_t>(in_off + j - b * input_shape().size());
                }
            } else {
              for (std::size_t j = 0; j < c; ++j) yo[j] += xi[j];
            }
          });
          counts_[oy * g_.out_w + ox] = count;
          if (!am) {
            const float inv = 1.0f / static_cast<float>(count);
            for (std::size_t j = 0; j < c; ++j) yo[j] *= inv;
          }
        }
    return y_;
  }

  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    if (!need_dx) return empty_;
    const std::size_t n = dy.shape()[0], c = g_.channels, per = input_shape().size();
    detail::ensure_batch(dx_, n, input_shape());
    std::fill(dx_.begin(), dx_.end(), 0.0f);
    const float* g = dy.data();
    float* dx = dx_.data();
    if (mode_ == mode::max) {
      const std::size_t out_per = output_shape().size();
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t i = 0; i < out_per; ++i) dx[b * per + argmax_[b * out_per + i]] += g[b * out_per + i];
      return dx_;
    }
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t oy = 0; oy < g_.out_h; ++oy)
        for (std::size_t ox = 0; ox < g_.out_w; ++ox) {
          const float* go = g + ((b * g_.out_h + oy) * g_.out_w + ox) * c;
          const float inv = 1.0f / static_cast<float>(counts_[oy * g_.out_w + ox]);
          for_window(b, oy, ox, [&](std::size_t in_off) {
            float* d = dx + in_off;
            for (std::size_t j = 0; j < c; ++j) d[j] += go[j] * inv;
          });
        }
    return dx_;
  }

 public:
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return false; }

 private:
  static tensor_shape out_shape(tensor_shape in, std::size_t k, std::size_t s, padding p) {
    detail::check_window("qnas::nn::pool", in, k, s, p);
    return image(conv_output_size(in.h, k, s, p), conv_output_size(in.w, k, s, p), in.c);
  }
  template <class Fn>
  void for_window(std::size_t b, std::size_t oy, std::size_t ox, Fn&& fn) const {
    for (std::size_t ky = 0; ky < g_.kernel_h; ++ky) {
      const auto iy = static_cast<std::ptrdiff_t>(oy * g_.stride + ky) - static_cast<std::ptrdiff_t>(g_.pad_top);
      if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g_.in_h)) continue;
      for (std::size_t kx = 0; kx < g_.kernel_w; ++kx) {
        const auto ix = static_cast<std::ptrdiff_t>(ox * g_.stride + kx) - static_cast<std::ptrdiff_t>(g_.pad_left);
        if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(g_.in_w)) continue;
        fn(((b * g_.in_h + static_cast<std::size_t>(iy)) * g_.in_w + static_cast<std::size_t>(ix)) * g_.channels);
      }
    }
  }

  window_geometry g_;
  mode mode_;
  padding pad_;
  std::vector<std::uint32_t> argmax_;  // per output element: index within its sample's input
  std::vector<std::size_t> counts_;
};

/// Run-time global average pool: [h, w, c] -> [c].
class global_avg_pool_layer : public with_buffers<layer> {
 public:
  explicit global_avg_pool_layer(tensor_shape in) : with_buffers<layer>("global_avg_pool", in, flat(in.c)) {
    if (!in.is_image() || !in.valid())
      throw invalid_argument("qnas::nn::global_avg_pool", "needs a non-empty image input, got " + to_string(in));
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.op = layer_op::global_avg_pool;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x), c = input_shape().c, hw = input_shape().h * input_shape().w;
    detail::ensure_batch(y_, n, output_shape());
    std::fill(y_.begin(), y_.end(), 0.0f);
    const float inv = 1.0f / static_cast<float>(hw);
    for (std::size_t b = 0; b < n; ++b) {
      float* y = y_.data() + b * c;
      for (std::size_t p = 0; p < hw; ++p) {
        const float* xi = x.data() + (b * hw + p) * c;
        for (std::size_t j = 0; j < c; ++j) y[j] += xi[j];
      }
      for (std::size_t j = 0; j < c; ++j) y[j] *= inv;
    }
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    if (!need_dx) return empty_;
    const std::size_t n = dy.shape()[0], c = input_shape().c, hw = input_shape().h * input_shape().w;
    detail::ensure_batch(dx_, n, input_shape());
    const float inv = 1.0f / static_cast<float>(hw);
    for (std::size_t b = 0; b < n; ++b) {
      const float* g = dy.data() + b * c;
      for (std::size_t p = 0; p < hw; ++p) {
        float* d = dx_.data() + (b * hw + p) * c;
        for (std::size_t j = 0; j < c; ++j) d[j] = g[j] * inv;
      }
    }
    return dx_;
  }

 public:
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return false; }
};

namespace detail {
template <pool_layer::mode Mode, std::size_t Size, std::size_t Stride, padding Padding>
struct pool_spec {
  static_assert(Size > 0, "qnas::nn::max_pool/avg_pool<Size, ...>: Size must be > 0");
  static_assert(Stride > 0, "qnas::nn::max_pool/avg_pool<Size, Stride, ...>: Stride must be > 0");
  static constexpr const char* name() { return Mode == pool_layer::mode::max ? "max_pool" : "avg_pool"; }
  static constexpr tensor_shape output_shape(tensor_shape in) {
    return image(conv_output_size(in.h, Size, Stride, Padding), conv_output_size(in.w, Size, Stride, Padding), in.c);
  }
  static constexpr std::size_t params(tensor_shape) { return 0; }
  static constexpr std::size_t macs(tensor_shape) { return 0; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    check_window_spec<Size, Stride, Padding, Index, In>();
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    return std::make_unique<pool_layer>(in, Mode, Size, Stride, Padding);
  }
};
}  // namespace detail

/// Max pool over Size x Size windows (stride defaults to Size, valid padding).
template <std::size_t Size, std::size_t Stride = Size, padding Padding = padding::valid>
struct max_pool : detail::pool_spec<pool_layer::mode::max, Size, Stride, Padding> {};
/// Average pool over Size x Size windows (stride defaults to Size, valid padding).
template <std::size_t Size, std::size_t Stride = Size, padding Padding = padding::valid>
struct avg_pool : detail::pool_spec<pool_layer::mode::average, Size, Stride, Padding> {};

/// Averages each channel over the image: [h, w, c] -> [c].
struct global_avg_pool {
  static constexpr const char* name() { return "global_avg_pool"; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return flat(in.c); }
  static constexpr std::size_t params(tensor_shape) { return 0; }
  static constexpr std::size_t macs(tensor_shape) { return 0; }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    static_assert(In.rank == 3, "qnas::nn::global_avg_pool: the input must be an image [h, w, c] (see the layer "
                                "Index and input shape In in this instantiation)");
  }
  static std::unique_ptr<layer> make(tensor_shape in) { return std::make_unique<global_avg_pool_layer>(in); }
};

}  // namespace qnas::nn
