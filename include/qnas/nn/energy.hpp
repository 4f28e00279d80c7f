// Bridge from nn networks (layer descriptions) to energy::layer_desc, so any run-time or compile-time network is priced.
//
// The nn module describes each layer as an nn::layer_description (what it computes as a typed
// layer_op, its window, shapes, params, MACs, formats of weights/bias/output); the energy
// module prices energy::layer_desc values. This header maps one onto the other, following the
// rules qtools uses to give every tensor a type:
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
// The bridge reads only the typed fields (op, window, shapes, params, formats): a layer of any
// class, a user's included, is priced by what its description says it computes. It checks that
// the geometry reproduces the described output shape, so an inconsistent description fails
// loudly instead of mispricing. A layer whose op is layer_op::unpriced (squeeze_excite: a
// per-channel multiply) throws qnas::invalid_argument naming the layer.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/layer.hpp"
#include "qnas/energy/network.hpp"
#include "qnas/energy/operators.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::nn {

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

namespace detail {

inline bool output_unquantized(const layer_description& d) {
  return d.output_format == float32_info && d.output_format_name == "float32";
}

class energy_builder {
 public:
  energy_builder(std::span<const layer_description> rows, const bridge_options& o) : rows_(rows), o_(o) {}

  energy::network_desc build() {
    if (rows_.empty()) throw invalid_argument(fn, "the network has no layers");
    current_ = o_.input_format;
    std::size_t i = 0;
    run(i, rows_.front().depth);
    if (i != rows_.size())
      throw invalid_argument(fn, qnas::detail::cat("layer ", i, " (", rows_[i].kind, ") has depth ", rows_[i].depth,
                                                   ", shallower than the first layer's"));
    auto names = std::make_shared<std::vector<std::string>>(std::move(names_));
    for (std::size_t k = 0; k < layers_.size(); ++k) layers_[k].name = (*names)[k].c_str();
    for (const auto& l : layers_) energy::validate(l);
    return {std::move(layers_), std::move(names)};
  }

  static constexpr const char* fn = "qnas::nn::describe_network";

 private:
  // Maps rows[i...] at exactly `depth` until a shallower row (the end of a composite).
  void run(std::size_t& i, int depth) {
    while (i < rows_.size() && rows_[i].depth >= depth) {
      if (rows_[i].depth > depth) throw invalid_argument(where(i), "a nested layer without a composite layer above it");
      const layer_description& d = rows_[i];
      const std::size_t row = i++;
      if (d.op == layer_op::sequential) {
        run(i, depth + 1);
      } else if (d.op == layer_op::residual) {
        const format_info in_fmt = current_;
        run(i, depth + 1);
        const format_info body = current_;
        energy::layer_desc a = energy::add("", d.input, 2);
        a.input = body.bits >= in_fmt.bits ? body : in_fmt;
        a.output = output_unquantized(d) ? a.input : d.output_format;
        push(std::move(a), name(row));
      } else {
        leaf(row, d);
      }
    }
  }

  void leaf(std::size_t row, const layer_description& d) {
    const std::string nm = name(row);
    const tensor_shape in = d.input, out = d.output;
    switch (d.op) {
      case layer_op::conv2d:
      case layer_op::depthwise_conv2d:
      case layer_op::dense: mac_layer(row, d, in, out, nm); return;
      case layer_op::max_pool:
      case layer_op::avg_pool: {
        const auto [k, s, p] = window(row, d);
        energy::layer_desc l = energy::pool(
            "", d.op == layer_op::max_pool ? energy::layer_kind::max_pool : energy::layer_kind::avg_pool, in, k, s, p);
        check_shape(row, d, l.out);
        finish(std::move(l), d, nm);
        return;
      }
      case layer_op::global_avg_pool: {
        energy::layer_desc l = energy::pool("", energy::layer_kind::avg_pool, in, static_cast<int>(in.h), static_cast<int>(in.h));
        l.kernel_w = l.stride_w = static_cast<int>(in.w);
        l.out = flat(in.c);
        finish(std::move(l), d, nm);
        return;
      }
      case layer_op::activation: finish(energy::activation("", in), d, nm); return;
      case layer_op::flatten: finish(energy::flatten("", in), d, nm); return;
      case layer_op::batch_norm:
        // Folded into the layer before it; only an output quantizer costs a conversion.
        if (!output_unquantized(d)) convert(out, d.output_format, nm);
        return;
      case layer_op::unpriced:
      case layer_op::residual:
      case layer_op::sequential: break;
    }
    throw invalid_argument(where(row), "has no energy model: its description's op is unpriced (priced ops: conv2d, "
                                       "depthwise_conv2d, dense, max_pool, avg_pool, global_avg_pool, activation, "
                                       "flatten, batch_norm, residual, sequential)");
  }

  void mac_layer(std::size_t row, const layer_description& d, const tensor_shape& in, const tensor_shape& out,
                 const std::string& nm) {
    energy::layer_desc l;
    if (d.op == layer_op::dense) {
      l = energy::dense("", in, static_cast<int>(out.c), false);
    } else {
      const auto [k, s, p] = window(row, d);
      l = d.op == layer_op::conv2d
              ? energy::conv2d("", in, static_cast<int>(out.c), k, s, p, false, static_cast<int>(d.window.groups))
              : energy::depthwise_conv2d("", in, k, s, p, 1, false);
    }
    check_shape(row, d, l.out);
    const auto params = static_cast<long long>(d.params - d.step_params);  // weights and biases
    if (params == l.weight_count() + static_cast<long long>(l.out.c))
      l.use_bias = true;
    else if (params != l.weight_count())
      throw invalid_argument(where(row), qnas::detail::cat("has ", d.params, " parameters; ", l.weight_count(),
                                                           " weights (+ ", l.out.c, " biases) expected"));
    l.weights = d.weight_format;
    l.bias = d.bias_format;
    l.input = current_;
    l.accumulator_bits = o_.accumulator_bits;
    const energy::mac_operator m = energy::select_operator(l.weights, l.input);
    if (m.float_product) {
      l.output = float32_info;
    } else {
      int acc = o_.accumulator_bits;
      if (acc == 0) {
        acc = energy::accumulator_bits(m, l.fan_in(), l.use_bias);
        if (o_.max_accumulator_bits > 0 && acc > o_.max_accumulator_bits) {
          acc = o_.max_accumulator_bits;
          l.accumulator_bits = acc;
        }
      }
      l.output = energy::accumulator_format(acc);
    }
    current_ = l.output;
    push(std::move(l), nm);
    if (!output_unquantized(d)) convert(out, d.output_format, nm + ".output");
  }

  struct window_args {
    int kernel, stride;
    padding pad;
  };
  window_args window(std::size_t row, const layer_description& d) const {
    if (d.window.kernel < 1 || d.window.stride < 1)
      throw invalid_argument(where(row), qnas::detail::cat("a ", to_string(d.op), " needs a window with kernel and stride >= 1, "
                                                           "the description has kernel ", d.window.kernel, ", stride ",
                                                           d.window.stride));
    return {static_cast<int>(d.window.kernel), static_cast<int>(d.window.stride), d.window.pad};
  }

  // An element-wise or reshaping layer: reads the current format, writes its quantizer's or keeps it.
  void finish(energy::layer_desc l, const layer_description& d, const std::string& nm) {
    l.input = current_;
    l.output = output_unquantized(d) ? current_ : d.output_format;
    current_ = l.output;
    push(std::move(l), nm);
  }

  // An activation converting the current tensor to `f` (a fused output quantizer).
  void convert(const tensor_shape& s, const format_info& f, const std::string& nm) {
    energy::layer_desc a = energy::activation("", s);
    a.input = current_;
    a.output = f;
    current_ = f;
    push(std::move(a), nm);
  }

  void check_shape(std::size_t row, const layer_description& d, const tensor_shape& derived) const {
    if (!(derived == d.output))
      throw invalid_argument(where(row), qnas::detail::cat(to_string(d.op), " ", d.window.kernel, "x", d.window.kernel, "/",
                                                           d.window.stride, " ", to_string(d.window.pad), " on input ",
                                                           to_string(d.input), " gives ", to_string(derived),
                                                           ", but the layer's output is ", to_string(d.output)));
  }

  void push(energy::layer_desc l, std::string nm) {
    layers_.push_back(l);
    names_.push_back(std::move(nm));
  }
  [[nodiscard]] std::string name(std::size_t row) const { return rows_[row].kind + "_" + std::to_string(row); }
  [[nodiscard]] std::string where(std::size_t row) const {
    return qnas::detail::cat(fn, " (layer ", row, ", ", rows_[row].kind, ")");
  }

  std::span<const layer_description> rows_;
  bridge_options o_;
  format_info current_{};
  std::vector<energy::layer_desc> layers_;
  std::vector<std::string> names_;
};

}  // namespace detail

/// The energy model's view of a network given as layer descriptions (in the order and with
/// the depths describe_layers produces). Throws qnas::invalid_argument naming the layer when a
/// layer cannot be priced or its description is inconsistent.
inline energy::network_desc describe_network(std::span<const layer_description> rows, const bridge_options& o = {}) {
  return detail::energy_builder(rows, o).build();
}

/// The energy model's view of a run-time network (or `net.layers()` of a compile-time one).
inline energy::network_desc describe_network(sequential& net, const bridge_options& o = {}) {
  const auto rows = describe_layers(net);
  return describe_network(std::span<const layer_description>(rows), o);
}

}  // namespace qnas::nn
