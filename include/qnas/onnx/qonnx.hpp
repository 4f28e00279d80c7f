// Export of a run-time network to QONNX: the ONNX graph of export_onnx with quantized tensors as QONNX's Quant, BipolarQuant and FloatQuant nodes (domain qonnx.custom_op.general), for FINN and hls4ml.
//
// The network walk, the layers' operators and the op registry are export_onnx's (export.hpp);
// only quantized tensors are written differently, through an onnx_quant_writer:
//
// * a weight or bias of a uniform grid format (fixed point of any width up to 62 bits, ternary,
//   binary01) is its exact float values as an initializer followed by
//   Quant(values, scale, zeropt = 0, bitwidth; signed, narrow, rounding_mode); the scale is the
//   format's step, the layer's learned steps (lsq, per output channel) or a scale per output
//   channel found from the values (scaled<...>), and every value is checked to come out of the
//   Quant node unchanged (qonnx_quantizer::reference); binary +-s weights go through
//   BipolarQuant(values, s); minifloats through FloatQuant where qonnx_quantizer_of matches the
//   format's rounding, overflow and subnormals on every probed input; anything else (po2,
//   block formats, non-uniform or outlier mantissas, values no node gives back) is a float
//   initializer holding the exact values with the format in metadata_props, as in export_onnx;
// * an output quantizer becomes one Quant / BipolarQuant / FloatQuant node where
//   qonnx_quantizer_of proves it equal to qnas's quantizer on a probe of every code, every
//   half-way point and its float neighbours, both saturation sides (fixed point: the rounding
//   policy picks the QONNX rounding_mode that computes the same, or the format is refused);
//   otherwise it is refused or left out by onnx_activation_policy, naming the layer and format.
//
// Quant is defined (QONNX docs, quant_op.md) as y = clamp(x / scale + zeropt, min_int, max_int),
// rounded by rounding_mode, then (y - zeropt) * scale; BipolarQuant as (x >= 0 ? 1 : -1) * scale;
// FloatQuant (floatquant_op.md) rounds x / scale to a float of exponent_bitwidth,
// mantissa_bitwidth and exponent_bias with subnormals, then clips to max_val (saturation = 1) or
// maps overflow to +-inf / NaN (saturation = 0, by has_inf / has_nan). docs/onnx.md has the
// table and what was checked.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qnas/onnx/export.hpp"

namespace qnas {

/// The QONNX custom operator domain and the version declared for it in opset_import.
inline constexpr const char* qonnx_domain = "qonnx.custom_op.general";
inline constexpr std::int64_t qonnx_domain_version = 1;

/// The QONNX node a format becomes.
enum class qonnx_op : std::uint8_t { none, quant, bipolar_quant, float_quant };

constexpr const char* to_string(qonnx_op o) noexcept {
  switch (o) {
    case qonnx_op::none: return "none";
    case qonnx_op::quant: return "Quant";
    case qonnx_op::bipolar_quant: return "BipolarQuant";
    case qonnx_op::float_quant: return "FloatQuant";
  }
  return "?";
}

/// QONNX's rounding_mode for a rounding rule, or nullptr where QONNX has none.
constexpr const char* qonnx_rounding_mode(grid_rounding r) noexcept {
  switch (r) {
    case grid_rounding::half_even: return "ROUND";
    case grid_rounding::half_away: return "HALF_UP";
    case grid_rounding::half_toward_zero: return "HALF_DOWN";
    case grid_rounding::away: return "UP";
    case grid_rounding::toward_zero: return "DOWN";
    case grid_rounding::ceil: return "CEIL";
    case grid_rounding::floor: return "FLOOR";
    default: return nullptr;
  }
}

/// The rounding rules QONNX's Quant names, in the order they are tried.
inline constexpr grid_rounding qonnx_roundings[] = {grid_rounding::half_even, grid_rounding::half_away,
                                                    grid_rounding::half_toward_zero, grid_rounding::away,
                                                    grid_rounding::toward_zero, grid_rounding::ceil,
                                                    grid_rounding::floor};

/// How a format becomes one QONNX node, and what that node computes.
struct qonnx_quantizer {
  qonnx_op op = qonnx_op::none;
  // Quant and BipolarQuant
  float scale = 1.0f;  ///< the step (1 for formats whose scale follows the data: the tensor gives it)
  int bits = 0;
  bool is_signed = true, narrow = false;
  std::int64_t lo = 0, hi = 0;  ///< the codes Quant clamps to
  grid_rounding rounding = grid_rounding::half_even;
  // FloatQuant
  int exponent_bits = 0, mantissa_bits = 0, exponent_bias = 0;
  float max_val = 0.0f;
  bool has_inf = false, has_nan = false, has_subnormal = true, saturation = true;

  std::size_t probed = 0;  ///< inputs compared with qnas's quantizer (0: from the traits only)
  bool exact = false;      ///< the node computes qnas's quantizer on every probed input
  std::string why;         ///< why there is no node (op none), or why it is not exact

  [[nodiscard]] bool ok() const noexcept { return op != qonnx_op::none; }

  /// What the node computes for input x with scale `s` (per channel, or `scale`), in float32 as
  /// the QONNX reference does: the definitions at the top of this header.
  [[nodiscard]] float reference(float x, float s) const noexcept {
    switch (op) {
      case qonnx_op::quant: return grid_reference(x, s, lo, hi, rounding);
      case qonnx_op::bipolar_quant: return (x >= 0.0f ? 1.0f : -1.0f) * s;
      case qonnx_op::float_quant: return float_reference(x / s) * s;
      case qonnx_op::none: break;
    }
    return x;
  }

 private:
  [[nodiscard]] float float_reference(float x) const noexcept {
    if (std::isnan(x)) return x;
    // The reference takes the exponent as floor(log2(|x| + tiny)), tiny = 2^-126 (float32's
    // smallest normal), summed in float32: below 2^-124 that is not |x|'s own exponent.
    const float a = std::fabs(x) + std::numeric_limits<float>::min();
    int e = 0;
    if (std::isfinite(a)) {
      (void)std::frexp(a, &e);
      --e;  // floor(log2(a))
    } else {
      return std::numeric_limits<float>::quiet_NaN();  // inf / inf in the reference
    }
    const int s = std::max(e - mantissa_bits, 1 - exponent_bias - mantissa_bits);
    const float unit = std::ldexp(1.0f, s);
    const float q = round_by(x / unit, rounding) * unit;
    const double top = (2.0 - std::ldexp(1.0, -mantissa_bits)) * std::ldexp(1.0, (1 << exponent_bits) - 1 - exponent_bias);
    const auto m = static_cast<float>(std::min(top, static_cast<double>(max_val)));
    if (q > m || q < -m) {
      if (saturation) return q > m ? m : -m;
      if (has_inf) return q > m ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
      return std::numeric_limits<float>::quiet_NaN();
    }
    return q;
  }
};

namespace detail {

/// The node a format's traits give, before any probe (rounding: half to even, saturating).
inline qonnx_quantizer qonnx_structure(const format_info& f) {
  qonnx_quantizer n;
  if (f.family == format_family::floating) {
    if (f.block_size != 1 || f.scale_bits != 0 || f.group_scale != scale_kind::none) {
      n.why = "its elements share a scale per block";
      return n;
    }
    const int E = f.tuple.exponent, M = f.tuple.mantissa;
    if (E < 1 || E > 8 || M < 0 || M > 23 || f.tuple.sign != 1) {
      n.why = cat("it is no signed float with 1 to 8 exponent bits (", f.tuple.sign, " sign, ", E, " exponent, ", M,
                  " mantissa bits)");
      return n;
    }
    n.op = qonnx_op::float_quant;
    n.exponent_bits = E, n.mantissa_bits = M, n.exponent_bias = (1 << (E - 1)) - 1;
    n.max_val = static_cast<float>(f.max_value);
    n.bits = f.bits;
    // Which codes are special, from the largest value (minifloat.hpp): IEEE keeps the top
    // binade for +-Inf and NaN, "fn" only its all-ones code for NaN, "finite" none.
    const double top_binade = std::ldexp(1.0, (1 << E) - 1 - n.exponent_bias);
    const double ieee_max = (2.0 - std::ldexp(1.0, -M)) * top_binade / 2.0;
    const double fn_max = (2.0 - std::ldexp(1.0, 1 - M)) * top_binade;
    if (f.max_value == ieee_max) {
      n.has_inf = true, n.has_nan = M > 0;
    } else if (M > 0 && f.max_value == fn_max) {
      n.has_nan = true;
    }
    return n;
  }
  uniform_grid g = uniform_grid_of(f);
  if (!g.ok() && f.group_scale != scale_kind::none && g.step > 0.0f) {
    // The scale follows the data (scaled<...>): the unit's codes over their full range; the
    // tensor's own scales and values decide the rest (checked value by value for weights).
    g.why.clear();
    if (f.family == format_family::fixed_point) g.lo = f.min_value < 0 ? -g.hi - 1 : 0;
  }
  if (!g.ok()) {
    n.why = g.why;
    return n;
  }
  n.scale = g.step, n.lo = g.lo, n.hi = g.hi, n.bits = g.bits;
  if (f.family == format_family::binary) {
    n.op = qonnx_op::bipolar_quant;
    return n;
  }
  n.is_signed = g.lo < 0;
  const std::int64_t full = n.is_signed ? (std::int64_t{1} << (g.bits - 1)) - 1 : (std::int64_t{1} << g.bits) - 1;
  n.narrow = n.is_signed ? g.lo == -g.hi : g.hi == full - 1;
  const std::int64_t min_int = n.is_signed ? (n.narrow ? -full : -full - 1) : 0;
  const std::int64_t max_int = n.is_signed || !n.narrow ? full : full - 1;
  if (g.bits < 2 && n.is_signed) {
    n.why = "a signed 1-bit Quant is read as bipolar";
    return n;
  }
  if (min_int != g.lo || max_int != g.hi) {
    n.why = cat("its codes [", g.lo, ", ", g.hi, "] are not the range of a ", g.bits, "-bit Quant");
    return n;
  }
  n.op = qonnx_op::quant;
  return n;
}

/// Probe inputs for a float format: at every exponent of the format's grid, every multiple of
/// the unit up to 2^(M+1), those plus a quarter, a half and three quarters of the unit, each
/// with its float neighbours, both signs; the extremes of float32; 4096 finite floats spread over
/// the exponents. Infinities and NaN are not probed (docs/onnx.md: the reference gives NaN for
/// +-inf).
inline std::vector<float> float_probe_inputs(const qonnx_quantizer& n) {
  std::vector<float> xs;
  const float inf = std::numeric_limits<float>::infinity();
  const int smin = 1 - n.exponent_bias - n.mantissa_bits, smax = (1 << n.exponent_bits) - n.exponent_bias - n.mantissa_bits;
  const std::int64_t top = std::int64_t{1} << (n.mantissa_bits + 1);
  const std::int64_t stride = top > 4096 ? top / 4096 : 1;  // every code up to 12 mantissa bits
  for (int s = smin; s <= smax; ++s)
    for (std::int64_t k = 0; k <= top; k += stride)
      for (const float f : {0.0f, 0.25f, 0.5f, 0.75f}) {
        const float x = std::ldexp(static_cast<float>(k) + f, s);
        if (!std::isfinite(x)) continue;
        for (const float y : {x, std::nextafter(x, inf), std::nextafter(x, -inf)})
          if (std::isfinite(y)) xs.insert(xs.end(), {y, -y});
      }
  for (const float x : {std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                        std::numeric_limits<float>::max()}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 4096; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(s >> 32) & 0xFF7FFFFFu);
    if (std::isfinite(x)) xs.push_back(x);
  }
  return xs;
}

inline bool same_value(float a, float b) noexcept { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace detail

/// The QONNX node of quantizer `q` and whether it computes `q` exactly (`exact`): the node from
/// the format's traits (detail::qonnx_structure), then compared with `q` on a probe
/// (grid_probe_inputs, detail::float_probe_inputs; values compared, -0 equal to +0): a Quant
/// takes the first QONNX rounding_mode that agrees everywhere, a FloatQuant the first of
/// saturation = 1 and (where the format has Inf or NaN) saturation = 0 that does. Stochastic
/// formats and formats whose scales follow the data are not exact (`why` says why); the node is
/// still given for them where the traits define one, for weights (whose exact values a node
/// must only give back).
inline qonnx_quantizer qonnx_quantizer_of(const quantizer& q) {
  qonnx_quantizer n = detail::qonnx_structure(q.info());
  if (!n.ok() || q.is_identity()) return n;
  if (q.needs_engine()) {
    n.why = "it rounds stochastically; QONNX's nodes round deterministically";
    return n;
  }
  if (q.whole_tensor() || q.learned()) {
    n.why = "its scale follows the data; a QONNX node takes a constant scale";
    return n;
  }
  if (n.op == qonnx_op::quant) {
    const grid_rounding_match m = rounding_of(q, n.scale, n.lo, n.hi, qonnx_roundings);
    n.probed = m.probed;
    if (!m.found) {
      n.why = "it rounds otherwise than every QONNX rounding_mode (" + m.why + ")";
      return n;
    }
    n.rounding = m.rounding;
    n.exact = true;
    return n;
  }
  const std::vector<float> xs = n.op == qonnx_op::bipolar_quant ? detail::grid_probe_inputs(n.scale, -1, 1)
                                                                 : detail::float_probe_inputs(n);
  std::vector<float> ys(xs.size());
  const std::size_t shape[1] = {xs.size()};
  q(xs, ys, shape);
  n.probed = xs.size();
  std::vector<bool> variants{true};
  if (n.op == qonnx_op::float_quant && (n.has_inf || n.has_nan)) variants.push_back(false);
  std::string first;
  for (const bool sat : variants) {
    n.saturation = sat;
    std::size_t bad = xs.size();
    for (std::size_t i = 0; i < xs.size() && bad == xs.size(); ++i)
      if (!detail::same_value(n.reference(xs[i], n.op == qonnx_op::float_quant ? 1.0f : n.scale), ys[i])) bad = i;
    if (bad == xs.size()) {
      n.exact = true;
      n.why.clear();
      return n;
    }
    if (first.empty()) {
      std::ostringstream os;
      os.precision(9);
      os << to_string(n.op) << " gives " << n.reference(xs[bad], n.op == qonnx_op::float_quant ? 1.0f : n.scale)
         << " for the input " << xs[bad] << " where " << q.name() << " gives " << ys[bad];
      first = os.str();
    }
  }
  n.saturation = true;
  n.why = first;
  return n;
}

/// Options of export_qonnx.
struct qonnx_export_options {
  onnx_activation_policy activations = onnx_activation_policy::refuse;
  std::string graph_name = "qnas";
};

namespace detail {

/// Writes quantized tensors as QONNX nodes (see the top of this header).
class qonnx_writer {
 public:
  onnx_quant_writer hooks() {
    onnx_quant_writer w;
    w.entry = "qnas::export_qonnx";
    w.parameter = [this](onnx_graph& g, const std::string& path, const std::string& what, nn::weighted_layer* l,
                         const quantizer& q, const std::vector<std::int64_t>& dims, std::span<const float> values,
                         std::size_t axis) { return parameter(g, path, what, l, q, dims, values, axis); };
    w.output = [this](onnx_graph& g, const quantizer& q, const std::string& y, const std::string& path,
                      const std::string& what) { return output(g, q, y, path, what); };
    return w;
  }

 private:
  const qonnx_quantizer& node_of(const quantizer& q) {
    for (const auto& [k, v] : cache_)
      if (k == q) return v;
    cache_.emplace_back(q, qonnx_quantizer_of(q));
    return cache_.back().second;
  }

  /// Adds node `n` on tensor `x` with `scale` (a scalar name) and returns its output.
  static std::string emit(onnx_graph& g, const qonnx_quantizer& n, const std::string& x, const std::string& scale,
                          const std::string& hint) {
    std::vector<std::string> in{x, scale};
    if (n.op == qonnx_op::quant) {
      in.push_back(g.scalar(hint + "_zeropt", 0.0f));
      in.push_back(g.scalar(hint + "_bitwidth", static_cast<float>(n.bits)));
    } else if (n.op == qonnx_op::float_quant) {
      in.push_back(g.scalar(hint + "_exponent_bitwidth", static_cast<float>(n.exponent_bits)));
      in.push_back(g.scalar(hint + "_mantissa_bitwidth", static_cast<float>(n.mantissa_bits)));
      in.push_back(g.scalar(hint + "_exponent_bias", static_cast<float>(n.exponent_bias)));
      in.push_back(g.scalar(hint + "_max_val", n.max_val));
    }
    onnx::NodeProto& node = g.node(to_string(n.op), in, hint);
    node.set_domain(qonnx_domain);
    const auto str = [&](const char* name, const char* v) {
      auto* a = node.add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::STRING);
      a->set_s(v);
    };
    if (n.op == qonnx_op::quant) {
      onnx_graph::attr(node, "signed", std::int64_t{n.is_signed});
      onnx_graph::attr(node, "narrow", std::int64_t{n.narrow});
      str("rounding_mode", qonnx_rounding_mode(n.rounding));
    } else if (n.op == qonnx_op::float_quant) {
      onnx_graph::attr(node, "has_infinity", std::int64_t{n.has_inf});
      onnx_graph::attr(node, "has_nan", std::int64_t{n.has_nan});
      onnx_graph::attr(node, "has_subnormal", std::int64_t{n.has_subnormal});
      onnx_graph::attr(node, "saturation", std::int64_t{n.saturation});
      str("rounding_mode", qonnx_rounding_mode(n.rounding));
    }
    return onnx_graph::out(node);
  }

  std::string parameter(onnx_graph& g, const std::string& path, const std::string& what, nn::weighted_layer* l,
                        const quantizer& q, const std::vector<std::int64_t>& dims, std::span<const float> values,
                        std::size_t axis) {
    if (q.is_identity()) {
      ++g.counts().float_weights;
      return g.floats(path + "." + what, dims, values);
    }
    qonnx_quantizer n = node_of(q);
    if (!n.ok()) return g.exact_floats(path, what, q, dims, values, "float initializer holding the exact quantized values: " + n.why);
    if (n.op == qonnx_op::float_quant && !n.exact)
      return g.exact_floats(path, what, q, dims, values, "float initializer holding the exact quantized values: " + n.why);
    if (!n.exact) n.rounding = grid_rounding::half_even;  // stored values: any rounding gives them back
    // The scale: the format's step, the layer's learned steps, or one per channel from the values.
    std::vector<float> scales{n.op == qonnx_op::float_quant ? 1.0f : n.scale};
    const std::size_t channels = axis < dims.size() ? static_cast<std::size_t>(dims[axis]) : 1;
    std::size_t inner = 1;
    for (std::size_t d = axis + 1; d < dims.size(); ++d) inner *= static_cast<std::size_t>(dims[d]);
    if (q.learned()) {
      if (l == nullptr || !(l->weight_steps().value.size() == 1 || l->weight_steps().value.size() == channels))
        return g.exact_floats(path, what, q, dims, values, "float initializer holding the exact values: no learned steps per channel");
      scales.assign(l->weight_steps().value.begin(), l->weight_steps().value.end());
    } else if (q.whole_tensor()) {
      std::vector<std::int32_t> codes;
      if (axis >= dims.size() ||
          !channel_grid(values, channels, inner, n.is_signed || n.op == qonnx_op::bipolar_quant,
                        static_cast<std::int32_t>(n.hi), scales, codes))
        return g.exact_floats(path, what, q, dims, values,
                              "float initializer holding the exact values: no scale per output channel gives them back");
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      const float s = scales[scales.size() == 1 ? 0 : (i / inner) % channels];
      if (!detail::same_value(n.reference(values[i], s), values[i]) || std::isnan(values[i]))
        return g.exact_floats(path, what, q, dims, values,
                              cat("float initializer holding the exact values: ", to_string(n.op),
                                  " does not give every value back"));
    }
    const std::string hint = path + "." + what;
    const std::string v = g.floats(hint + "_values", dims, values);
    std::string s;
    if (scales.size() == 1) {
      s = g.scalar(hint + "_scale", scales[0]);
    } else {  // broadcast along the channel axis: [1, .., C, .., 1]
      std::vector<std::int64_t> sdims(dims.size(), 1);
      sdims[axis] = static_cast<std::int64_t>(channels);
      s = g.floats(hint + "_scale", sdims, scales);
    }
    ++g.counts().qdq_weights;
    return emit(g, n, v, s, hint);
  }

  std::string output(onnx_graph& g, const quantizer& q, const std::string& y, const std::string& path,
                     const std::string& what) {
    const qonnx_quantizer& n = node_of(q);
    if (!n.exact) return g.unquantized_output(q, y, path, what, "QONNX", n.why);
    const std::string hint = path + ".output";
    ++g.counts().qdq_activations;
    return emit(g, n, y, g.scalar(hint + "_scale", n.op == qonnx_op::float_quant ? 1.0f : n.scale), hint);
  }

  std::vector<std::pair<quantizer, qonnx_quantizer>> cache_;
};

}  // namespace detail

/// The QONNX model of `net`: export_onnx's graph (same layers, names, layout and registry `ops`)
/// with quantized tensors as Quant / BipolarQuant / FloatQuant nodes (top of this header);
/// opset_import declares the default domain (onnx_opset) and qonnx.custom_op.general (1).
/// `summary`: qdq_weights counts weight and bias tensors behind a QONNX node, qdq_activations the
/// output quantizers written as one, float_weights and float_fallbacks as in export_onnx.
/// Throws qnas::invalid_argument "qnas::export_qonnx: <layer path> (<kind>): the output format
/// <format> has no exact QONNX equivalent (<why>); ..." under onnx_activation_policy::refuse,
/// and as to_onnx otherwise.
inline onnx::ModelProto to_qonnx(nn::sequential& net, const qonnx_export_options& options = {},
                                 const onnx_op_registry& ops = builtin_onnx_ops(), onnx_export_summary* summary = nullptr) {
  onnx_export_options o;
  o.activations = options.activations;
  o.graph_name = options.graph_name;
  detail::qonnx_writer w;
  const onnx_quant_writer hooks = w.hooks();
  return detail::build_onnx_model(net, o, ops, summary, &hooks, {{qonnx_domain, qonnx_domain_version}});
}

/// Writes to_qonnx(net, options, ops) to `path` atomically and returns what it wrote. Throws as
/// to_qonnx, and qnas::io_error when the file cannot be written.
inline onnx_export_summary export_qonnx(nn::sequential& net, const std::filesystem::path& path,
                                        const qonnx_export_options& options = {},
                                        const onnx_op_registry& ops = builtin_onnx_ops()) {
  onnx_export_summary sum;
  detail::write_onnx_model(to_qonnx(net, options, ops, &sum), path, "qnas::export_qonnx");
  return sum;
}

}  // namespace qnas
