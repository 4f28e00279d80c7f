// layer_desc: the constexpr description of one layer that the energy, size and latency
// models price (the contract the nn module maps its layers onto; see docs/energy.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "qnas/core/diagnostics.hpp"
#include "qnas/core/shape.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas::energy {

/// What a layer computes, as far as cost is concerned.
enum class layer_kind : std::uint8_t {
  conv2d,            ///< kernel_h x kernel_w x (in.c / groups) x out.c weights
  depthwise_conv2d,  ///< kernel_h x kernel_w x in.c x depth_multiplier weights
  dense,             ///< in.size() x out.c weights (in may be any shape: it is flattened)
  max_pool,          ///< comparisons over kernel_h x kernel_w windows
  avg_pool,          ///< sums over kernel_h x kernel_w windows
  activation,        ///< element-wise (relu, softmax, quantizer...)
  add,               ///< element-wise sum of `inputs` tensors of the same shape
  flatten            ///< reshape: no arithmetic
};
inline constexpr int layer_kind_count = 8;

constexpr const char* to_string(layer_kind k) noexcept {
  switch (k) {
    case layer_kind::conv2d: return "conv2d";
    case layer_kind::depthwise_conv2d: return "depthwise_conv2d";
    case layer_kind::dense: return "dense";
    case layer_kind::max_pool: return "max_pool";
    case layer_kind::avg_pool: return "avg_pool";
    case layer_kind::activation: return "activation";
    case layer_kind::add: return "add";
    case layer_kind::flatten: return "flatten";
  }
  return "?";
}

using qnas::flat;
using qnas::image;
using qnas::padding;
using qnas::tensor_shape;

/// Elements per sample, as the signed count the cost formulas multiply.
constexpr long long elements(const tensor_shape& s) noexcept { return static_cast<long long>(s.size()); }

namespace detail {
/// A non-negative count from an int argument; a negative one becomes 0, which validate()
/// then reports as an empty tensor or a zero fan-in.
constexpr std::size_t extent(long long n) noexcept { return n > 0 ? static_cast<std::size_t>(n) : 0; }
}  // namespace detail

/// Output extent of a window of `kernel` sliding by `stride` over `in` positions (0 when
/// the window does not fit, or kernel or stride is not positive).
constexpr std::size_t window_output(std::size_t in, int kernel, int stride, padding p) noexcept {
  return conv_output_size(in, detail::extent(kernel), detail::extent(stride), p);
}

/// One layer, everything the cost models need. Build it with the factories below
/// (conv2d, dense, ...) which derive the output shape, then set formats with with_formats().
struct layer_desc {
  const char* name = "";
  layer_kind kind = layer_kind::dense;
  tensor_shape in{};
  tensor_shape out{};
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  padding pad = padding::valid;
  int depth_multiplier = 1;  ///< depthwise only
  int groups = 1;            ///< conv2d only: input and output channels split into this many independent groups
  int inputs = 1;            ///< add only: number of summed tensors
  bool use_bias = false;
  format_info weights = float32_info;
  format_info bias = float32_info;
  format_info input = float32_info;   ///< format of the tensor(s) read
  format_info output = float32_info;  ///< format of the tensor written
  int accumulator_bits = 0;  ///< 0: derived from the operands and the fan-in (operators.hpp)

  /// Whether the layer has weights.
  [[nodiscard]] constexpr bool has_weights() const noexcept {
    return kind == layer_kind::conv2d || kind == layer_kind::depthwise_conv2d || kind == layer_kind::dense;
  }
  /// Products summed into one output (MAC layers), window size (pooling), else 0.
  [[nodiscard]] constexpr long long fan_in() const noexcept {
    switch (kind) {
      case layer_kind::conv2d: return static_cast<long long>(kernel_h) * kernel_w * group_channels();
      case layer_kind::depthwise_conv2d:
      case layer_kind::max_pool:
      case layer_kind::avg_pool: return static_cast<long long>(kernel_h) * kernel_w;
      case layer_kind::dense: return static_cast<long long>(in.size());
      default: return 0;
    }
  }
  /// Input channels each output of a conv2d reads (in.c / groups).
  [[nodiscard]] constexpr long long group_channels() const noexcept {
    return groups > 0 ? static_cast<long long>(in.c) / groups : 0;
  }
  /// Multiply-accumulates per sample.
  [[nodiscard]] constexpr long long macs() const noexcept {
    return has_weights() ? static_cast<long long>(out.size()) * fan_in() : 0;
  }
  [[nodiscard]] constexpr long long weight_count() const noexcept {
    switch (kind) {
      case layer_kind::conv2d:
        return static_cast<long long>(kernel_h) * kernel_w * group_channels() * static_cast<long long>(out.c);
      case layer_kind::depthwise_conv2d:
        return static_cast<long long>(kernel_h) * kernel_w * static_cast<long long>(in.c) * depth_multiplier;
      case layer_kind::dense: return static_cast<long long>(in.size() * out.c);
      default: return 0;
    }
  }
  [[nodiscard]] constexpr long long bias_count() const noexcept {
    return has_weights() && use_bias ? static_cast<long long>(out.c) : 0;
  }

  /// A copy with the four formats set (and the accumulator width, 0 = derive).
  [[nodiscard]] constexpr layer_desc with_formats(const format_info& w, const format_info& b, const format_info& x,
                                                  const format_info& y, int acc_bits = 0) const noexcept {
    layer_desc d = *this;
    d.weights = w;
    d.bias = b;
    d.input = x;
    d.output = y;
    d.accumulator_bits = acc_bits;
    return d;
  }
  /// A copy with the input and output formats set (layers without weights).
  [[nodiscard]] constexpr layer_desc with_formats(const format_info& x, const format_info& y) const noexcept {
    layer_desc d = *this;
    d.input = x;
    d.output = y;
    return d;
  }
};

/// conv2d with a square kernel and stride; output shape derived. `groups` > 1: a grouped
/// convolution (each output channel reads in.c / groups input channels).
constexpr layer_desc conv2d(const char* name, tensor_shape in, int filters, int kernel, int stride = 1,
                            padding p = padding::same, bool use_bias = true, int groups = 1) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = layer_kind::conv2d;
  d.in = in;
  d.out = image(window_output(in.h, kernel, stride, p), window_output(in.w, kernel, stride, p), detail::extent(filters));
  d.kernel_h = d.kernel_w = kernel;
  d.stride_h = d.stride_w = stride;
  d.pad = p;
  d.use_bias = use_bias;
  d.groups = groups;
  return d;
}

/// Depthwise conv2d with a square kernel; output channels in.c * depth_multiplier.
constexpr layer_desc depthwise_conv2d(const char* name, tensor_shape in, int kernel, int stride = 1,
                                      padding p = padding::same, int depth_multiplier = 1,
                                      bool use_bias = true) noexcept {
  layer_desc d = conv2d(name, in, 0, kernel, stride, p, use_bias);
  d.kind = layer_kind::depthwise_conv2d;
  d.depth_multiplier = depth_multiplier;
  d.out.c = in.c * detail::extent(depth_multiplier);
  return d;
}

/// Dense (fully connected) layer; `in` is flattened.
constexpr layer_desc dense(const char* name, tensor_shape in, int units, bool use_bias = true) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = layer_kind::dense;
  d.in = in;
  d.out = flat(detail::extent(units));
  d.use_bias = use_bias;
  return d;
}

/// Max or average pooling with a square window.
constexpr layer_desc pool(const char* name, layer_kind kind, tensor_shape in, int size, int stride,
                          padding p = padding::valid) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = kind;
  d.in = in;
  d.out = image(window_output(in.h, size, stride, p), window_output(in.w, size, stride, p), in.c);
  d.kernel_h = d.kernel_w = size;
  d.stride_h = d.stride_w = stride;
  d.pad = p;
  return d;
}

/// Element-wise activation (shape unchanged).
constexpr layer_desc activation(const char* name, tensor_shape in) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = layer_kind::activation;
  d.in = d.out = in;
  return d;
}

/// Element-wise sum of `inputs` tensors of shape `in`.
constexpr layer_desc add(const char* name, tensor_shape in, int inputs = 2) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = layer_kind::add;
  d.in = d.out = in;
  d.inputs = inputs;
  return d;
}

/// Flatten to a feature vector of the input's element count.
constexpr layer_desc flatten(const char* name, tensor_shape in) noexcept {
  layer_desc d;
  d.name = name;
  d.kind = layer_kind::flatten;
  d.in = in;
  d.out = flat(in.size());
  return d;
}

namespace detail {
[[noreturn]] inline void layer_description_is_impossible(const layer_desc& l, const std::string& what);
inline void check_format_info(const layer_desc& l, const char* which, const format_info& f) {
  if (f.bits < 1 || f.bits > 64 || f.block_size < 1 || f.scale_bits < 0)
    throw invalid_argument(qnas::detail::cat("energy::validate(layer \"", l.name, "\")"),
                           qnas::detail::cat(which, " format \"", f.label, "\" is impossible: bits = ", f.bits,
                                       ", block_size = ", f.block_size, ", scale_bits = ", f.scale_bits,
                                       " (need bits in [1, 64], block_size >= 1, scale_bits >= 0)"));
}
[[noreturn]] inline void layer_description_is_impossible(const layer_desc& l, const std::string& what) {
  throw invalid_argument(qnas::detail::cat("energy::validate(layer \"", l.name, "\", ", to_string(l.kind), ")"), what);
}
/// Fails validate(): a readable exception at run time; a compile error naming
/// layer_description_is_impossible (not constexpr) when a fixed network is priced at
/// compile time.
template <class... Ts>
constexpr void fail_layer(const layer_desc& l, const Ts&... parts) {
  layer_description_is_impossible(l, qnas::detail::cat(parts...));
}
inline std::string shape_str(const tensor_shape& s) { return qnas::detail::cat(s.h, "x", s.w, "x", s.c); }
}  // namespace detail

/// Checks that a layer description is possible; throws qnas::invalid_argument saying which
/// layer, what and why (zero fan-in, a shape that does not follow from the input, an
/// impossible format...). In a constant expression a violation fails to compile.
constexpr void validate(const layer_desc& l) {
  auto fail = [&l](const auto&... parts) constexpr { detail::fail_layer(l, parts...); };
  if (!l.in.valid() || !l.out.valid()) {
    detail::fail_layer(l, qnas::detail::cat("empty tensor: input ", detail::shape_str(l.in), ", output ",
                                     detail::shape_str(l.out), " (every extent must be >= 1)"));
  }
  const bool windowed = l.kind == layer_kind::conv2d || l.kind == layer_kind::depthwise_conv2d ||
                        l.kind == layer_kind::max_pool || l.kind == layer_kind::avg_pool;
  if (windowed) {
    if (l.kernel_h < 1 || l.kernel_w < 1 || l.stride_h < 1 || l.stride_w < 1)
      fail("zero fan-in: kernel ", l.kernel_h, "x", l.kernel_w, ", stride ", l.stride_h, "x", l.stride_w,
           " (kernel and stride must be >= 1)");
    const std::size_t oh = window_output(l.in.h, l.kernel_h, l.stride_h, l.pad);
    const std::size_t ow = window_output(l.in.w, l.kernel_w, l.stride_w, l.pad);
    std::size_t oc = l.out.c;
    if (l.kind == layer_kind::depthwise_conv2d) oc = l.in.c * detail::extent(l.depth_multiplier);
    if (l.kind == layer_kind::max_pool || l.kind == layer_kind::avg_pool) oc = l.in.c;
    if (oh != l.out.h || ow != l.out.w || oc != l.out.c)
      fail("mismatched shapes: input ", l.in.h, "x", l.in.w, "x", l.in.c, " with a ", l.kernel_h, "x", l.kernel_w,
           " window, stride ", l.stride_h, " and ", l.pad == padding::same ? "same" : "valid",
           " padding gives ", oh, "x", ow, "x", oc, ", but the output is ", l.out.h, "x", l.out.w, "x", l.out.c);
  }
  switch (l.kind) {
    case layer_kind::dense:
      if (l.out.h != 1 || l.out.w != 1)
        fail("mismatched shapes: a dense output is 1x1xunits, got ", l.out.h, "x", l.out.w, "x", l.out.c);
      break;
    case layer_kind::activation:
    case layer_kind::add:
      if (!(l.in == l.out))
        fail("mismatched shapes: an element-wise layer keeps its shape, input ", l.in.h, "x", l.in.w, "x",
             l.in.c, " vs output ", l.out.h, "x", l.out.w, "x", l.out.c);
      if (l.kind == layer_kind::add && l.inputs < 2) fail("an add needs inputs >= 2, got ", l.inputs);
      break;
    case layer_kind::flatten:
      if (l.in.size() != l.out.size())
        fail("mismatched shapes: flatten keeps the element count, ", l.in.size(), " in vs ", l.out.size(), " out");
      break;
    default: break;
  }
  if (l.kind == layer_kind::conv2d &&
      (l.groups < 1 || l.in.c % detail::extent(l.groups) != 0 || l.out.c % detail::extent(l.groups) != 0))
    fail("groups = ", l.groups, " must be >= 1 and divide the input channels (", l.in.c, ") and the output channels (",
         l.out.c, ")");
  if (l.kind == layer_kind::depthwise_conv2d && l.depth_multiplier < 1)
    fail("zero fan-in: depth_multiplier = ", l.depth_multiplier, " (must be >= 1)");
  if (l.accumulator_bits < 0 || l.accumulator_bits > 128)
    fail("accumulator_bits = ", l.accumulator_bits, " (0 to derive it, else 1..128)");
  auto fmt_ok = [](const format_info& f) { return f.bits >= 1 && f.bits <= 64 && f.block_size >= 1 && f.scale_bits >= 0; };
  if (!fmt_ok(l.input) || !fmt_ok(l.output) || (l.has_weights() && !fmt_ok(l.weights)) ||
      (l.has_weights() && l.use_bias && !fmt_ok(l.bias))) {
    detail::check_format_info(l, "input", l.input);
    detail::check_format_info(l, "output", l.output);
    detail::check_format_info(l, "weight", l.weights);
    detail::check_format_info(l, "bias", l.bias);
  }
}

/// A model: layers in execution order (the first reads the model input, the last writes
/// the model output).
using model_view = std::span<const layer_desc>;

}  // namespace qnas::energy
