// Export of a run-time network to ONNX (opset 13): standard float operators, with integer weights and activation quantizers as QuantizeLinear/DequantizeLinear (QDQ) where those reproduce qnas exactly.
//
// The graph takes the network's NHWC float input ([N, H, W, C], or [N, C] for a flat input) and
// works in ONNX's NCHW inside: a Transpose after the input, Conv (weights OIHW; depthwise and
// grouped convolutions as group = channels / groups), Gemm for dense, BatchNormalization with the
// running statistics, MaxPool / AveragePool (count_include_pad = 0, explicit pads split as qnas's
// "same" padding splits them), GlobalAveragePool + Flatten, Relu / Clip(0, 6) / Sigmoid /
// Sigmoid + Mul for swish / Softmax, Add for residual blocks; a flatten of an image is
// Transpose(0, 2, 3, 1) + Flatten, so elements keep qnas's NHWC order. An image output is
// transposed back to NHWC, so the output has the network's own layout.
//
// Weights are the values qnas inference uses: the weight quantizer applied to the float master
// weights, the learned-step (lsq) quantization, or pinned stored values. Where the weight
// format is a uniform integer grid of at most 8 bits (fixed point, ternary, binary) and every
// value is exactly code * step, the initializer holds the int8/uint8 codes and a
// DequantizeLinear gives the values back bit for bit; lsq weights get their learned steps and
// scaled<...> weights a scale found per output channel as per-axis scales, where exact;
// otherwise a float initializer holds the exact values, and metadata_props records the format
// per layer. An output quantizer becomes
// [Clip] + QuantizeLinear + DequantizeLinear only where activation_qdq_of proves the chain equal
// to qnas's quantizer; any other is refused with an error naming the layer and the format
// (onnx_activation_policy::refuse, the default) or left out with a metadata note
// (onnx_activation_policy::float_fallback). Nothing is silently approximated. docs/onnx.md has
// the tables.
//
// Layers are emitted through an onnx_op_registry: built-in layers by their dynamic type or by
// their description's layer_op; a user's layer is added with onnx_op_registry::add<Layer>.
// QONNX (qonnx.hpp) reuses this walk, its operators and the registry: an onnx_quant_writer
// given to detail::build_onnx_model writes the quantized tensors in its own operators instead.
// This header is the optional component qnas::onnx: it links Debian's onnx_proto (libonnx-dev).
// The protobuf classes live in namespace ::onnx, so qnas's names are qnas::export_onnx and
// qnas::onnx_*.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <type_traits>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>
#include <xtensor/xarray.hpp>
#include <xtensor/xmanipulation.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/atomic_file.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/mobilenet.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/onnx/formats.hpp"

namespace qnas {

/// The ONNX operator set the exporter writes (QuantizeLinear/DequantizeLinear with per-axis
/// scales, Clip with input bounds and Unsqueeze with input axes need 13).
inline constexpr std::int64_t onnx_opset = 13;
/// The IR version of the files (ONNX 1.10-1.12 write 8; onnx.checker and onnxruntime read it).
inline constexpr std::int64_t onnx_ir_version = 8;

/// What the exporter does with an activation (output) quantizer that no standard ONNX operator
/// chain reproduces exactly (po2, minifloats, block formats, stochastic rounding, scales that
/// follow the data, fixed point that rounds otherwise than half to even).
enum class onnx_activation_policy : std::uint8_t {
  refuse,         ///< throw qnas::invalid_argument naming the layer and the format (default)
  float_fallback  ///< leave the quantizer out (the graph computes in float there) and record it in metadata_props
};

/// Options of export_onnx.
struct onnx_export_options {
  onnx_activation_policy activations = onnx_activation_policy::refuse;
  /// Integer weights as int8/uint8 codes + DequantizeLinear where exact (false: every weight a
  /// float initializer holding the same exact values).
  bool qdq_weights = true;
  std::string graph_name = "qnas";
  /// Adds the quantized output of every top-level layer whose output quantizer became a
  /// QuantizeLinear/DequantizeLinear pair as an extra graph output named "<path>:quantized"
  /// ("layers[2]:quantized"), in qnas's layout (NHWC or [N, C]): a runtime's integer path can then
  /// be compared with qnas layer by layer.
  bool expose_quantized_activations = false;
};

/// What an export wrote, for logs and tests.
struct onnx_export_summary {
  std::size_t nodes = 0;
  std::size_t qdq_weights = 0;        ///< weight and bias tensors stored as integer codes + DequantizeLinear
  std::size_t float_weights = 0;      ///< weight and bias tensors stored as float (exact values)
  std::size_t qdq_activations = 0;    ///< output quantizers written as [Clip] + QuantizeLinear + DequantizeLinear
  std::size_t float_fallbacks = 0;    ///< output quantizers left out (onnx_activation_policy::float_fallback)
};

class onnx_graph;

/// How a dialect other than QDQ writes quantized tensors (export_qonnx sets one; export_onnx
/// none). `parameter` writes a weight or bias tensor (`layer` is the weighted layer for weights,
/// nullptr for a bias; `channel_axis` the axis of the output channels, or dims.size() when there
/// is none) and returns the float tensor's name; `output` applies an output quantizer to tensor
/// `y` and returns the new name.
struct onnx_quant_writer {
  const char* entry = "qnas::export_onnx";  ///< the entry point named in error messages
  std::function<std::string(onnx_graph&, const std::string& path, const std::string& what, nn::weighted_layer* layer,
                            const quantizer& format, const std::vector<std::int64_t>& dims, std::span<const float> values,
                            std::size_t channel_axis)>
      parameter;
  std::function<std::string(onnx_graph&, const quantizer& q, const std::string& y, const std::string& path,
                            const std::string& what)>
      output;
};

/// Writes one layer: given the layer, its description, the name of its input tensor (NCHW
/// [N, C, H, W] for an image, [N, C] for a flat input) and the layer's path in messages
/// ("layers[3]", "layers[5].body[1]"), adds the nodes and returns the name of its output tensor
/// in the same convention. The layer's output quantizer is applied by the caller.
using onnx_emitter =
    std::function<std::string(onnx_graph&, nn::layer&, const nn::layer_description&, const std::string& input, const std::string& path)>;

/// The emitters of layer kinds: first by the layer's exact dynamic type (add<Layer>), then by
/// its description's layer_op (add(op, ...)). builtin_onnx_ops() holds qnas's layers; copy it
/// and add a user layer:
///
///     qnas::onnx_op_registry ops = qnas::builtin_onnx_ops();
///     ops.add<my_layer>([](qnas::onnx_graph& g, nn::layer& l, const nn::layer_description& d,
///                          const std::string& in, const std::string& path) { ... return out; });
class onnx_op_registry {
 public:
  /// The emitter for layers whose dynamic type is exactly Layer (replaces an earlier one).
  template <class Layer>
  onnx_op_registry& add(onnx_emitter e) {
    static_assert(std::is_base_of_v<nn::layer, Layer>, "qnas::onnx_op_registry::add<Layer>: Layer must derive from qnas::nn::layer");
    for (auto& [t, f] : by_type_)
      if (t == std::type_index(typeid(Layer))) {
        f = std::move(e);
        return *this;
      }
    by_type_.emplace_back(std::type_index(typeid(Layer)), std::move(e));
    return *this;
  }
  /// The emitter for layers whose description says `op` and that no add<Layer> entry names.
  onnx_op_registry& add(nn::layer_op op, onnx_emitter e) {
    by_op_.at(static_cast<std::size_t>(op)) = std::move(e);
    return *this;
  }
  /// The emitter for `l` (described as `d`), or nullptr.
  [[nodiscard]] const onnx_emitter* find(const nn::layer& l, const nn::layer_description& d) const {
    const std::type_index t(typeid(l));
    for (const auto& [k, f] : by_type_)
      if (k == t) return &f;
    const onnx_emitter& f = by_op_.at(static_cast<std::size_t>(d.op));
    return f ? &f : nullptr;
  }

 private:
  std::vector<std::pair<std::type_index, onnx_emitter>> by_type_;
  std::array<onnx_emitter, 12> by_op_{};
};

inline const onnx_op_registry& builtin_onnx_ops();

/// The graph being written, as emitters see it: fresh names, nodes, initializers, the exact
/// weights of a layer, and the emission of a composite layer's children.
class onnx_graph {
 public:
  static constexpr const char* where = "qnas::export_onnx";

  onnx_graph(onnx::ModelProto& model, const onnx_export_options& opt, const onnx_op_registry& ops,
             const onnx_quant_writer* writer = nullptr)
      : model_(model), g_(*model.mutable_graph()), opt_(opt), ops_(ops), writer_(writer) {}

  [[nodiscard]] const onnx_export_options& options() const noexcept { return opt_; }
  [[nodiscard]] const onnx_export_summary& summary() const noexcept { return sum_; }
  [[nodiscard]] onnx::GraphProto& proto() noexcept { return g_; }
  /// The summary, for a dialect's writer to count what it wrote.
  [[nodiscard]] onnx_export_summary& counts() noexcept { return sum_; }
  /// The entry point errors name ("qnas::export_onnx", "qnas::export_qonnx").
  [[nodiscard]] const char* entry() const noexcept { return writer_ != nullptr ? writer_->entry : where; }

  /// A tensor name not used before, from `hint`.
  std::string fresh(const std::string& hint) {
    const std::size_t n = used_[hint]++;
    return n == 0 ? hint : hint + "_" + std::to_string(n);
  }

  /// Adds node `op` reading `inputs` (an empty name: an omitted optional input) and returns its
  /// node, whose one output is named from `out_hint`.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& out_hint) {
    onnx::NodeProto* n = g_.add_node();
    n->set_op_type(op);
    n->set_name(fresh(out_hint + "/" + op));
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(fresh(out_hint));
    ++sum_.nodes;
    return *n;
  }
  /// The output name of node `n`.
  static const std::string& out(const onnx::NodeProto& n) { return n.output(0); }

  static void attr(onnx::NodeProto& n, const std::string& name, std::int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, float v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }

  /// A float initializer of `dims` holding `values` (row-major).
  std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims, std::span<const float> values) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(fresh(hint));
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return t->name();
  }
  /// A float scalar initializer.
  std::string scalar(const std::string& hint, float v) { return floats(hint, {}, std::span<const float>(&v, 1)); }
  /// An int64 initializer (shapes, axes).
  std::string int64s(const std::string& hint, const std::vector<std::int64_t>& values) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(fresh(hint));
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t->add_int64_data(v);
    return t->name();
  }
  /// An int8 or uint8 initializer of `dims` holding `codes`.
  std::string integers(const std::string& hint, onnx_integer_type type, const std::vector<std::int64_t>& dims,
                       const std::vector<std::int32_t>& codes) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(fresh(hint));
    t->set_data_type(type == onnx_integer_type::int8 ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
    for (auto d : dims) t->add_dims(d);
    std::string raw(codes.size(), '\0');
    for (std::size_t i = 0; i < codes.size(); ++i) raw[i] = static_cast<char>(static_cast<std::uint8_t>(codes[i]));
    t->set_raw_data(std::move(raw));
    return t->name();
  }
  /// A zero point of `type` (a scalar 0).
  std::string zero_point(const std::string& hint, onnx_integer_type type) { return integers(hint, type, {}, {0}); }

  /// Records `value` under `key` in the model's metadata_props.
  void metadata(const std::string& key, const std::string& value) {
    auto* p = model_.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }

  /// A parameter tensor of `path`'s layer: `values` (the exact values qnas computes with, in
  /// ONNX layout `dims`) stored as integer codes + DequantizeLinear when `format` is an integer
  /// grid that holds every value exactly, else as floats (and metadata_props records a format
  /// other than float32 under "qnas.<path>.<what>"). Returns the name of the float tensor.
  std::string parameter(const std::string& path, const std::string& what, const quantizer& format,
                        const std::vector<std::int64_t>& dims, std::span<const float> values) {
    if (writer_ != nullptr && writer_->parameter)
      return writer_->parameter(*this, path, what, nullptr, format, dims, values, dims.size());
    const std::string hint = path + "." + what;
    if (!format.is_identity()) {
      const onnx_integer_grid grid = integer_grid_of(format.info());
      std::vector<std::int32_t> codes;
      if (opt_.qdq_weights && grid.ok()) codes = exact_codes(values, grid);
      if (!codes.empty() || (grid.ok() && values.empty() && opt_.qdq_weights)) {
        const std::string q = integers(hint + "_codes", grid.type, dims, codes);
        const std::string s = scalar(hint + "_scale", grid.step);
        const std::string z = zero_point(hint + "_zero_point", grid.type);
        ++sum_.qdq_weights;
        return out(node("DequantizeLinear", {q, s, z}, hint));
      }
      return exact_floats(path, what, format, dims, values,
                          grid.ok() ? "float initializer: the values are not all exact multiples of the step in " +
                                          std::string(to_string(grid.type))
                                    : "float initializer holding the exact quantized values: " + grid.why);
    }
    ++sum_.float_weights;
    return floats(hint, dims, values);
  }

  /// A float initializer holding `values` exactly, its format (when not float32) recorded in
  /// metadata_props under "qnas.<path>.<what>" as "<format> (<note>)".
  std::string exact_floats(const std::string& path, const std::string& what, const quantizer& format,
                           const std::vector<std::int64_t>& dims, std::span<const float> values, const std::string& note) {
    if (!format.is_identity()) metadata("qnas." + path + "." + what, format.name() + " (" + note + ")");
    ++sum_.float_weights;
    return floats(path + "." + what, dims, values);
  }

  /// The weights of `path`'s layer `l`: `values` are its exact weights in ONNX layout `dims`,
  /// whose axis `channel_axis` holds the output channels. Weights of a format with learned steps
  /// (lsq) are codes + DequantizeLinear with the layer's steps as per-axis scales (one per
  /// output channel, or one) where code * step gives every value back bit for bit, which is
  /// what qnas computes. Weights whose scales follow the data (scaled<...> with a unit of at most
  /// 8 bits) get a scale per output channel found from the values (channel_grid), where one gives
  /// every value back. Every other format, and these where nothing is exact, go through parameter().
  std::string weights(const std::string& path, nn::weighted_layer& l, const std::vector<std::int64_t>& dims,
                      std::span<const float> values, std::size_t channel_axis) {
    const quantizer& q = l.weight_quantizer();
    if (writer_ != nullptr && writer_->parameter) return writer_->parameter(*this, path, "weights", &l, q, dims, values, channel_axis);
    if (q.learned() && opt_.qdq_weights && l.weight_steps().value.size() > 0 && channel_axis < dims.size()) {
      const xt::xarray<float>& steps = l.weight_steps().value;
      const auto channels = static_cast<std::size_t>(dims[channel_axis]);
      std::size_t inner = 1;
      for (std::size_t d = channel_axis + 1; d < dims.size(); ++d) inner *= static_cast<std::size_t>(dims[d]);
      if (steps.size() == 1 || steps.size() == channels) {
        std::vector<std::int32_t> codes(values.size());
        bool exact = true, negative = false;
        std::int32_t top = 0;
        for (std::size_t i = 0; i < values.size() && exact; ++i) {
          const float s = steps.data()[steps.size() == 1 ? 0 : (i / inner) % channels];
          const float k = values[i] / s;
          exact = k >= -128.0f && k <= 255.0f && k == std::nearbyint(k);
          if (!exact) break;
          codes[i] = static_cast<std::int32_t>(k);
          exact = std::bit_cast<std::uint32_t>(static_cast<float>(codes[i]) * s) == std::bit_cast<std::uint32_t>(values[i]);
          negative = negative || codes[i] < 0;
          top = std::max(top, codes[i]);
        }
        if (exact && !(negative && top > 127)) {
          const onnx_integer_type type = negative || top <= 127 ? onnx_integer_type::int8 : onnx_integer_type::uint8;
          return dequantized(path + ".weights", type, dims, codes, {steps.data(), steps.size()}, channel_axis);
        }
      }
    }
    const format_info& f = q.info();
    const bool grid_family = f.family == format_family::fixed_point || f.family == format_family::ternary ||
                             f.family == format_family::binary || f.family == format_family::binary01;
    if (q.whole_tensor() && !q.learned() && grid_family && f.bits <= 8 && f.block_size == 1 && opt_.qdq_weights &&
        channel_axis < dims.size()) {
      // scales from the data (scaled<...>): a scale per output channel, found from the values
      const auto channels = static_cast<std::size_t>(dims[channel_axis]);
      std::size_t inner = 1;
      for (std::size_t d = channel_axis + 1; d < dims.size(); ++d) inner *= static_cast<std::size_t>(dims[d]);
      const bool is_signed = f.min_value < 0;
      std::vector<float> scales;
      std::vector<std::int32_t> codes;
      if (channel_grid(values, channels, inner, is_signed, is_signed ? 127 : 255, scales, codes))
        return dequantized(path + ".weights", is_signed ? onnx_integer_type::int8 : onnx_integer_type::uint8, dims, codes,
                           scales, channel_axis);
    }
    return parameter(path, "weights", q, dims, values);
  }

  /// Codes of `type` and `dims` + DequantizeLinear with `scales` (one: per tensor; else one per
  /// index of axis `axis`) and zero points 0; returns the float tensor's name.
  std::string dequantized(const std::string& hint, onnx_integer_type type, const std::vector<std::int64_t>& dims,
                          const std::vector<std::int32_t>& codes, std::span<const float> scales, std::size_t axis) {
    const std::string c = integers(hint + "_codes", type, dims, codes);
    const bool per_axis = scales.size() > 1;
    const std::vector<std::int64_t> sdims =
        per_axis ? std::vector<std::int64_t>{static_cast<std::int64_t>(scales.size())} : std::vector<std::int64_t>{};
    const std::string sc = floats(hint + "_scale", sdims, scales);
    const std::string z = integers(hint + "_zero_point", type, sdims, std::vector<std::int32_t>(scales.size(), 0));
    onnx::NodeProto& n = node("DequantizeLinear", {c, sc, z}, hint);
    if (per_axis) attr(n, "axis", static_cast<std::int64_t>(axis));
    ++sum_.qdq_weights;
    return out(n);
  }

  /// Emits layer `l` on `input` with the registry's emitter, then its output quantizer; returns
  /// the output tensor name.
  std::string emit(nn::layer& l, const std::string& input, const std::string& path) {
    const nn::layer_description d = l.describe();
    const std::string what = path + " (" + l.kind() + ")";
    const onnx_emitter* e = ops_.find(l, d);
    if (e == nullptr)
      throw invalid_argument(entry(), detail::cat(what, ": no ONNX emitter for this layer (layer_op ", nn::to_string(d.op),
                                                "); add one with onnx_op_registry::add<Layer>"));
    std::string y = (*e)(*this, l, d, input, path);
    return quantize_output(l.output_quantizer(), y, path, what);
  }
  /// Emits the children of a composite layer in order (path + ".body[i]").
  std::string emit_children(nn::layer& l, std::string x, const std::string& path) {
    const std::vector<nn::layer*> c = l.children();
    for (std::size_t i = 0; i < c.size(); ++i) x = emit(*c[i], x, path + ".body[" + std::to_string(i) + "]");
    return x;
  }

  /// The output quantizer `q` applied to tensor `y` ([Clip] + QuantizeLinear + DequantizeLinear),
  /// or left out or refused by the options' policy.
  std::string quantize_output(const quantizer& q, const std::string& y, const std::string& path, const std::string& what) {
    if (q.is_identity()) return y;
    if (writer_ != nullptr && writer_->output) return writer_->output(*this, q, y, path, what);
    const onnx_activation_qdq& a = activation_qdq(q);
    if (!a.ok()) return unquantized_output(q, y, path, what, "ONNX", a.why);
    std::string x = y;
    const std::string hint = path + ".output";
    if (a.clip) x = out(node("Clip", {x, scalar(hint + "_min", a.clip_min), scalar(hint + "_max", a.clip_max)}, hint + "_clip"));
    const std::string s = scalar(hint + "_scale", a.grid.step);
    const std::string z = zero_point(hint + "_zero_point", a.grid.type);
    x = out(node("QuantizeLinear", {x, s, z}, hint + "_q"));
    ++sum_.qdq_activations;
    return out(node("DequantizeLinear", {x, s, z}, hint));
  }

  /// An output quantizer `q` of `path` that `dialect` cannot express (`why`): refused with
  /// qnas::invalid_argument naming the layer and the format (onnx_activation_policy::refuse), or
  /// left out with a metadata note (float_fallback); returns `y`.
  std::string unquantized_output(const quantizer& q, const std::string& y, const std::string& path, const std::string& what,
                                 const char* dialect, const std::string& why) {
    if (opt_.activations == onnx_activation_policy::refuse)
      throw invalid_argument(entry(), detail::cat(what, ": the output format ", q.name(), " has no exact ", dialect,
                                                  " equivalent (", why,
                                                  "); pass onnx_activation_policy::float_fallback to export without it"));
    metadata("qnas." + path + ".output", q.name() + " (left out: " + why + "; the graph computes in float here)");
    ++sum_.float_fallbacks;
    return y;
  }

  /// The ONNX pads [top, left, bottom, right] of a window with qnas's split (conv_pad_before
  /// before, the rest after), checked to give qnas's output size.
  static std::vector<std::int64_t> pads(const nn::layer_description& d, const std::string& what) {
    const auto& in = d.input;
    const auto& w = d.window;
    const auto one = [&](std::size_t n, std::size_t out) {
      const std::size_t before = nn::conv_pad_before(n, w.kernel, w.stride, w.pad);
      const std::size_t needed = (out - 1) * w.stride + w.kernel;
      const std::size_t after = needed > n + before ? needed - n - before : 0;
      if ((n + before + after - w.kernel) / w.stride + 1 != out)
        throw invalid_argument(where, detail::cat(what, ": the ONNX window gives another output size than qnas"));
      return std::pair<std::int64_t, std::int64_t>(static_cast<std::int64_t>(before), static_cast<std::int64_t>(after));
    };
    const auto [t, b] = one(in.h, d.output.h);
    const auto [l, r] = one(in.w, d.output.w);
    return {t, l, b, r};
  }

 public:
  /// activation_qdq_of(q), computed once per format of the graph.
  const onnx_activation_qdq& activation_qdq(const quantizer& q) {
    for (const auto& [k, v] : probed_)
      if (k == q) return v;
    probed_.emplace_back(q, activation_qdq_of(q));
    return probed_.back().second;
  }

 private:
  onnx::ModelProto& model_;
  onnx::GraphProto& g_;
  const onnx_export_options& opt_;
  const onnx_op_registry& ops_;
  const onnx_quant_writer* writer_ = nullptr;
  onnx_export_summary sum_;
  std::map<std::string, std::size_t> used_;
  std::vector<std::pair<quantizer, onnx_activation_qdq>> probed_;
};

namespace detail {

/// The exact values a weighted layer computes with: pinned values, lsq with the layer's steps,
/// or the weight quantizer applied to the master weights (checked like nn::export_model does).
inline xt::xarray<float> exact_weights(nn::weighted_layer& l, const std::string& what,
                                       const char* entry = onnx_graph::where) {
  const quantizer& q = l.weight_quantizer();
  if (const nn::stored_weights* p = l.pinned_weights()) return p->values;
  if (q.is_identity()) return l.weights().value;
  if (q.needs_engine())
    throw invalid_argument(entry, cat(what, ": the weight format ", q.name(),
                                                  " rounds stochastically, so inference has no fixed weights to export"));
  const xt::xarray<float>& w = l.weights().value;
  xt::xarray<float> out = xt::empty<float>(w.shape());
  const std::vector<std::size_t> shape(w.shape().begin(), w.shape().end());
  if (q.learned()) {
    l.initialize_weight_steps();
    const xt::xarray<float>& s = l.weight_steps().value;
    q.quantize_with_steps({w.data(), w.size()}, {out.data(), out.size()}, shape, {s.data(), s.size()});
  } else {
    q({w.data(), w.size()}, {out.data(), out.size()}, shape);
  }
  return out;
}
inline xt::xarray<float> exact_bias(nn::weighted_layer& l, const std::string& what, const char* entry = onnx_graph::where) {
  const quantizer& q = l.bias_quantizer();
  if (const nn::stored_weights* p = l.pinned_bias()) return p->values;
  const xt::xarray<float>& b = l.bias().value;
  if (q.is_identity()) return b;
  if (q.needs_engine())
    throw invalid_argument(entry, cat(what, ": the bias format ", q.name(),
                                                  " rounds stochastically, so inference has no fixed bias to export"));
  xt::xarray<float> out = xt::empty<float>(b.shape());
  const std::size_t shape[1] = {b.size()};
  q({b.data(), b.size()}, {out.data(), out.size()}, shape);
  return out;
}

inline std::vector<std::int64_t> dims_of(const xt::xarray<float>& a) { return {a.shape().begin(), a.shape().end()}; }

inline nn::weighted_layer& weighted(nn::layer& l, const std::string& what) {
  auto* w = dynamic_cast<nn::weighted_layer*>(&l);
  if (w == nullptr) throw invalid_argument(onnx_graph::where, cat(what, ": describes itself as weighted but is no nn::weighted_layer"));
  return *w;
}

/// conv2d and depthwise_conv2d: Conv with OIHW weights (HWIO -> OIHW; depthwise [k,k,c] ->
/// [c,1,k,k], group = c).
inline std::string emit_conv(onnx_graph& g, nn::layer& l, const nn::layer_description& d, const std::string& x,
                             const std::string& path) {
  const std::string what = path + " (" + l.kind() + ")";
  nn::weighted_layer& wl = weighted(l, what);
  const xt::xarray<float> w = exact_weights(wl, what, g.entry());
  const bool depthwise = d.op == nn::layer_op::depthwise_conv2d;
  const auto k = static_cast<std::int64_t>(d.window.kernel);
  std::int64_t group = 1;
  xt::xarray<float> oihw;
  if (depthwise) {
    if (w.dimension() != 3) throw invalid_argument(onnx_graph::where, cat(what, ": depthwise weights must be [k, k, c]"));
    oihw = xt::transpose(w, {2, 0, 1});
    oihw.reshape({w.shape()[2], std::size_t{1}, w.shape()[0], w.shape()[1]});
    group = static_cast<std::int64_t>(d.input.c);
  } else {
    if (w.dimension() != 4) throw invalid_argument(onnx_graph::where, cat(what, ": conv2d weights must be HWIO [k, k, in, out]"));
    oihw = xt::transpose(w, {3, 2, 0, 1});
    group = static_cast<std::int64_t>(d.window.groups);
    if (w.shape()[2] * d.window.groups != d.input.c)
      throw invalid_argument(onnx_graph::where, cat(what, ": weights hold ", w.shape()[2], " input channels per group for ",
                                                    d.window.groups, " groups of ", d.input.c, " channels"));
  }
  std::vector<std::string> in{x, g.weights(path, wl, dims_of(oihw), {oihw.data(), oihw.size()}, 0)};
  if (wl.has_bias()) {
    const xt::xarray<float> b = exact_bias(wl, what, g.entry());
    in.push_back(g.parameter(path, "bias", wl.bias_quantizer(), dims_of(b), {b.data(), b.size()}));
  }
  onnx::NodeProto& n = g.node("Conv", in, path);
  onnx_graph::attr(n, "kernel_shape", std::vector<std::int64_t>{k, k});
  onnx_graph::attr(n, "strides", std::vector<std::int64_t>{static_cast<std::int64_t>(d.window.stride),
                                                          static_cast<std::int64_t>(d.window.stride)});
  onnx_graph::attr(n, "pads", onnx_graph::pads(d, what));
  onnx_graph::attr(n, "group", group);
  return onnx_graph::out(n);
}

/// dense: Gemm(x, W[in, out], b).
inline std::string emit_dense(onnx_graph& g, nn::layer& l, const nn::layer_description&, const std::string& x,
                              const std::string& path) {
  const std::string what = path + " (" + l.kind() + ")";
  nn::weighted_layer& wl = weighted(l, what);
  const xt::xarray<float> w = exact_weights(wl, what, g.entry());
  std::vector<std::string> in{x, g.weights(path, wl, dims_of(w), {w.data(), w.size()}, 1)};
  if (wl.has_bias()) {
    const xt::xarray<float> b = exact_bias(wl, what, g.entry());
    in.push_back(g.parameter(path, "bias", wl.bias_quantizer(), dims_of(b), {b.data(), b.size()}));
  }
  return onnx_graph::out(g.node("Gemm", in, path));
}

inline std::string emit_pool(onnx_graph& g, nn::layer& l, const nn::layer_description& d, const std::string& x,
                             const std::string& path) {
  const bool max = d.op == nn::layer_op::max_pool;
  onnx::NodeProto& n = g.node(max ? "MaxPool" : "AveragePool", {x}, path);
  const auto k = static_cast<std::int64_t>(d.window.kernel), s = static_cast<std::int64_t>(d.window.stride);
  onnx_graph::attr(n, "kernel_shape", std::vector<std::int64_t>{k, k});
  onnx_graph::attr(n, "strides", std::vector<std::int64_t>{s, s});
  onnx_graph::attr(n, "pads", onnx_graph::pads(d, path + " (" + l.kind() + ")"));
  if (!max) onnx_graph::attr(n, "count_include_pad", std::int64_t{0});  // qnas divides by the taps inside the image
  return onnx_graph::out(n);
}

inline std::string flatten_nchw(onnx_graph& g, const std::string& x, const std::string& path, bool image) {
  std::string y = x;
  if (image) {
    onnx::NodeProto& t = g.node("Transpose", {y}, path + "_nhwc");  // back to qnas's element order
    onnx_graph::attr(t, "perm", std::vector<std::int64_t>{0, 2, 3, 1});
    y = onnx_graph::out(t);
  }
  onnx::NodeProto& f = g.node("Flatten", {y}, path);
  onnx_graph::attr(f, "axis", std::int64_t{1});
  return onnx_graph::out(f);
}

inline std::string emit_batch_norm(onnx_graph& g, nn::layer& l, const nn::layer_description&, const std::string& x,
                                   const std::string& path) {
  auto* bn = dynamic_cast<nn::batch_norm_layer*>(&l);
  if (bn == nullptr)
    throw invalid_argument(onnx_graph::where, cat(path, " (", l.kind(), "): describes itself as batch_norm but is no nn::batch_norm_layer"));
  const auto c = static_cast<std::int64_t>(bn->running_mean().size());
  const auto span = [](const xt::xarray<float>& a) { return std::span<const float>(a.data(), a.size()); };
  onnx::NodeProto& n = g.node("BatchNormalization",
                              {x, g.floats(path + ".gamma", {c}, span(bn->gamma().value)),
                               g.floats(path + ".beta", {c}, span(bn->beta().value)),
                               g.floats(path + ".running_mean", {c}, bn->running_mean()),
                               g.floats(path + ".running_var", {c}, bn->running_var())},
                              path);
  onnx_graph::attr(n, "epsilon", bn->epsilon());
  return onnx_graph::out(n);
}

inline std::string emit_squeeze_excite(onnx_graph& g, nn::layer& l, const nn::layer_description& d, const std::string& x,
                                       const std::string& path) {
  if (!(d.weight_format == float32_info))
    throw invalid_argument(onnx_graph::where, cat(path, " (", l.kind(), "): squeeze_excite with ", d.weight_format_name,
                                                  " weights is not exported yet (the layer does not expose its weight quantizer)"));
  const std::vector<nn::parameter*> p = l.parameters();  // w1 [c, r], b1 [r], w2 [r, c], b2 [c]
  const auto f = [&](const char* name, const nn::parameter* t) {
    return g.floats(path + "." + name, dims_of(t->value), {t->value.data(), t->value.size()});
  };
  std::string s = onnx_graph::out(g.node("GlobalAveragePool", {x}, path + ".mean"));
  s = flatten_nchw(g, s, path + ".squeeze", false);
  s = onnx_graph::out(g.node("Gemm", {s, f("w1", p[0]), f("b1", p[1])}, path + ".reduce"));
  s = onnx_graph::out(g.node("Relu", {s}, path + ".relu"));
  s = onnx_graph::out(g.node("Gemm", {s, f("w2", p[2]), f("b2", p[3])}, path + ".expand"));
  s = onnx_graph::out(g.node("Sigmoid", {s}, path + ".gate"));
  s = onnx_graph::out(g.node("Unsqueeze", {s, g.int64s(path + ".axes", {2, 3})}, path + ".gate4"));
  return onnx_graph::out(g.node("Mul", {x, s}, path));
}

inline onnx_emitter unary(const char* op) {
  return [op](onnx_graph& g, nn::layer&, const nn::layer_description&, const std::string& x, const std::string& path) {
    return onnx_graph::out(g.node(op, {x}, path));
  };
}

inline onnx_op_registry make_builtin_onnx_ops() {
  using nn::layer_op;
  onnx_op_registry r;
  r.add(layer_op::conv2d, emit_conv);
  r.add(layer_op::depthwise_conv2d, emit_conv);
  r.add(layer_op::dense, emit_dense);
  r.add(layer_op::max_pool, emit_pool);
  r.add(layer_op::avg_pool, emit_pool);
  r.add(layer_op::global_avg_pool, [](onnx_graph& g, nn::layer&, const nn::layer_description&, const std::string& x,
                                      const std::string& path) {
    return flatten_nchw(g, onnx_graph::out(g.node("GlobalAveragePool", {x}, path + "_pool")), path, false);
  });
  r.add(layer_op::flatten, [](onnx_graph& g, nn::layer&, const nn::layer_description& d, const std::string& x,
                              const std::string& path) { return flatten_nchw(g, x, path, d.input.is_image()); });
  r.add<nn::batch_norm_layer>(emit_batch_norm);
  r.add<nn::relu_layer>(unary("Relu"));
  r.add<nn::sigmoid_layer>(unary("Sigmoid"));
  r.add<nn::relu6_layer>([](onnx_graph& g, nn::layer&, const nn::layer_description&, const std::string& x,
                            const std::string& path) {
    return onnx_graph::out(g.node("Clip", {x, g.scalar(path + "_min", 0.0f), g.scalar(path + "_max", 6.0f)}, path));
  });
  r.add<nn::swish_layer>([](onnx_graph& g, nn::layer&, const nn::layer_description&, const std::string& x,
                            const std::string& path) {
    const std::string s = onnx_graph::out(g.node("Sigmoid", {x}, path + "_sigmoid"));
    return onnx_graph::out(g.node("Mul", {x, s}, path));
  });
  r.add<nn::softmax_layer>([](onnx_graph& g, nn::layer&, const nn::layer_description&, const std::string& x,
                              const std::string& path) {
    onnx::NodeProto& n = g.node("Softmax", {x}, path);
    onnx_graph::attr(n, "axis", std::int64_t{1});
    return onnx_graph::out(n);
  });
  r.add<nn::squeeze_excite_layer>(emit_squeeze_excite);
  r.add(layer_op::sequential, [](onnx_graph& g, nn::layer& l, const nn::layer_description&, const std::string& x,
                                 const std::string& path) { return g.emit_children(l, x, path); });
  r.add(layer_op::residual, [](onnx_graph& g, nn::layer& l, const nn::layer_description&, const std::string& x,
                               const std::string& path) {
    const std::string f = g.emit_children(l, x, path);
    return onnx_graph::out(g.node("Add", {x, f}, path));
  });
  return r;
}

inline void value_info(onnx::ValueInfoProto& v, const std::string& name, const tensor_shape& s, bool nchw) {
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  std::vector<std::size_t> dims;
  if (s.is_flat())
    dims = {s.c};
  else if (nchw)
    dims = {s.c, s.h, s.w};
  else
    dims = {s.h, s.w, s.c};
  for (auto d : dims) shape->add_dim()->set_dim_value(static_cast<std::int64_t>(d));
}

}  // namespace detail

inline const onnx_op_registry& builtin_onnx_ops() {
  static const onnx_op_registry r = detail::make_builtin_onnx_ops();
  return r;
}

namespace detail {

/// The model of `net` as to_onnx describes it, with quantized tensors written by `writer`
/// (nullptr: QDQ) and the operator sets `opsets` ({domain, version}) beside the default one.
inline onnx::ModelProto build_onnx_model(nn::sequential& net, const onnx_export_options& options, const onnx_op_registry& ops,
                                         onnx_export_summary* summary, const onnx_quant_writer* writer,
                                         const std::vector<std::pair<std::string, std::int64_t>>& opsets) {
  onnx::ModelProto m;
  m.set_ir_version(onnx_ir_version);
  m.set_producer_name("qnas");
  m.set_producer_version("0.1.0");
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(onnx_opset);
  for (const auto& [domain, version] : opsets) {
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  onnx_graph g(m, options, ops, writer);
  g.proto().set_name(options.graph_name);
  const tensor_shape in = net.input_shape(), out = net.output_shape();
  detail::value_info(*g.proto().add_input(), g.fresh("input"), in, false);
  g.fresh("output");                                      // reserved for the graph output,
  onnx::ValueInfoProto& output = *g.proto().add_output();  // the first one (exposed activations follow)
  std::string x = "input";
  if (in.is_image()) {
    onnx::NodeProto& t = g.node("Transpose", {x}, "input_nchw");
    onnx_graph::attr(t, "perm", std::vector<std::int64_t>{0, 3, 1, 2});
    x = onnx_graph::out(t);
  }
  for (std::size_t i = 0; i < net.size(); ++i) {
    const std::string path = "layers[" + std::to_string(i) + "]";
    x = g.emit(net[i], x, path);
    const quantizer& q = net[i].output_quantizer();
    if (options.expose_quantized_activations && writer == nullptr && !q.is_identity() && g.activation_qdq(q).ok()) {
      const tensor_shape s = net[i].output_shape();
      onnx::NodeProto& n = g.node(s.is_image() ? "Transpose" : "Identity", {x}, path + ":quantized");
      if (s.is_image()) onnx_graph::attr(n, "perm", std::vector<std::int64_t>{0, 2, 3, 1});
      detail::value_info(*g.proto().add_output(), onnx_graph::out(n), s, false);
    }
  }
  x = g.quantize_output(net.output_quantizer(), x, "network", "the network's output");
  onnx::NodeProto* last = nullptr;
  if (out.is_image()) {
    last = &g.node("Transpose", {x}, "output_nhwc");
    onnx_graph::attr(*last, "perm", std::vector<std::int64_t>{0, 2, 3, 1});
  } else {
    last = &g.node("Identity", {x}, "output_identity");
  }
  last->set_output(0, "output");
  detail::value_info(output, "output", out, false);
  if (summary != nullptr) *summary = g.summary();
  return m;
}

/// Serializes `m` and writes it to `path` atomically.
inline void write_onnx_model(const onnx::ModelProto& m, const std::filesystem::path& path, const char* entry) {
  std::string bytes;
  if (!m.SerializeToString(&bytes))
    throw invalid_argument(entry, cat("the model of '", path.string(), "' does not serialize (over 2 GiB?)"));
  io::write_file_atomic(path, bytes);
}

}  // namespace detail

/// The ONNX model of `net` (see the top of this header): input "input" and output "output",
/// NHWC (or [N, C]) float with a symbolic batch dimension N. `summary` (optional) receives counts.
/// Throws qnas::invalid_argument "qnas::export_onnx: <layer path> (<kind>): ..." for a layer no
/// emitter handles, stochastic weight formats, an output quantizer without an exact ONNX
/// equivalent under onnx_activation_policy::refuse (naming the format and why), and squeeze-excite
/// with quantized weights.
inline onnx::ModelProto to_onnx(nn::sequential& net, const onnx_export_options& options = {},
                                const onnx_op_registry& ops = builtin_onnx_ops(), onnx_export_summary* summary = nullptr) {
  return detail::build_onnx_model(net, options, ops, summary, nullptr, {});
}

/// Writes to_onnx(net, options, ops) to `path` atomically (io::write_file_atomic) and returns
/// what it wrote. Throws as to_onnx, and qnas::io_error when the file cannot be written.
inline onnx_export_summary export_onnx(nn::sequential& net, const std::filesystem::path& path,
                                       const onnx_export_options& options = {},
                                       const onnx_op_registry& ops = builtin_onnx_ops()) {
  onnx_export_summary sum;
  detail::write_onnx_model(to_onnx(net, options, ops, &sum), path, onnx_graph::where);
  return sum;
}

}  // namespace qnas
