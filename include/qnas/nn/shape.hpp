// The nn names of the per-sample shape (qnas/core/shape.hpp) and the geometry of window operations.
#pragma once

#include <cstddef>

#include "qnas/core/shape.hpp"

namespace qnas::nn {

using qnas::conv_output_size;
using qnas::conv_pad_before;
using qnas::flat;
using qnas::image;
using qnas::padding;
using qnas::tensor_shape;
using qnas::to_string;

/// Geometry of a 2-D window operation (convolution or pool) on an NHWC input.
struct window_geometry {
  std::size_t in_h = 0, in_w = 0, channels = 0;
  std::size_t kernel_h = 1, kernel_w = 1, stride = 1;
  std::size_t out_h = 0, out_w = 0, pad_top = 0, pad_left = 0;

  static constexpr window_geometry of(const tensor_shape& in, std::size_t kernel, std::size_t stride, padding p) noexcept {
    window_geometry g;
    g.in_h = in.h;
    g.in_w = in.w;
    g.channels = in.c;
    g.kernel_h = g.kernel_w = kernel;
    g.stride = stride;
    g.out_h = conv_output_size(in.h, kernel, stride, p);
    g.out_w = conv_output_size(in.w, kernel, stride, p);
    g.pad_top = conv_pad_before(in.h, kernel, stride, p);
    g.pad_left = conv_pad_before(in.w, kernel, stride, p);
    return g;
  }
  /// Whether the window is the identity gather (1x1, stride 1): im2col can be skipped.
  [[nodiscard]] constexpr bool pointwise() const noexcept { return kernel_h == 1 && kernel_w == 1 && stride == 1; }
};

}  // namespace qnas::nn
