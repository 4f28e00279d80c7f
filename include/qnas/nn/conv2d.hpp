// 2-D convolutions on NHWC: im2col + one GEMM (conv2d; inference reads windows through an indirection buffer), and a direct depthwise kernel.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "qnas/core/config.hpp"
#include "qnas/nn/blas.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

namespace detail {

/// Copies n floats. im2col copies many short rows (kw*c floats: 3 for a 3x3 kernel on one
/// channel), where a libc memcpy call costs more than the copy: short rows use fixed-size
/// copies the compiler inlines as vector moves, long rows memcpy.
QNAS_ALWAYS_INLINE void copy_floats(float* QNAS_RESTRICT d, const float* QNAS_RESTRICT s, std::size_t n) noexcept {
  if (n >= 64) {
    std::memcpy(d, s, n * sizeof(float));
    return;
  }
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) __builtin_memcpy(d + i, s + i, 8 * sizeof(float));
  if (n - i >= 4) {
    __builtin_memcpy(d + i, s + i, 4 * sizeof(float));
    i += 4;
  }
  if (n - i >= 2) {
    __builtin_memcpy(d + i, s + i, 2 * sizeof(float));
    i += 2;
  }
  if (n - i >= 1) d[i] = s[i];
}

/// Writes the kh x kw x c window at (y0, x0) of one NHWC image (top-left corner, may lie in the
/// padding) as one im2col row of kh*kw*c floats; taps in the padding are zero.
inline void window_row(const float* img, const window_geometry& g, std::ptrdiff_t y0, std::ptrdiff_t x0, float* row) {
  const std::size_t c = g.channels, kw = g.kernel_w, row_len = kw * c;
  for (std::size_t ky = 0; ky < g.kernel_h; ++ky, row += row_len) {
    const std::ptrdiff_t iy = y0 + static_cast<std::ptrdiff_t>(ky);
    if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.in_h)) {
      std::fill(row, row + row_len, 0.0f);
      continue;
    }
    const float* src = img + static_cast<std::size_t>(iy) * g.in_w * c;
    for (std::size_t kx = 0; kx < kw; ++kx) {
      const std::ptrdiff_t ix = x0 + static_cast<std::ptrdiff_t>(kx);
      if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(g.in_w))
        std::fill(row + kx * c, row + (kx + 1) * c, 0.0f);
      else
        copy_floats(row + kx * c, src + static_cast<std::size_t>(ix) * c, c);
    }
  }
}

/// im2col for NHWC: row (n, oy, ox) of `cols` holds the kh x kw x c window in HWC order, so
/// cols[n*oh*ow, kh*kw*c] x W[kh*kw*c, cout] (HWIO weights) is the NHWC output directly.
/// A kernel row of an NHWC image is kw*c contiguous floats, copied in one go when in bounds.
/// RowLen is kw*c when known at compile time (0: at run time): a first layer on one channel
/// copies rows of 3 or 5 floats, where the copy must compile to a couple of moves.
template <std::size_t RowLen>
void im2col_rows(const float* x, std::size_t n, const window_geometry& g, float* cols) {
  const std::size_t c = g.channels, kw = g.kernel_w, kh = g.kernel_h;
  const std::size_t row_len = RowLen != 0 ? RowLen : kw * c;
  const auto copy_row = [&](float* d, const float* src) {
    if constexpr (RowLen != 0)
      __builtin_memcpy(d, src, RowLen * sizeof(float));
    else
      copy_floats(d, src, row_len);
  };
  for (std::size_t b = 0; b < n; ++b) {
    const float* img = x + b * g.in_h * g.in_w * c;
    for (std::size_t oy = 0; oy < g.out_h; ++oy) {
      const auto y0 = static_cast<std::ptrdiff_t>(oy * g.stride) - static_cast<std::ptrdiff_t>(g.pad_top);
      const bool inside_h = y0 >= 0 && y0 + static_cast<std::ptrdiff_t>(kh) <= static_cast<std::ptrdiff_t>(g.in_h);
      for (std::size_t ox = 0; ox < g.out_w; ++ox) {
        const auto x0 = static_cast<std::ptrdiff_t>(ox * g.stride) - static_cast<std::ptrdiff_t>(g.pad_left);
        const bool inside_w = x0 >= 0 && x0 + static_cast<std::ptrdiff_t>(kw) <= static_cast<std::ptrdiff_t>(g.in_w);
        if (inside_h && inside_w) {  // the whole window is in the image: kh straight copies
          const float* src = img + (static_cast<std::size_t>(y0) * g.in_w + static_cast<std::size_t>(x0)) * c;
          for (std::size_t ky = 0; ky < kh; ++ky, cols += row_len, src += g.in_w * c) copy_row(cols, src);
          continue;
        }
        window_row(img, g, y0, x0, cols);
        cols += kh * row_len;
      }
    }
  }
}

inline void im2col(const float* x, std::size_t n, const window_geometry& g, float* cols) {
  switch (g.kernel_w * g.channels) {
    case 3: return im2col_rows<3>(x, n, g, cols);
    case 5: return im2col_rows<5>(x, n, g, cols);
    case 7: return im2col_rows<7>(x, n, g, cols);
    case 9: return im2col_rows<9>(x, n, g, cols);
    default: return im2col_rows<0>(x, n, g, cols);
  }
}

/// The adjoint of im2col: adds every window row of `cols` back into dx (which it zeroes first).
inline void col2im(const float* cols, std::size_t n, const window_geometry& g, float* dx) {
  const std::size_t c = g.channels, kw = g.kernel_w, kh = g.kernel_h;
  const std::size_t row_len = kw * c;
  std::fill(dx, dx + n * g.in_h * g.in_w * c, 0.0f);
  for (std::size_t b = 0; b < n; ++b) {
    float* img = dx + b * g.in_h * g.in_w * c;
    for (std::size_t oy = 0; oy < g.out_h; ++oy)
      for (std::size_t ox = 0; ox < g.out_w; ++ox) {
        const auto x0 = static_cast<std::ptrdiff_t>(ox * g.stride) - static_cast<std::ptrdiff_t>(g.pad_left);
        for (std::size_t ky = 0; ky < kh; ++ky, cols += row_len) {
          const auto iy = static_cast<std::ptrdiff_t>(oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad_top);
          if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.in_h)) continue;
          float* dst = img + static_cast<std::size_t>(iy) * g.in_w * c;
          for (std::size_t kx = 0; kx < kw; ++kx) {
            const std::ptrdiff_t ix = x0 + static_cast<std::ptrdiff_t>(kx);
            if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(g.in_w)) continue;
            float* d = dst + static_cast<std::size_t>(ix) * c;
            const float* s = cols + kx * c;
            for (std::size_t j = 0; j < c; ++j) d[j] += s[j];
          }
        }
      }
  }
}

/// What conv_inference_indirect keeps from one call to the next for one layer: the batch with
/// its zero border, and the indirection buffer (a pointer to every kernel row of every window).
/// The pointers depend only on the geometry, the batch size and where the padded batch lives,
/// so a layer that sees batches of one size builds them once.
struct indirect_conv_state {
  std::vector<float> padded;      // [n, top + in_h + bottom, left + in_w + right, c]; empty without padding
  std::vector<const float*> ptrs;  // [n * out_h * out_w, kernel_h]
  const float* base = nullptr;    // what ptrs point into (padded.data() or the input)
  std::size_t n = 0;
};

/// Inference-time convolution through the built-in GEMM kernel without an im2col matrix:
/// y[n*oh*ow, filters] = im2col(x) W, then the epilogue (bias, ReLU). The kernel reads every
/// window straight from the (zero-bordered) image through the indirection buffer of `st`, one
/// pointer per kernel row of kw*c contiguous NHWC floats; with padding, each image is first
/// copied inside its zero border (about a third to a half of what its im2col rows would take).
/// Images are split among `threads` threads (the built-in kernel's pool). The values equal those
/// of im2col + GEMM bit for bit (same products, same order). Returns false, computing nothing,
/// when the built-in kernel cannot run (no AVX2 or AVX-512, or switched off): the caller then
/// takes the im2col path.
inline bool conv_inference_indirect(const float* x, std::size_t n, const window_geometry& g, const float* w,
                                    std::size_t filters, const gemm_epilogue& ep, int threads, float* y,
                                    indirect_conv_state& st) {
  const gemm_isa isa = builtin_gemm_isa();
  if (isa == gemm_isa::none || !builtin_gemm_enabled()) return false;
  const std::size_t c = g.channels, kh = g.kernel_h, seg = g.kernel_w * c, per_image = g.out_h * g.out_w;
  const std::size_t reach_h = (g.out_h - 1) * g.stride + kh, reach_w = (g.out_w - 1) * g.stride + g.kernel_w;
  const std::size_t ph = std::max(g.pad_top + g.in_h, reach_h), pw = std::max(g.pad_left + g.in_w, reach_w);
  const bool pad = ph != g.in_h || pw != g.in_w;
  const float* base = x;
  if (pad) {
    if (st.padded.size() != n * ph * pw * c) {
      st.padded.assign(n * ph * pw * c, 0.0f);  // the border stays zero; the inside is copied per call
      st.base = nullptr;
    }
    base = st.padded.data();
  }
  if (st.base != base || st.n != n) {
    st.ptrs.resize(n * per_image * kh);
    const float** p = st.ptrs.data();
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t oy = 0; oy < g.out_h; ++oy)
        for (std::size_t ox = 0; ox < g.out_w; ++ox)
          for (std::size_t ky = 0; ky < kh; ++ky)
            *p++ = base + ((b * ph + oy * g.stride + ky) * pw + ox * g.stride) * c;
    st.base = base;
    st.n = n;
  }
  const std::size_t parts = std::clamp<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), 1, n);
  std::atomic<bool> ok{true};
  builtin_gemm_pool().run(parts, [&](std::size_t part) {
    const std::size_t b0 = part * n / parts, b1 = (part + 1) * n / parts, row = g.in_w * c;
    if (pad)
      for (std::size_t b = b0; b < b1; ++b)
        for (std::size_t iy = 0; iy < g.in_h; ++iy)
          std::memcpy(st.padded.data() + ((b * ph + g.pad_top + iy) * pw + g.pad_left) * c,
                      x + (b * g.in_h + iy) * row, row * sizeof(float));
    if (!builtin_gemm_indirect(isa, (b1 - b0) * per_image, filters, st.ptrs.data() + b0 * per_image * kh, kh, seg,
                               w, y + b0 * per_image * filters, ep))
      ok.store(false, std::memory_order_relaxed);  // not for k > 0 on a CPU that runs `isa`; reported all the same
  });
  return ok.load(std::memory_order_relaxed);
}

inline std::string window_config(std::size_t k, std::size_t s, padding p) {
  return std::to_string(k) + "x" + std::to_string(k) + "/" + std::to_string(s) + " " + to_string(p);
}

inline void check_window(const char* where, const tensor_shape& in, std::size_t kernel, std::size_t stride, padding p) {
  if (!in.is_image() || !in.valid())
    throw invalid_argument(where, "needs a non-empty image input [h,w,c], got " + to_string(in));
  if (kernel == 0 || stride == 0) throw invalid_argument(where, "kernel and stride must be > 0");
  if (conv_output_size(in.h, kernel, stride, p) == 0 || conv_output_size(in.w, kernel, stride, p) == 0)
    throw invalid_argument(where, qnas::detail::cat("a ", kernel, "x", kernel, " valid window does not fit the input ",
                                              to_string(in)));
}

}  // namespace detail

/// Run-time 2-D convolution. Weights are HWIO [k, k, cin, filters]; output [oh, ow, filters].
class conv2d_layer : public with_buffers<weighted_layer> {
 public:
  conv2d_layer(tensor_shape in, std::size_t filters, std::size_t kernel, std::size_t stride = 1,
               padding pad = padding::same, layer_formats f = {}, bool use_bias = true)
      : with_buffers<weighted_layer>("conv2d", in, out_shape(in, filters, kernel, stride, pad), std::move(f)),
        g_(window_geometry::of(in, kernel, stride, pad)), filters_(filters), pad_(pad) {
    if (filters == 0) throw invalid_argument("qnas::nn::conv2d", "filters must be > 0");
    init_params({kernel, kernel, in.c, filters}, filters, use_bias);
  }

  [[nodiscard]] std::size_t filters() const noexcept { return filters_; }
  [[nodiscard]] const window_geometry& geometry() const noexcept { return g_; }
  [[nodiscard]] bool fuses_relu() const noexcept override { return output_quantizer().is_identity(); }
  void initialize(std::mt19937_64& engine) override { he_normal(engine, patch()); }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = weighted_layer::describe();
    d.config = std::to_string(filters_) + " " + detail::window_config(g_.kernel_h, g_.stride, pad_);
    d.op = layer_op::conv2d;
    d.window = {g_.kernel_h, g_.stride, pad_};
    d.macs = g_.out_h * g_.out_w * patch() * filters_;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    const std::size_t m = n * g_.out_h * g_.out_w;
    detail::ensure_batch(y_, n, output_shape());
    quantize_params();
    if (!training) {
      // Inference keeps nothing for backward: bias and a fused ReLU go into the GEMM's store,
      // and where the built-in kernel runs the product it reads the windows from the image
      // itself (no im2col matrix).
      const detail::gemm_epilogue ep{use_bias_ ? bq() : nullptr, relu_epilogue()};
      if (g_.pointwise()) {
        detail::gemm(false, false, m, filters_, patch(), 1.0f, x.data(), wq(), 0.0f, y_.data(), ep);
        return y_;
      }
      if (detail::builtin_gemm_pays(false, false, m, filters_, patch(), blas_runs_generic_kernels()) &&
          detail::conv_inference_indirect(x.data(), n, g_, wq(), filters_, ep, blas_threads(), y_.data(), indirect_)) {
        if (memory_saving_) indirect_ = {};  // memory saving keeps no buffer between passes
        return y_;
      }
      detail::ensure_shape(cols_, std::array<std::size_t, 2>{m, patch()});
      detail::im2col(x.data(), n, g_, cols_.data());
      detail::gemm(false, false, m, filters_, patch(), 1.0f, cols_.data(), wq(), 0.0f, y_.data(), ep);
      cols_ptr_ = nullptr;
      if (memory_saving_) detail::free_buffer(cols_);
      return y_;
    }
    if (chunked()) {
      for_chunks(n, [&](std::size_t b0, std::size_t count, std::size_t rows) {
        detail::im2col(x.data() + b0 * input_shape().size(), count, g_, cols_.data());
        float* y = y_.data() + b0 * g_.out_h * g_.out_w * filters_;
        detail::gemm(false, false, rows, filters_, patch(), 1.0f, cols_.data(), wq(), 0.0f, y,
                     detail::gemm_epilogue{use_bias_ ? bq() : nullptr, false});
      });
      detail::free_buffer(cols_);
      cols_ptr_ = nullptr;
      save_input(x, training);
      return y_;
    }
    if (g_.pointwise()) {
      cols_ptr_ = x.data();
    } else {
      detail::ensure_shape(cols_, std::array<std::size_t, 2>{m, patch()});
      detail::im2col(x.data(), n, g_, cols_.data());
      cols_ptr_ = cols_.data();
    }
    detail::gemm(false, false, m, filters_, patch(), 1.0f, cols_ptr_, wq(), 0.0f, y_.data(),
                 detail::gemm_epilogue{use_bias_ ? bq() : nullptr, false});
    if (saver_ != nullptr) {
      // The saver keeps the input (a fraction of the im2col matrix's size); backward rebuilds
      // the matrix from what it restores.
      save_input(x, training);
      cols_ptr_ = nullptr;
      if (memory_saving_) detail::free_buffer(cols_);
    }
    return y_;
  }

  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t n = dy.shape()[0];
    const std::size_t m = n * g_.out_h * g_.out_w, k = patch();
    if (chunked()) return backward_chunked(dy, need_dx);
    if (saver_ != nullptr) {
      restore_input(restored_);
      if (g_.pointwise()) {
        cols_ptr_ = restored_.data();
      } else {
        detail::ensure_shape(cols_, std::array<std::size_t, 2>{m, k});
        detail::im2col(restored_.data(), n, g_, cols_.data());
        cols_ptr_ = cols_.data();
      }
    }
    if (float* g = direct_weight_grad()) {
      detail::gemm(true, false, k, filters_, m, 1.0f, cols_ptr_, dy.data(), 1.0f, g);
    } else {
      detail::gemm(true, false, k, filters_, m, 1.0f, cols_ptr_, dy.data(), 0.0f, weight_grad_scratch());
      accumulate_weight_scratch();
    }
    if (memory_saving_) {  // the weight gradient was the last use of the im2col matrix
      detail::free_buffer(cols_);
      detail::free_buffer(restored_);
      cols_ptr_ = nullptr;
    }
    accumulate_bias_grad_from_rows(dy.data(), m);
    if (!need_dx) return empty_;
    detail::ensure_batch(dx_, n, input_shape());
    if (g_.pointwise()) {
      detail::gemm(false, true, m, k, filters_, 1.0f, dy.data(), wq(), 0.0f, dx_.data());
    } else {
      detail::ensure_shape(dcols_, std::array<std::size_t, 2>{m, k});
      detail::gemm(false, true, m, k, filters_, 1.0f, dy.data(), wq(), 0.0f, dcols_.data());
      detail::col2im(dcols_.data(), n, g_, dx_.data());
      if (memory_saving_) detail::free_buffer(dcols_);
    }
    return dx_;
  }

  /// Memory saving with a saver: the im2col matrix is built a few images at a time (at most
  /// im2col_chunk_floats values), in forward and in backward, instead of for the whole batch.
  /// Only the weight gradient's summation order differs from the unchunked path.
  const xt::xarray<float>& backward_chunked(const xt::xarray<float>& dy, bool need_dx) {
    const std::size_t n = dy.shape()[0], k = patch(), per_image = g_.out_h * g_.out_w * filters_;
    restore_input(restored_);
    float* direct = direct_weight_grad();
    float* gw = direct != nullptr ? direct : weight_grad_scratch();
    bool first = true;
    for_chunks(n, [&](std::size_t b0, std::size_t count, std::size_t rows) {
      detail::im2col(restored_.data() + b0 * input_shape().size(), count, g_, cols_.data());
      detail::gemm(true, false, k, filters_, rows, 1.0f, cols_.data(), dy.data() + b0 * per_image,
                   direct != nullptr || !first ? 1.0f : 0.0f, gw);
      first = false;
    });
    if (direct == nullptr) accumulate_weight_scratch();
    detail::free_buffer(cols_);
    detail::free_buffer(restored_);
    accumulate_bias_grad_from_rows(dy.data(), n * g_.out_h * g_.out_w);
    if (!need_dx) return empty_;
    detail::ensure_batch(dx_, n, input_shape());
    for_chunks(n, [&](std::size_t b0, std::size_t count, std::size_t rows) {
      detail::gemm(false, true, rows, k, filters_, 1.0f, dy.data() + b0 * per_image, wq(), 0.0f, cols_.data());
      detail::col2im(cols_.data(), count, g_, dx_.data() + b0 * input_shape().size());
    });
    detail::free_buffer(cols_);
    return dx_;
  }

  /// At most this many floats in one im2col chunk (256 KiB) when conv2d works in chunks.
  static constexpr std::size_t im2col_chunk_floats = std::size_t{1} << 16;

 public:
  [[nodiscard]] bool accepts_input_saver() const noexcept override { return true; }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return g_.pointwise() && saver_ == nullptr; }

 private:
  static tensor_shape out_shape(tensor_shape in, std::size_t filters, std::size_t k, std::size_t s, padding p) {
    detail::check_window("qnas::nn::conv2d", in, k, s, p);
    return image(conv_output_size(in.h, k, s, p), conv_output_size(in.w, k, s, p), filters);
  }
  [[nodiscard]] std::size_t patch() const noexcept { return g_.kernel_h * g_.kernel_w * g_.channels; }
  [[nodiscard]] bool chunked() const noexcept { return memory_saving_ && saver_ != nullptr && !g_.pointwise(); }
  /// Calls fn(first image, images, rows) for chunks of whole images whose im2col rows fit in
  /// im2col_chunk_floats, with cols_ sized for the largest chunk.
  template <class Fn>
  void for_chunks(std::size_t n, Fn&& fn) {
    const std::size_t rows_per_image = g_.out_h * g_.out_w;
    const std::size_t images = std::clamp<std::size_t>(im2col_chunk_floats / (rows_per_image * patch()), 1, n);
    detail::ensure_shape(cols_, std::array<std::size_t, 2>{images * rows_per_image, patch()});
    for (std::size_t b0 = 0; b0 < n; b0 += images) {
      const std::size_t count = std::min(images, n - b0);
      fn(b0, count, count * rows_per_image);
    }
  }

  window_geometry g_;
  std::size_t filters_;
  padding pad_;
  const float* cols_ptr_ = nullptr;
  xt::xarray<float> cols_, dcols_, restored_;
  detail::indirect_conv_state indirect_;
};

/// Run-time depthwise convolution (one k x k filter per channel, channel multiplier 1).
/// Weights are [k, k, c]. Channels are contiguous in NHWC, so the inner loop runs over them.
class depthwise_conv2d_layer : public with_buffers<weighted_layer> {
 public:
  depthwise_conv2d_layer(tensor_shape in, std::size_t kernel, std::size_t stride = 1, padding pad = padding::same,
                         layer_formats f = {}, bool use_bias = true)
      : with_buffers<weighted_layer>("depthwise_conv2d", in, out_shape(in, kernel, stride, pad), std::move(f)),
        g_(window_geometry::of(in, kernel, stride, pad)), pad_(pad) {
    init_params({kernel, kernel, in.c}, in.c, use_bias);
  }

  [[nodiscard]] const window_geometry& geometry() const noexcept { return g_; }
  void initialize(std::mt19937_64& engine) override { he_normal(engine, g_.kernel_h * g_.kernel_w); }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = weighted_layer::describe();
    d.config = detail::window_config(g_.kernel_h, g_.stride, pad_);
    d.op = layer_op::depthwise_conv2d;
    d.window = {g_.kernel_h, g_.stride, pad_};
    d.macs = g_.out_h * g_.out_w * g_.kernel_h * g_.kernel_w * g_.channels;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    x_ = saver_ != nullptr ? nullptr : &x;
    detail::ensure_batch(y_, n, output_shape());
    quantize_params();
    const std::size_t c = g_.channels;
    const float* w = wq();
    const float* bias = use_bias_ ? bq() : nullptr;
    float* y = y_.data();
    for_each_tap(n, [&](std::size_t out_off, std::size_t in_off, std::size_t w_off) {
      float* yo = y + out_off;
      const float* xi = x.data() + in_off;
      const float* wk = w + w_off;
      for (std::size_t j = 0; j < c; ++j) yo[j] += xi[j] * wk[j];
    }, [&](std::size_t out_off) {
      float* yo = y + out_off;
      for (std::size_t j = 0; j < c; ++j) yo[j] = bias ? bias[j] : 0.0f;
    });
    save_input(x, training);
    return y_;
  }

  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t n = dy.shape()[0];
    const std::size_t c = g_.channels;
    float* gw = direct_weight_grad();
    if (gw == nullptr) {
      gw = weight_grad_scratch();
      std::fill(gw, gw + w_.value.size(), 0.0f);
    }
    if (need_dx) {
      detail::ensure_batch(dx_, n, input_shape());
      std::fill(dx_.begin(), dx_.end(), 0.0f);
    }
    if (saver_ != nullptr) restore_input(restored_);
    const float* w = wq();
    const float* x = saver_ != nullptr ? restored_.data() : x_->data();
    const float* g = dy.data();
    float* dx = need_dx ? dx_.data() : nullptr;
    for_each_tap(n, [&](std::size_t out_off, std::size_t in_off, std::size_t w_off) {
      const float* go = g + out_off;
      const float* xi = x + in_off;
      float* gwk = gw + w_off;
      for (std::size_t j = 0; j < c; ++j) gwk[j] += go[j] * xi[j];
      if (dx) {
        float* dxi = dx + in_off;
        const float* wk = w + w_off;
        for (std::size_t j = 0; j < c; ++j) dxi[j] += go[j] * wk[j];
      }
    }, [](std::size_t) {});
    if (weights_quantized()) accumulate_weight_scratch();
    accumulate_bias_grad_from_rows(g, n * g_.out_h * g_.out_w);
    if (memory_saving_) detail::free_buffer(restored_);
    return need_dx ? dx_ : empty_;
  }

 public:
  [[nodiscard]] bool accepts_input_saver() const noexcept override { return true; }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return saver_ == nullptr; }

 private:
  static tensor_shape out_shape(tensor_shape in, std::size_t k, std::size_t s, padding p) {
    detail::check_window("qnas::nn::depthwise_conv2d", in, k, s, p);
    return image(conv_output_size(in.h, k, s, p), conv_output_size(in.w, k, s, p), in.c);
  }

  /// Calls start(out_offset) per output pixel, then tap(out_offset, in_offset, weight_offset)
  /// for every kernel tap inside the image (padding taps contribute nothing).
  template <class Tap, class Start>
  void for_each_tap(std::size_t n, Tap&& tap, Start&& start) const {
    const std::size_t c = g_.channels;
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t oy = 0; oy < g_.out_h; ++oy)
        for (std::size_t ox = 0; ox < g_.out_w; ++ox) {
          const std::size_t out_off = ((b * g_.out_h + oy) * g_.out_w + ox) * c;
          start(out_off);
          for (std::size_t ky = 0; ky < g_.kernel_h; ++ky) {
            const auto iy = static_cast<std::ptrdiff_t>(oy * g_.stride + ky) - static_cast<std::ptrdiff_t>(g_.pad_top);
            if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g_.in_h)) continue;
            for (std::size_t kx = 0; kx < g_.kernel_w; ++kx) {
              const auto ix = static_cast<std::ptrdiff_t>(ox * g_.stride + kx) - static_cast<std::ptrdiff_t>(g_.pad_left);
              if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(g_.in_w)) continue;
              const std::size_t in_off =
                  ((b * g_.in_h + static_cast<std::size_t>(iy)) * g_.in_w + static_cast<std::size_t>(ix)) * c;
              tap(out_off, in_off, (ky * g_.kernel_w + kx) * c);
            }
          }
        }
  }

  window_geometry g_;
  padding pad_;
  const xt::xarray<float>* x_ = nullptr;
  xt::xarray<float> restored_;
};

namespace detail {
template <std::size_t Kernel, std::size_t Stride, padding Pad, std::size_t Index, tensor_shape In>
constexpr void check_window_spec() {
  static_assert(In.rank == 3,
                "qnas::nn: a convolution or pool needs an image input [h, w, c] (see the layer Index and input "
                "shape In in this instantiation)");
  static_assert(conv_output_size(In.h, Kernel, Stride, Pad) > 0 && conv_output_size(In.w, Kernel, Stride, Pad) > 0,
                "qnas::nn: the Kernel of a valid-padding convolution or pool is larger than its input (see the "
                "layer Index and input shape In in this instantiation)");
}
}  // namespace detail

/// Compile-time convolution: `conv2d<16, 3, 2>` (16 filters, 3x3, stride 2, same padding).
template <std::size_t Filters, std::size_t Kernel, std::size_t Stride = 1, padding Padding = padding::same,
          class Weights = unquantized, class Bias = unquantized, class Output = unquantized, bool UseBias = true>
struct conv2d {
  static_assert(Filters > 0, "qnas::nn::conv2d<Filters, ...>: Filters must be > 0");
  static_assert(Kernel > 0, "qnas::nn::conv2d<Filters, Kernel, ...>: Kernel must be > 0");
  static_assert(Stride > 0, "qnas::nn::conv2d<Filters, Kernel, Stride, ...>: Stride must be > 0");
  static_assert(format_argument<Weights> && format_argument<Bias> && format_argument<Output>,
                "qnas::nn::conv2d<..., Weights, Bias, Output>: formats must be number_formats or unquantized");

  static constexpr const char* name() { return "conv2d"; }
  static constexpr tensor_shape output_shape(tensor_shape in) {
    return image(conv_output_size(in.h, Kernel, Stride, Padding), conv_output_size(in.w, Kernel, Stride, Padding),
                 Filters);
  }
  static constexpr std::size_t params(tensor_shape in) {
    return Kernel * Kernel * in.c * Filters + (UseBias ? Filters : 0) + detail::weight_step_count<Weights>(Filters);
  }
  static constexpr std::size_t macs(tensor_shape in) {
    const tensor_shape o = output_shape(in);
    return o.h * o.w * Kernel * Kernel * in.c * Filters;
  }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    detail::check_window_spec<Kernel, Stride, Padding, Index, In>();
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    return std::make_unique<conv2d_layer>(in, Filters, Kernel, Stride, Padding,
                                          detail::formats_of<Weights, Bias, Output>(), UseBias);
  }
};

/// Compile-time depthwise convolution: `depthwise_conv2d<3, 1>`.
template <std::size_t Kernel, std::size_t Stride = 1, padding Padding = padding::same, class Weights = unquantized,
          class Bias = unquantized, class Output = unquantized, bool UseBias = true>
struct depthwise_conv2d {
  static_assert(Kernel > 0, "qnas::nn::depthwise_conv2d<Kernel, ...>: Kernel must be > 0");
  static_assert(Stride > 0, "qnas::nn::depthwise_conv2d<Kernel, Stride, ...>: Stride must be > 0");
  static_assert(format_argument<Weights> && format_argument<Bias> && format_argument<Output>,
                "qnas::nn::depthwise_conv2d<..., Weights, Bias, Output>: formats must be number_formats or unquantized");

  static constexpr const char* name() { return "depthwise_conv2d"; }
  static constexpr tensor_shape output_shape(tensor_shape in) {
    return image(conv_output_size(in.h, Kernel, Stride, Padding), conv_output_size(in.w, Kernel, Stride, Padding),
                 in.c);
  }
  static constexpr std::size_t params(tensor_shape in) {
    return Kernel * Kernel * in.c + (UseBias ? in.c : 0) + detail::weight_step_count<Weights>(in.c);
  }
  static constexpr std::size_t macs(tensor_shape in) {
    const tensor_shape o = output_shape(in);
    return o.h * o.w * Kernel * Kernel * in.c;
  }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    detail::check_window_spec<Kernel, Stride, Padding, Index, In>();
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    return std::make_unique<depthwise_conv2d_layer>(in, Kernel, Stride, Padding,
                                                    detail::formats_of<Weights, Bias, Output>(), UseBias);
  }
};

}  // namespace qnas::nn
