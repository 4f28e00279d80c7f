// Export of an hls4ml per-layer precision configuration (JSON) for the QONNX file of a network: ap_fixed/ap_int types of weights, biases, accumulators and quantized outputs, keyed by the node names hls4ml reads.
//
// hls4ml's configuration dictionary (what hls4ml.utils.config_from_onnx_model returns with
// granularity = "name", passed to hls4ml as hls_config):
//
//     {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1},
//      "LayerName": {"<node name>": {"Precision": {"weight": .., "bias": .., "accum": .., "result": ..}}}}
//
// hls4ml names a layer it reads from ONNX after the node (node.name), so the names here are the
// node names export_qonnx writes for the same network ("layers[0]/Conv", "layers[4]/Gemm", and
// "layers[0].output/Quant" for an output quantizer), checked against to_qonnx's graph. Types:
//
// * a uniform grid format (uniform_grid_of) with a step 2^-F and codes [lo, hi] is
//   ap_fixed<W, W - F> (ap_ufixed when lo >= 0; ap_int<W> / ap_uint<W> when F = 0), W the fewest
//   bits that hold [lo, hi] in two's complement (signed) or binary (unsigned). hls4ml's integer
//   part I counts the sign bit, so qnas's fixed_point<8, 3> (3 integer bits besides the sign,
//   step 2^-4) is ap_fixed<8, 4>;
// * an output quantizer's type carries the quantization and overflow modes that make the HLS
//   cast compute qnas's quantizer: the rounding found by a probe (rounding_of: AP_RND_CONV half
//   to even, AP_RND_INF half away from zero, AP_RND_ZERO, AP_RND, AP_RND_MIN_INF, AP_TRN floor,
//   AP_TRN_ZERO toward zero) and AP_SAT (AP_SAT_SYM for symmetric formats);
// * the accumulator of a conv/dense layer is energy::accumulator_bits of
//   energy::select_operator(weights, input) over the fan-in (+ bias), taken from the energy
//   model's view of the network (nn::describe_network, so the rule is the energy model's), with
//   the products' fraction bits F_w + F_x: ap_fixed<acc, acc - F_w - F_x>. The layer's result
//   (the Conv/Gemm node's output, before its output quantizer node) is the same type.
//
// Formats hls4ml's ap types cannot hold exactly (floats, po2, block formats, scales that follow
// the data, binary +-s as an output, steps that are not powers of two), an accumulator whose
// input is not a grid format, and a bias with finer steps than the products are refused with
// qnas::invalid_argument naming the layer and the format (hls4ml_policy::refuse), or left at the
// model's default precision with a note in the summary (hls4ml_policy::model_default).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/energy/operators.hpp"
#include "qnas/io/atomic_file.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/onnx/qonnx.hpp"

namespace qnas {

/// What export_hls4ml_config does with a tensor hls4ml's types cannot hold exactly.
enum class hls4ml_policy : std::uint8_t {
  refuse,        ///< throw qnas::invalid_argument naming the layer and the format (default)
  model_default  ///< leave the entry out (hls4ml uses the Model precision there) and add a note
};

/// Options of export_hls4ml_config.
struct hls4ml_options {
  /// The format of the network's input (the first layer's accumulator depends on it), as for
  /// nn::bridge_options; a float input gives the first conv/dense layer a float accumulator,
  /// which hls4ml cannot hold.
  format_info input_format = float32_info;
  std::string model_precision = "ap_fixed<16,6>";  ///< hls4ml's default for everything not listed
  int reuse_factor = 1;                            ///< Model.ReuseFactor, left to the user
  hls4ml_policy unsupported = hls4ml_policy::refuse;
  /// The policy of the QONNX export whose node names the configuration uses.
  onnx_activation_policy activations = onnx_activation_policy::refuse;
};

/// An hls4ml type for a format, or why there is none.
struct hls4ml_type {
  std::string type;  ///< "ap_fixed<8,4>", "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>", "ap_int<8>", ...
  int width = 0, integer = 0, fraction = 0;
  bool is_signed = true;
  std::string why;
  [[nodiscard]] bool ok() const noexcept { return !type.empty(); }
};

/// No type, for the reason `why`.
inline hls4ml_type hls4ml_refused(std::string why) {
  hls4ml_type t;
  t.why = std::move(why);
  return t;
}

/// The ap type of a width, integer part (counting the sign) and signedness, with optional
/// quantization and overflow modes.
inline std::string hls4ml_ap_type(int width, int integer, bool is_signed, const char* rounding = nullptr,
                                  const char* overflow = nullptr) {
  std::string s;
  if (integer == width && rounding == nullptr)
    s = detail::cat(is_signed ? "ap_int<" : "ap_uint<", width, ">");
  else
    s = detail::cat(is_signed ? "ap_fixed<" : "ap_ufixed<", width, ",", integer,
                    rounding != nullptr ? detail::cat(",", rounding, ",", overflow) : std::string(), ">");
  return s;
}

/// The ap type that holds every value of format `f` exactly (a weight or bias type; no modes).
inline hls4ml_type hls4ml_type_of(const format_info& f) {
  hls4ml_type t;
  if (f.group_scale != scale_kind::none) {
    t.why = "its scales follow the data; an ap type has one fixed step";
    return t;
  }
  const uniform_grid g = uniform_grid_of(f);
  if (!g.ok()) {
    t.why = g.why;
    return t;
  }
  int e = 0;
  if (std::frexp(g.step, &e) != 0.5f) {
    t.why = "its step is not a power of two";
    return t;
  }
  t.fraction = 1 - e;  // step = 2^(e-1) = 2^-F
  t.is_signed = g.lo < 0;
  int w = 1;
  while (t.is_signed ? (-(std::int64_t{1} << (w - 1)) > g.lo || (std::int64_t{1} << (w - 1)) - 1 < g.hi)
                     : (std::int64_t{1} << w) - 1 < g.hi)
    ++w;
  t.width = w;
  t.integer = w - t.fraction;
  t.type = hls4ml_ap_type(t.width, t.integer, t.is_signed);
  return t;
}

/// The ap_fixed quantization mode of a rounding rule, or nullptr.
constexpr const char* hls4ml_rounding_mode(grid_rounding r) noexcept {
  switch (r) {
    case grid_rounding::half_even: return "AP_RND_CONV";
    case grid_rounding::half_away: return "AP_RND_INF";
    case grid_rounding::half_toward_zero: return "AP_RND_ZERO";
    case grid_rounding::half_up: return "AP_RND";
    case grid_rounding::half_down: return "AP_RND_MIN_INF";
    case grid_rounding::floor: return "AP_TRN";
    case grid_rounding::toward_zero: return "AP_TRN_ZERO";
    default: return nullptr;
  }
}

/// The ap type whose cast computes output quantizer `q` (type + quantization and overflow
/// modes), proved on rounding_of's probe; or why there is none.
inline hls4ml_type hls4ml_output_type_of(const quantizer& q) {
  hls4ml_type t = hls4ml_type_of(q.info());
  if (!t.ok()) return t;
  if (q.needs_engine()) return hls4ml_refused("it rounds stochastically");
  if (q.info().family == format_family::binary)
    return hls4ml_refused("its values are +-s without zero; an ap type's cast also gives 0");
  if (q.whole_tensor() || q.learned()) return hls4ml_refused("its scale follows the data; an ap type has one fixed step");
  const uniform_grid g = uniform_grid_of(q.info());
  const std::int64_t tmin = t.is_signed ? -(std::int64_t{1} << (t.width - 1)) : 0;
  const std::int64_t tmax = t.is_signed ? (std::int64_t{1} << (t.width - 1)) - 1 : (std::int64_t{1} << t.width) - 1;
  const char* overflow = nullptr;
  if (g.lo == tmin && g.hi == tmax)
    overflow = "AP_SAT";
  else if (t.is_signed && g.lo == -tmax && g.hi == tmax)
    overflow = "AP_SAT_SYM";
  else
    return hls4ml_refused(detail::cat("its codes [", g.lo, ", ", g.hi, "] are not what an ap type saturates to"));
  static constexpr grid_rounding modes[] = {grid_rounding::half_even,   grid_rounding::half_away, grid_rounding::half_toward_zero,
                                            grid_rounding::half_up,     grid_rounding::half_down, grid_rounding::floor,
                                            grid_rounding::toward_zero};
  const grid_rounding_match m = rounding_of(q, g.step, g.lo, g.hi, modes);
  if (!m.found) return hls4ml_refused("it rounds otherwise than every ap_fixed quantization mode (" + m.why + ")");
  t.type = hls4ml_ap_type(t.width, t.integer, t.is_signed, hls4ml_rounding_mode(m.rounding), overflow);
  return t;
}

/// What export_hls4ml_config wrote.
struct hls4ml_summary {
  std::size_t layers = 0;           ///< entries under LayerName
  std::vector<std::string> notes;   ///< tensors left at the model default (hls4ml_policy::model_default)
};

namespace detail {

struct hls4ml_builder {
  static constexpr const char* where = "qnas::export_hls4ml_config";
  const hls4ml_options& o;
  const onnx::ModelProto& model;
  const energy::network_desc& priced;
  nlohmann::json& layers;
  hls4ml_summary& sum;
  std::size_t next_mac = 0;

  [[nodiscard]] bool has_node(const std::string& name) const {
    for (const auto& n : model.graph().node())
      if (n.name() == name) return true;
    return false;
  }
  std::string node_name(const std::string& hint, const char* op, const std::string& what) const {
    const std::string name = hint + "/" + op;
    if (!has_node(name)) throw invalid_argument(where, cat(what, ": the QONNX graph has no node '", name, "'"));
    return name;
  }
  /// Sets `slot` of `entry` to `t`, or refuses / leaves it with a note.
  void set(nlohmann::json& entry, const char* slot, const hls4ml_type& t, const std::string& what, const std::string& format) {
    if (t.ok()) {
      entry["Precision"][slot] = t.type;
      return;
    }
    const std::string msg = cat(what, ": the ", slot, " format ", format, " has no exact hls4ml type (", t.why, ")");
    if (o.unsupported == hls4ml_policy::refuse)
      throw invalid_argument(where, msg + "; pass hls4ml_policy::model_default to leave it at the model precision");
    sum.notes.push_back(msg + "; left at the model precision");
  }
  void add(const std::string& name, nlohmann::json entry) {
    if (entry.contains("Precision")) {
      layers[name] = std::move(entry);
      ++sum.layers;
    }
  }

  void walk(nn::layer& l, const std::string& path) {
    const nn::layer_description d = l.describe();
    const std::string what = path + " (" + l.kind() + ")";
    if (d.op == nn::layer_op::conv2d || d.op == nn::layer_op::depthwise_conv2d || d.op == nn::layer_op::dense) mac(l, d, path, what);
    const std::vector<nn::layer*> ch = l.children();
    for (std::size_t i = 0; i < ch.size(); ++i) walk(*ch[i], path + ".body[" + std::to_string(i) + "]");
    output(l.output_quantizer(), path, what);
  }

  void output(const quantizer& q, const std::string& path, const std::string& what) {
    if (q.is_identity()) return;
    const qonnx_quantizer n = qonnx_quantizer_of(q);
    if (!n.exact) return;  // no QONNX node (refused or left out by the QONNX export)
    nlohmann::json e;
    set(e, "result", hls4ml_output_type_of(q), what, q.name());
    add(node_name(path + ".output", to_string(n.op), what), std::move(e));
  }

  void mac(nn::layer& l, const nn::layer_description& d, const std::string& path, const std::string& what) {
    auto* wl = dynamic_cast<nn::weighted_layer*>(&l);
    if (wl == nullptr) throw invalid_argument(where, cat(what, ": describes itself as weighted but is no nn::weighted_layer"));
    // The energy model's MAC layers come in the same (depth-first) order.
    const energy::layer_desc* el = nullptr;
    while (next_mac < priced.size() && el == nullptr) {
      const energy::layer_desc& c = priced[next_mac++];
      if (c.kind == energy::layer_kind::conv2d || c.kind == energy::layer_kind::depthwise_conv2d ||
          c.kind == energy::layer_kind::dense)
        el = &c;
    }
    if (el == nullptr) throw invalid_argument(where, cat(what, ": the energy model has no conv/dense layer for it"));
    nlohmann::json e;
    const quantizer& wq = wl->weight_quantizer();
    const hls4ml_type w = hls4ml_type_of(wq.info());
    set(e, "weight", wq.is_identity() ? hls4ml_refused("a float") : w, what, wq.name());
    hls4ml_type b;
    if (wl->has_bias()) {
      const quantizer& bq = wl->bias_quantizer();
      b = bq.is_identity() ? hls4ml_refused("a float") : hls4ml_type_of(bq.info());
      set(e, "bias", b, what, bq.name());
    }
    // The accumulator: the energy model's width, the products' fraction bits.
    hls4ml_type acc;
    const hls4ml_type x = hls4ml_type_of(el->input);
    const energy::mac_operator m = energy::select_operator(el->weights, el->input);
    std::string acc_format = cat("accumulator of ", to_string(el->weights.family), " x ", to_string(el->input.family));
    if (m.float_product || el->output == float32_info) {
      acc.why = "a float product (a float weight or input)";
    } else if (el->input == energy::accumulator_format(el->input.bits) || !x.ok()) {
      acc.why = el->input == energy::accumulator_format(el->input.bits)
                    ? "its input is another layer's accumulator (no output quantizer between), whose steps the energy model does not track"
                    : "its input format has no exact type: " + x.why;
    } else if (!w.ok()) {
      acc.why = "its weights have no exact type";
    } else {
      const int bits = el->output.bits;
      const int f = w.fraction + x.fraction;
      acc_format = cat(bits, "-bit accumulator");
      if (wl->has_bias() && b.ok() && b.fraction > f)
        acc.why = cat("the bias has ", b.fraction, " fraction bits, the products ", f);
      else {
        acc.type = hls4ml_ap_type(bits, bits - f, true);
        acc.width = bits, acc.integer = bits - f, acc.fraction = f;
      }
    }
    set(e, "accum", acc, what, acc_format);
    set(e, "result", acc, what, acc_format);
    add(node_name(path, d.op == nn::layer_op::dense ? "Gemm" : "Conv", what), std::move(e));
  }
};

}  // namespace detail

/// The hls4ml configuration of `net` (see the top of this header) as a JSON value, with the
/// node names of to_qonnx(net). Throws qnas::invalid_argument "qnas::export_hls4ml_config:
/// <layer path> (<kind>): the <slot> format <format> has no exact hls4ml type (<why>); ..."
/// under hls4ml_policy::refuse, for a reuse factor below 1, and as to_qonnx and
/// nn::describe_network.
inline nlohmann::json hls4ml_config(nn::sequential& net, const hls4ml_options& options = {},
                                    hls4ml_summary* summary = nullptr) {
  if (options.reuse_factor < 1)
    throw invalid_argument(detail::hls4ml_builder::where, detail::cat("reuse_factor = ", options.reuse_factor, " (must be >= 1)"));
  qonnx_export_options qo;
  qo.activations = options.activations;
  const onnx::ModelProto model = to_qonnx(net, qo);
  nn::bridge_options bo;
  bo.input_format = options.input_format;
  const energy::network_desc priced = nn::describe_network(net, bo);
  nlohmann::json config;
  config["Model"] = {{"Precision", options.model_precision}, {"ReuseFactor", options.reuse_factor}};
  nlohmann::json layers = nlohmann::json::object();
  hls4ml_summary sum;
  detail::hls4ml_builder b{options, model, priced, layers, sum};
  if (!(options.input_format == float32_info)) {
    nlohmann::json e;
    b.set(e, "result", hls4ml_type_of(options.input_format), "the network's input", options.input_format.label);
    b.add("input", std::move(e));
  }
  for (std::size_t i = 0; i < net.size(); ++i) b.walk(net[i], "layers[" + std::to_string(i) + "]");
  b.output(net.output_quantizer(), "network", "the network's output");
  config["LayerName"] = std::move(layers);
  if (summary != nullptr) *summary = std::move(sum);
  return config;
}

/// Writes hls4ml_config(net, options) to `path` (JSON, indented by 2) atomically and returns
/// what it wrote. Throws as hls4ml_config, and qnas::io_error when the file cannot be written.
inline hls4ml_summary export_hls4ml_config(nn::sequential& net, const std::filesystem::path& path,
                                           const hls4ml_options& options = {}) {
  hls4ml_summary sum;
  const nlohmann::json config = hls4ml_config(net, options, &sum);
  io::write_file_atomic(path, config.dump(2) + "\n");
  return sum;
}

}  // namespace qnas
