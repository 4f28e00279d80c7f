// Bridge from nn networks (layer descriptions) to energy::layer_desc, so any run-time or compile-time network is priced.
//
// The nn module describes each layer as an nn::layer_description (kind, shapes, params, MACs,
// formats of weights/bias/output); the energy module prices energy::layer_desc values. This
// header maps one onto the other, following the rules qtools uses to give every tensor a type:
//
// * the model input has `bridge_options::input_format` (an image of 8-bit pixels, say);
// * a layer's input format is the format of the tensor it reads (the previous layer's output);
// * a conv/dense/depthwise layer writes its accumulator: fixed point of the accumulator width
//   (`accumulator_bits`, or derived from the operand formats and the fan-in, optionally capped
//   by `max_accumulator_bits`), or float32 when either operand is a float;
// * a layer with an output quantizer writes that format. For a conv/dense layer this is
//   QKeras' QConv2D(activation=quantizer): it is emitted as the MAC layer followed by an
//   `activation` layer (named "<layer>.output") converting the accumulator, which is how qtools
//   charges a fused activation;
// * an unquantized element-wise layer (relu, softmax, flatten, pooling) keeps its input format;
// * batch_norm is priced as folded into the layer before it (nn::fold_batch_norm does this
//   before deployment): it adds no layer, unless it has an output quantizer (then an
//   activation converts to it);
// * a residual block is its body followed by an `add` of 2 inputs (input format: the wider of
//   the block's input and the body's output).
//
// nn::layer_description carries kernel, stride and padding only in its `config` text
// ("16 3x3/2 same"); the bridge reads them from there and checks that they reproduce the
// described output shape, so a change of that text fails loudly instead of mispricing.
// A layer kind the energy model cannot price (squeeze_excite: a per-channel multiply) throws
// qnas::invalid_argument naming the layer.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/layer.hpp"
#include "qnas/energy/operators.hpp"
#include "qnas/energy/size.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::energy {

/// How an nn network's tensors are typed when it is priced.
struct bridge_options {
  /// Format of the model input (e.g. info_of<uint8>() for 8-bit pixels); float32 by default.
  format_info input_format = float32_info;
  /// Accumulator width of every conv/dense/depthwise layer; 0 = derive it from the operand
  /// formats and the fan-in (qtools' rule, energy/operators.hpp).
  int accumulator_bits = 0;
  /// Upper bound on a derived accumulator width (an accelerator with accumulators of this
  /// width narrows them when the products allow); 0 = no bound. Ignored when accumulator_bits > 0.
  int max_accumulator_bits = 0;
};

/// A priced view of a network: energy::layer_desc values in execution order, with the storage
/// of their names (layer_desc::name is a plain pointer). Copies share the immutable names.
class network_desc {
 public:
  network_desc() = default;
  network_desc(std::vector<layer_desc> layers, std::shared_ptr<const std::vector<std::string>> names)
      : layers_(std::move(layers)), names_(std::move(names)) {}

  [[nodiscard]] const std::vector<layer_desc>& layers() const noexcept { return layers_; }
  [[nodiscard]] model_view view() const noexcept { return {layers_.data(), layers_.size()}; }
  operator model_view() const noexcept { return view(); }  // NOLINT: a network is a model
  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  const layer_desc& operator[](std::size_t i) const { return layers_.at(i); }

 private:
  std::vector<layer_desc> layers_;
  std::shared_ptr<const std::vector<std::string>> names_;
};

/// A fixed-point accumulator of `bits` bits (signed, integer), the format a conv/dense output
/// has before an activation converts it.
constexpr format_info accumulator_format(int bits) noexcept {
  format_info f;
  f.label = "accumulator";
  f.family = format_family::fixed_point;
  f.tuple = {1, 0, bits - 1};
  f.bits = bits;
  f.block_size = 1;
  f.scale_bits = 0;
  double m = 1;
  for (int i = 1; i < bits; ++i) m *= 2;
  f.max_value = m - 1;
  f.min_value = -m;
  f.has_zero = true;
  return f;
}

namespace detail {

inline bool unquantized(const nn::layer_description& d) {
  return d.output_format == float32_info && d.output_format_name == "float32";
}

inline tensor_shape shape_of(const nn::tensor_shape& s) {
  return {static_cast<long long>(s.h), static_cast<long long>(s.w), static_cast<long long>(s.c)};
}

struct window {
  int kernel = 0, stride = 0;
  padding pad = padding::valid;
};

/// Reads "KxK/S same|valid" at the end of an nn config text ("16 3x3/2 same" or "2x2/2 valid").
inline window parse_window(const nn::layer_description& d, const std::string& where) {
  std::istringstream is(d.config);
  std::vector<std::string> tok;
  for (std::string t; is >> t;) tok.push_back(t);
  window w;
  int kw = 0;
  char tail = 0;
  const bool ok = tok.size() >= 2 &&
                  std::sscanf(tok[tok.size() - 2].c_str(), "%dx%d/%d%c", &w.kernel, &kw, &w.stride, &tail) == 3 &&
                  w.kernel == kw && (tok.back() == "same" || tok.back() == "valid");
  if (!ok || w.kernel < 1 || w.stride < 1)
    throw invalid_argument(where, qnas::detail::cat("cannot read kernel, stride and padding from the layer's "
                                                    "configuration \"", d.config,
                                                    "\" (expected \"... KxK/S same|valid\")"));
  w.pad = tok.back() == "same" ? padding::same : padding::valid;
  return w;
}

class builder {
 public:
  builder(std::span<const nn::layer_description> rows, const bridge_options& o) : rows_(rows), o_(o) {}

  network_desc build() {
    if (rows_.empty()) throw invalid_argument("qnas::energy::describe_network", "the network has no layers");
    current_ = o_.input_format;
    std::size_t i = 0;
    run(i, rows_.front().depth);
    if (i != rows_.size())
      throw invalid_argument("qnas::energy::describe_network",
                             qnas::detail::cat("layer ", i, " (", rows_[i].kind, ") has depth ", rows_[i].depth,
                                               ", shallower than the first layer's"));
    auto names = std::make_shared<std::vector<std::string>>(std::move(names_));
    for (std::size_t k = 0; k < layers_.size(); ++k) layers_[k].name = (*names)[k].c_str();
    for (const auto& l : layers_) validate(l);
    return {std::move(layers_), std::move(names)};
  }

 private:
  // Maps rows[i...] at exactly `depth` until a shallower row (the end of a composite).
  void run(std::size_t& i, int depth) {
    while (i < rows_.size() && rows_[i].depth >= depth) {
      if (rows_[i].depth > depth)
        throw invalid_argument(where(i), "a nested layer without a composite layer above it");
      const nn::layer_description& d = rows_[i];
      const std::size_t row = i++;
      if (d.kind == "sequential") {
        run(i, depth + 1);
      } else if (d.kind == "residual") {
        const format_info in_fmt = current_;
        run(i, depth + 1);
        const format_info body = current_;
        layer_desc a = add(name(row, d.kind).c_str(), shape_of(d.input), 2);
        a.input = body.bits >= in_fmt.bits ? body : in_fmt;
        a.output = unquantized(d) ? a.input : d.output_format;
        push(std::move(a), name(row, d.kind));
      } else {
        leaf(row, d);
      }
    }
  }

  void leaf(std::size_t row, const nn::layer_description& d) {
    const std::string nm = name(row, d.kind);
    const tensor_shape in = shape_of(d.input), out = shape_of(d.output);
    if (d.kind == "conv2d" || d.kind == "depthwise_conv2d" || d.kind == "dense") {
      layer_desc l;
      if (d.kind == "dense") {
        l = dense("", in, static_cast<int>(out.c), false);
      } else {
        const window w = parse_window(d, where(row));
        l = d.kind == "conv2d" ? conv2d("", in, static_cast<int>(out.c), w.kernel, w.stride, w.pad, false)
                               : depthwise_conv2d("", in, w.kernel, w.stride, w.pad, 1, false);
      }
      check_shape(row, d, l.out);
      const auto params = static_cast<long long>(d.params - d.step_params);  // weights and biases
      if (params == l.weight_count() + l.out.c)
        l.use_bias = true;
      else if (params != l.weight_count())
        throw invalid_argument(where(row), qnas::detail::cat("has ", d.params, " parameters; ", l.weight_count(),
                                                             " weights (+ ", l.out.c, " biases) expected"));
      l.weights = d.weight_format;
      l.bias = d.bias_format;
      l.input = current_;
      l.accumulator_bits = o_.accumulator_bits;
      const mac_operator m = select_operator(l.weights, l.input);
      if (m.float_product) {
        l.output = float32_info;
      } else {
        int acc = o_.accumulator_bits;
        if (acc == 0) {
          acc = accumulator_bits(m, l.fan_in(), l.use_bias);
          if (o_.max_accumulator_bits > 0 && acc > o_.max_accumulator_bits) {
            acc = o_.max_accumulator_bits;
            l.accumulator_bits = acc;
          }
        }
        l.output = accumulator_format(acc);
      }
      current_ = l.output;
      push(std::move(l), nm);
      if (!unquantized(d)) convert(row, out, d.output_format, nm + ".output");
    } else if (d.kind == "max_pool" || d.kind == "avg_pool") {
      const window w = parse_window(d, where(row));
      layer_desc l = pool("", d.kind == "max_pool" ? layer_kind::max_pool : layer_kind::avg_pool, in, w.kernel,
                          w.stride, w.pad);
      check_shape(row, d, l.out);
      finish(std::move(l), d, nm);
    } else if (d.kind == "global_avg_pool") {
      layer_desc l = pool("", layer_kind::avg_pool, in, static_cast<int>(in.h), static_cast<int>(in.h));
      l.kernel_w = l.stride_w = static_cast<int>(in.w);
      l.out = {1, 1, in.c};
      finish(std::move(l), d, nm);
    } else if (d.kind == "relu" || d.kind == "relu6" || d.kind == "swish" || d.kind == "sigmoid" ||
               d.kind == "softmax") {
      finish(activation("", in), d, nm);
    } else if (d.kind == "flatten") {
      finish(flatten("", in), d, nm);
    } else if (d.kind == "batch_norm") {
      // Folded into the layer before it; only an output quantizer costs a conversion.
      if (!unquantized(d)) convert(row, out, d.output_format, nm);
    } else {
      throw invalid_argument(where(row), qnas::detail::cat("layer kind '", d.kind,
                                                           "' has no energy model (priced kinds: conv2d, "
                                                           "depthwise_conv2d, dense, max_pool, avg_pool, "
                                                           "global_avg_pool, relu, relu6, swish, sigmoid, softmax, "
                                                           "flatten, batch_norm, residual, sequential)"));
    }
  }

  // An element-wise or reshaping layer: reads the current format, writes its quantizer's or keeps it.
  void finish(layer_desc l, const nn::layer_description& d, const std::string& nm) {
    l.input = current_;
    l.output = unquantized(d) ? current_ : d.output_format;
    current_ = l.output;
    push(std::move(l), nm);
  }

  // An activation converting the current tensor to `f` (a fused output quantizer).
  void convert(std::size_t row, const tensor_shape& s, const format_info& f, const std::string& nm) {
    (void)row;
    layer_desc a = activation("", s);
    a.input = current_;
    a.output = f;
    current_ = f;
    push(std::move(a), nm);
  }

  void check_shape(std::size_t row, const nn::layer_description& d, const tensor_shape& derived) const {
    if (!(derived == shape_of(d.output)))
      throw invalid_argument(where(row), qnas::detail::cat("configuration \"", d.config, "\" on input ",
                                                           nn::to_string(d.input), " gives ", derived.h, "x",
                                                           derived.w, "x", derived.c, ", but the layer's output is ",
                                                           nn::to_string(d.output)));
  }

  void push(layer_desc l, std::string nm) {
    layers_.push_back(l);
    names_.push_back(std::move(nm));
  }
  [[nodiscard]] std::string name(std::size_t row, const std::string& kind) const {
    return kind + "_" + std::to_string(row);
  }
  [[nodiscard]] std::string where(std::size_t row) const {
    return qnas::detail::cat("qnas::energy::describe_network (layer ", row, ", ", rows_[row].kind, ")");
  }

  std::span<const nn::layer_description> rows_;
  bridge_options o_;
  format_info current_{};
  std::vector<layer_desc> layers_;
  std::vector<std::string> names_;
};

}  // namespace detail

/// The energy model's view of a network given as nn layer descriptions (in the order and with
/// the depths nn::describe_layers produces). Throws qnas::invalid_argument naming the layer
/// when a layer cannot be priced or its description is inconsistent.
inline network_desc describe_network(std::span<const nn::layer_description> rows, const bridge_options& o = {}) {
  return detail::builder(rows, o).build();
}

/// The energy model's view of a run-time network (or `net.layers()` of a compile-time one).
inline network_desc describe_network(nn::sequential& net, const bridge_options& o = {}) {
  const auto rows = nn::describe_layers(net);
  return describe_network(std::span<const nn::layer_description>(rows), o);
}

}  // namespace qnas::energy
