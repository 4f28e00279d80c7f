// Export of a run-time network for deployment: a JSON manifest plus a blob of weights packed in each layer's own format, and the loader that runs it again.
//
// A quantized model is worth deploying only in its packed form: 4-bit weights stored as float32
// take eight times the memory the hardware will give them. `export_model` writes
//
//   <name>.json  the manifest: format version, input shape, every layer (kind, shapes,
//                hyper-parameters, weight / bias / output formats) and, for every tensor, where
//                its bytes lie in the blob, how many, how many elements and their CRC-32;
//   <name>.bin   the blob: each tensor as the element codes of its format (F::bits each) followed
//                by its block headers (F::scale_bits each), both packed least-significant bit
//                first, tensors back to back: exactly what qnas::encode<F> produces.
//
// `load_model` reads both back into an nn::sequential whose inference outputs equal the exported
// network's bit for bit: decoding gives quantize(w) exactly (format law 3), and the loaded layer
// quantizes it again to the same values (law 1). docs/export.md describes the file format field
// by field, so other tools can read it without this header.
//
// Formats are types, so a file names them and the reader needs to know them: a format_registry
// lists the formats a program can write and read (`format_registry::of<int8, msfp12>()`; float32
// is always known). Batch norm is exported as it runs in inference (float32 gamma, beta and running
// statistics); call fold_batch_norm first to deploy folded weights instead.
#pragma once

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/ops.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/io/atomic_file.hpp"
#include "qnas/io/json.hpp"
#include "qnas/nn/layer_registry.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::nn {

/// The "format" member of a model manifest.
inline constexpr std::string_view model_format = "qnas.model";
/// The manifest version this library writes and reads; another version is refused.
inline constexpr int model_format_version = 1;
/// How deep residual and sequential blocks may nest in an exported model. Real networks nest two
/// or three levels (a MobileNet: the network, its inverted-residual blocks, their bodies); the cap
/// is far above that and bounds the stack the recursive writer, reader and the layers themselves
/// use, so a hostile manifest cannot overflow it. export_model refuses deeper networks, so every
/// exported model loads.
inline constexpr std::size_t max_model_nesting = 64;
/// How deep a manifest may nest JSON arrays and objects: a block adds two levels (its entry and
/// its body) to the five of a top-level layer's tensor shape, and the rest is margin so that a
/// manifest a few blocks too deep is refused by the block count, which names the layer.
inline constexpr std::size_t max_manifest_json_depth = 2 * max_model_nesting + 16;

/// One number format as a value: its name and traits, the quantizer a loaded layer runs, and
/// the functions that pack and unpack a whole tensor blocked along its last axis.
struct format_codec {
  std::string name = "float32";
  format_info info = float32_info;
  quantizer q{};
  /// The value of every code of a scalar format of at most 8 bits (F::decode_one), so that a
  /// reader of the file needs no knowledge of the format; empty otherwise.
  std::vector<float> code_values;
  /// Element codes (row-major) and block headers of `x`, as qnas::encode<F>(x) packs them.
  void (*encode)(const xt::xarray<float>& x, std::vector<std::uint8_t>& codes, std::vector<std::uint8_t>& headers) = nullptr;
  /// The tensor of `shape` those bytes hold (their counts have been checked by the caller).
  xt::xarray<float> (*decode)(const std::vector<std::size_t>& shape, std::vector<std::uint8_t> codes,
                              std::vector<std::uint8_t> headers) = nullptr;

  // --- formats whose scales follow the data or are learned (tensor_scaled_format) ---
  /// Whether the format computes its scales from the whole tensor (scaled, lsq): a loaded layer
  /// then uses the stored values as they are (weighted_layer::pin_weights).
  bool tensor_scaled = false;
  /// Bits of one scale group's header, and whether there is a group per index of the last axis
  /// (tensors of rank >= 2) rather than one per tensor.
  int header_bits = 0;
  bool per_channel_scales = false;
  /// The manifest's description of the scales (docs/export.md); null for other formats.
  nlohmann::json scales;
  /// Formats with learned steps (lsq): codes of x quantized with `steps`, and the steps as
  /// headers; and the steps that headers of a tensor of `shape` hold.
  void (*encode_with_steps)(const xt::xarray<float>& x, std::span<const float> steps, std::vector<std::uint8_t>& codes,
                            std::vector<std::uint8_t>& headers) = nullptr;
  std::vector<float> (*steps_of)(const std::vector<std::size_t>& shape, const std::vector<std::uint8_t>& headers) = nullptr;
};

namespace detail {

// float32 is stored as its IEEE-754 bit patterns, 32-bit codes packed least-significant bit
// first like every other format, i.e. little-endian bytes on any host.
inline void encode_float32(const xt::xarray<float>& x, std::vector<std::uint8_t>& codes, std::vector<std::uint8_t>& headers) {
  codes.resize(4 * x.size());
  headers.clear();
  const float* p = x.data();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto u = std::bit_cast<std::uint32_t>(p[i]);
    for (std::size_t b = 0; b < 4; ++b) codes[4 * i + b] = static_cast<std::uint8_t>(u >> (8 * b));
  }
}
inline xt::xarray<float> decode_float32(const std::vector<std::size_t>& shape, std::vector<std::uint8_t> codes,
                                        std::vector<std::uint8_t>) {
  xt::xarray<float> out = xt::empty<float>(shape);
  float* q = out.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (std::size_t b = 0; b < 4; ++b) u |= static_cast<std::uint32_t>(codes[4 * i + b]) << (8 * b);
    q[i] = std::bit_cast<float>(u);
  }
  return out;
}

template <number_format F>
void encode_as(const xt::xarray<float>& x, std::vector<std::uint8_t>& codes, std::vector<std::uint8_t>& headers) {
  encoded<F> e = qnas::encode<F>(x, last_axis);
  codes = std::move(e.codes);
  headers = std::move(e.headers);
}
template <number_format F>
xt::xarray<float> decode_as(const std::vector<std::size_t>& shape, std::vector<std::uint8_t> codes,
                            std::vector<std::uint8_t> headers) {
  encoded<F> e;
  e.shape = shape;
  e.axis = shape.empty() ? 0 : shape.size() - 1;
  e.codes = std::move(codes);
  e.headers = std::move(headers);
  return qnas::decode(e);
}

template <learned_scale_format F>
void encode_with_steps_as(const xt::xarray<float>& x, std::span<const float> steps, std::vector<std::uint8_t>& codes,
                          std::vector<std::uint8_t>& headers) {
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isnan(x.data()[i]))
      throw invalid_argument("qnas::encode", qnas::detail::cat(F::name(), " has no NaN code; input element ", i, " is NaN"));
  const std::vector<std::size_t> shape(x.shape().begin(), x.shape().end());
  const std::vector<std::uint32_t> c = quantizer::of<F>().codes_with_steps({x.data(), x.size()}, shape, steps);
  codes.clear();
  headers.clear();
  qnas::detail::bit_writer cw(codes);
  for (auto v : c) cw.put(v, F::bits);
  qnas::detail::bit_writer hw(headers);
  for (float v : steps) hw.put(qnas::detail::to_bits(v), F::header_bits);
}
template <learned_scale_format F>
std::vector<float> steps_as(const std::vector<std::size_t>& shape, const std::vector<std::uint8_t>& headers) {
  std::vector<float> steps(quantizer::of<F>().step_count(shape));
  qnas::detail::bit_reader r(headers);
  for (auto& v : steps) v = F::header_step(static_cast<std::uint32_t>(r.get(F::header_bits)));
  return steps;
}

/// A float in a manifest: JSON has no NaN or infinities, so they are written as strings.
inline nlohmann::json json_float(float x) {
  return std::isnan(x) ? nlohmann::json("nan") : std::isinf(x) ? nlohmann::json(x > 0 ? "inf" : "-inf") : nlohmann::json(x);
}

/// The manifest's description of a tensor-scaled format's scales (docs/export.md): a value is
/// S_g * unit_code_values[code], S_g the scale of its group, given by the group's header.
template <tensor_scaled_format F>
nlohmann::json scales_json() {
  nlohmann::json s = {{"groups", F::per_channel_scales ? "channel" : "tensor"}, {"header_bits", F::header_bits}};
  std::vector<float> unit;
  if constexpr (learned_scale_format<F>) {
    s["header"] = "float32";
    s["learned"] = true;
    if constexpr (F::bits <= 8)
      for (std::uint32_t c = 0; c < (1u << F::bits); ++c) unit.push_back(static_cast<float>(F::code_level(c)));
  } else if constexpr (requires { typename F::unit; typename F::alpha; F::is_const; F::is_po2; }) {
    if constexpr (F::is_const) {
      s["header"] = "none";
      s["constant"] = static_cast<float>(F::alpha::value);
    } else {
      s["header"] = F::is_po2 ? "exp2_int16" : "float32";
    }
    if constexpr (F::bits <= 8)
      for (std::uint32_t c = 0; c < (1u << F::bits); ++c) unit.push_back(F::unit::decode_one(c));
  } else {
    s["header"] = "custom";  // a user's format: its own documentation gives the rule
  }
  if (!unit.empty()) {
    nlohmann::json v = nlohmann::json::array();
    for (float x : unit) v.push_back(json_float(x));
    s["unit_code_values"] = std::move(v);
  }
  return s;
}

inline std::uint32_t crc32_bytes(const std::uint8_t* p, std::size_t n) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const auto k = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    c = ::crc32(c, reinterpret_cast<const Bytef*>(p), k);
    p += k;
    n -= k;
  }
  return static_cast<std::uint32_t>(c);
}

/// Bytes of the element codes of `elements` values of format `f`.
inline std::size_t code_bytes_of(const format_info& f, std::size_t elements) {
  return (elements * static_cast<std::size_t>(f.bits) + 7) / 8;
}
/// Bytes of the headers of a tensor of `shape` in format `c`: block formats, blocked along the
/// last axis, cut every row along it into ceil(len / block_size) blocks; tensor-scaled formats
/// have one header per index of the last axis (per-channel scales, rank >= 2) or one; scalar
/// formats none.
inline std::size_t header_bytes_of(const format_codec& c, const std::vector<std::size_t>& shape) {
  if (c.tensor_scaled) {
    const std::size_t groups = c.per_channel_scales && shape.size() >= 2 ? shape.back() : 1;
    return (groups * static_cast<std::size_t>(c.header_bits) + 7) / 8;
  }
  const format_info& f = c.info;
  if (f.block_size <= 1 || f.scale_bits == 0 || shape.empty()) return 0;
  std::size_t rows = 1;
  for (std::size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  const auto b = static_cast<std::size_t>(f.block_size);
  const std::size_t blocks = rows * ((shape.back() + b - 1) / b);
  return (blocks * static_cast<std::size_t>(f.scale_bits) + 7) / 8;
}

inline std::string shape_text(const std::vector<std::size_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}

}  // namespace detail

/// The formats a program exports and loads, by name. float32 (unquantized) is always present.
///
///     auto formats = nn::format_registry::of<fixed_point<8, 1>, ternary<-2, 0.125>, msfp12>();
///
/// Names are the formats' full names (F::name()), which include every parameter, so a manifest
/// written by one program reads in another that registers the same format types.
class format_registry {
 public:
  format_registry() {
    format_codec f32;
    f32.encode = &detail::encode_float32;
    f32.decode = &detail::decode_float32;
    codecs_.push_back(std::move(f32));
  }

  /// Adds format F (adding it twice is harmless; another type with the same name is refused).
  template <number_format F>
  format_registry& add() {
    static_assert(!F::rounding::needs_engine,
                  "qnas::nn::format_registry::add<F>: F rounds stochastically; an exported model must compute the "
                  "same outputs on every run, so its formats must round deterministically");
    format_codec c;
    c.name = F::name();
    c.info = info_of<F>();
    c.q = quantizer::of<F>();
    c.encode = &detail::encode_as<F>;
    c.decode = &detail::decode_as<F>;
    if constexpr (scalar_format<F> && F::bits <= 8)
      for (std::uint32_t code = 0; code < (1u << F::bits); ++code) c.code_values.push_back(F::decode_one(code));
    if constexpr (tensor_scaled_format<F>) {
      c.tensor_scaled = true;
      c.header_bits = F::header_bits;
      c.per_channel_scales = F::per_channel_scales;
      c.scales = detail::scales_json<F>();
    }
    if constexpr (learned_scale_format<F>) {
      c.encode_with_steps = &detail::encode_with_steps_as<F>;
      c.steps_of = &detail::steps_as<F>;
    }
    if (const format_codec* e = find(c.name)) {
      if (e->q == c.q) return *this;
      throw invalid_argument("qnas::nn::format_registry::add",
                             qnas::detail::cat("two different format types are named '", c.name, "'"));
    }
    codecs_.push_back(std::move(c));
    return *this;
  }
  /// A registry holding float32 and Fs...
  template <number_format... Fs>
  static format_registry of() {
    format_registry r;
    (r.add<Fs>(), ...);
    return r;
  }

  /// The codec named `name`, or nullptr.
  [[nodiscard]] const format_codec* find(std::string_view name) const {
    for (const auto& c : codecs_)
      if (c.name == name) return &c;
    return nullptr;
  }
  [[nodiscard]] std::size_t size() const noexcept { return codecs_.size(); }
  /// The registered names, comma-separated (for messages).
  [[nodiscard]] std::string names() const {
    std::string s;
    for (const auto& c : codecs_) s += (s.empty() ? "" : ", ") + c.name;
    return s;
  }

 private:
  std::vector<format_codec> codecs_;
};

/// What export_model wrote.
struct export_summary {
  std::filesystem::path manifest, blob;
  std::size_t manifest_bytes = 0;
  std::size_t blob_bytes = 0;
  std::size_t tensors = 0;
  std::size_t elements = 0;       ///< scalars in all tensors (weights, biases, batch-norm statistics)
  std::size_t float32_bytes = 0;  ///< what the same tensors take as float32: 4 * elements
};

namespace detail {

using json = nlohmann::json;

inline json shape_json(const tensor_shape& s) {
  if (s.rank == 1) return json::array({s.c});
  return json::array({s.h, s.w, s.c});
}

inline json format_json(const format_codec& c) {
  json j = {{"family", to_string(c.info.family)},
            {"bits", c.info.bits},
            {"block_size", c.info.block_size},
            {"scale_bits", c.info.scale_bits},
            {"min_value", c.info.min_value},
            {"max_value", c.info.max_value}};
  if (!c.code_values.empty()) {
    json v = json::array();
    for (float x : c.code_values) v.push_back(json_float(x));
    j["code_values"] = std::move(v);
  }
  if (c.tensor_scaled) j["scales"] = c.scales;
  return j;
}

class model_writer {
 public:
  model_writer(const format_registry& formats, const layer_registry& layers, export_summary& sum)
      : formats_(formats), layers_(layers), sum_(sum) {}

  /// The entries of net's layers; `list` names the array in messages ("layers", "layers[5].body"),
  /// `nesting` counts the blocks around it (0 for the network's own layers).
  json layers(sequential& net, const std::string& list, std::size_t nesting = 0) {
    json out = json::array();
    for (std::size_t i = 0; i < net.size(); ++i)
      out.push_back(layer_entry(net[i], list + "[" + std::to_string(i) + "]", nesting));
    return out;
  }

  [[nodiscard]] const std::vector<std::uint8_t>& blob() const noexcept { return blob_; }

  /// The registry's codec for q (recorded for the manifest's formats table).
  const format_codec& codec_for(const quantizer& q, const std::string& what) {
    const format_codec* c = formats_.find(q.name());
    if (c == nullptr)
      throw invalid_argument(where, qnas::detail::cat(what, ": format '", q.name(), "' is not in the format registry (it holds ",
                                                      formats_.names(), ")",
                                                      q.needs_engine()
                                                          ? "; it rounds stochastically, and an exported model must "
                                                            "compute the same outputs on every run"
                                                          : "; add it with format_registry::add<F>()"));
    if (!(c->q == q))
      throw invalid_argument(where, qnas::detail::cat(what, ": the registry's format '", q.name(),
                                                      "' is another type with the same name as the layer's"));
    used_[c->name] = c;
    return *c;
  }

  /// {name: description} of every format the written entries name.
  [[nodiscard]] json formats_table() const {
    json t = json::object();
    for (const auto& [name, c] : used_) t[name] = format_json(*c);
    return t;
  }

  static constexpr const char* where = "qnas::nn::export_model";

 private:
  json tensor(const xt::xarray<float>& x, const quantizer& q, const std::string& what) {
    const format_codec& c = codec_for(q, what);
    std::vector<std::uint8_t> codes, headers;
    try {
      c.encode(x, codes, headers);
    } catch (const invalid_argument& e) {  // NaN in a format without a NaN code
      throw invalid_argument(where, qnas::detail::cat(what, ": ", e.what()));
    }
    return record(x, c, codes, headers);
  }
  /// A weight tensor: pinned values as stored, lsq codes with the layer's learned steps (set
  /// first if a forward pass has not yet), else the quantized weights' encoding.
  json weight_tensor(weighted_layer& l, const std::string& what) {
    const quantizer& q = l.weight_quantizer();
    if (const stored_weights* p = l.pinned_weights()) return stored(*p, q, what);
    if (!q.learned()) return tensor(l.weights().value, q, what);
    const format_codec& c = codec_for(q, what);
    l.initialize_weight_steps();
    const xt::xarray<float>& steps = l.weight_steps().value;
    std::vector<std::uint8_t> codes, headers;
    try {
      c.encode_with_steps(l.weights().value, {steps.data(), steps.size()}, codes, headers);
    } catch (const invalid_argument& e) {  // NaN weights, or a step that is not > 0
      throw invalid_argument(where, qnas::detail::cat(what, ": ", e.what()));
    }
    return record(l.weights().value, c, codes, headers);
  }
  /// Pinned values (weighted_layer::pin_weights) with the encoding they were read from, which
  /// must decode to exactly those values.
  json stored(const stored_weights& p, const quantizer& q, const std::string& what) {
    const format_codec& c = codec_for(q, what);
    const std::vector<std::size_t> shape(p.values.shape().begin(), p.values.shape().end());
    bool same = p.codes.size() == code_bytes_of(c.info, p.values.size()) && p.headers.size() == header_bytes_of(c, shape);
    if (same) {
      try {
        const xt::xarray<float> d = c.decode(shape, p.codes, p.headers);
        same = d.size() == 0 || std::memcmp(d.data(), p.values.data(), d.size() * sizeof(float)) == 0;
      } catch (const invalid_argument&) {
        same = false;
      }
    }
    if (!same)
      throw invalid_argument(where, qnas::detail::cat(what, ": the pinned values (weighted_layer::pin_weights) are not what "
                                                      "their stored codes and headers decode to in ", c.name));
    return record(p.values, c, p.codes, p.headers);
  }
  json record(const xt::xarray<float>& x, const format_codec& c, const std::vector<std::uint8_t>& codes,
              const std::vector<std::uint8_t>& headers) {
    const std::size_t offset = blob_.size();
    blob_.insert(blob_.end(), codes.begin(), codes.end());
    blob_.insert(blob_.end(), headers.begin(), headers.end());
    const std::size_t bytes = codes.size() + headers.size();
    ++sum_.tensors;
    sum_.elements += x.size();
    return {{"format", c.name},
            {"shape", std::vector<std::size_t>(x.shape().begin(), x.shape().end())},
            {"elements", x.size()},
            {"offset", offset},
            {"bytes", bytes},
            {"code_bytes", codes.size()},
            {"header_bytes", headers.size()},
            {"crc32", crc32_bytes(blob_.data() + offset, bytes)}};
  }
  static std::string named(const std::string& path, const nn::layer& l) { return path + " (" + l.kind() + ")"; }

  void weighted(json& j, weighted_layer& l, const std::string& what) {
    j["use_bias"] = l.has_bias();
    j["weights"] = weight_tensor(l, what + " weights");
    if (const stored_weights* p = l.pinned_bias()) j["bias"] = stored(*p, l.bias_quantizer(), what + " bias");
    else if (l.has_bias()) j["bias"] = tensor(l.bias().value, l.bias_quantizer(), what + " bias");
  }

  /// One layer's entry, from what the layer says of itself: its description (shapes, window,
  /// output channels), its weights and bias with their formats, its state() tensors and
  /// attributes(), the body of a composite, and its output format.
  json layer_entry(nn::layer& l, const std::string& path, std::size_t nesting) {
    const std::string what = named(path, l);
    if (!layers_.contains(l.kind()))
      throw invalid_argument(where, qnas::detail::cat(what, ": layer kind '", l.kind(), "' is not in the layer registry (it "
                                                      "holds ", layers_.names(), "), so a model file could not be read "
                                                      "back; add it with nn::layer_registry::add"));
    const layer_description d = l.describe();
    const bool block = d.op == layer_op::residual || d.op == layer_op::sequential;
    if (block && nesting >= max_model_nesting)  // load_model would refuse the file
      throw invalid_argument(where, qnas::detail::cat(what, ": blocks nest more than ", max_model_nesting,
                                                      " deep (nn::max_model_nesting), more than a model file may hold"));
    json j = {{"kind", l.kind()}, {"input_shape", shape_json(d.input)}, {"output_shape", shape_json(d.output)}};
    switch (d.op) {
      case layer_op::conv2d:
        j["filters"] = d.output.c;
        if (d.window.groups != 1) j["groups"] = d.window.groups;
        [[fallthrough]];
      case layer_op::depthwise_conv2d:
      case layer_op::max_pool:
      case layer_op::avg_pool:
        j["kernel"] = d.window.kernel;
        j["stride"] = d.window.stride;
        j["padding"] = to_string(d.window.pad);
        break;
      case layer_op::dense: j["units"] = d.output.c; break;
      default: break;
    }
    if (auto* w = dynamic_cast<weighted_layer*>(&l)) weighted(j, *w, what);
    for (const state_tensor& t : l.state()) {
      xt::xarray<float> x = xt::empty<float>(t.shape);
      if (x.size() != t.values.size())
        throw invalid_argument(where, qnas::detail::cat(what, ": state tensor '", t.key, "' has ", t.values.size(),
                                                        " values for its shape ", shape_text(t.shape)));
      std::copy(t.values.begin(), t.values.end(), x.begin());
      j[t.key] = tensor(x, quantizer{}, what + " " + t.key);
    }
    for (const layer_attribute& a : l.attributes()) j[a.key] = io::finite_number(a.value, what + " " + a.key);
    if (block) {
      json body = json::array();
      const std::vector<layer*> children = l.children();
      for (std::size_t i = 0; i < children.size(); ++i)
        body.push_back(layer_entry(*children[i], path + ".body[" + std::to_string(i) + "]", nesting + 1));
      j["body"] = std::move(body);
    }
    j["output_format"] = codec_for(l.output_quantizer(), what + " output").name;
    return j;
  }

  const format_registry& formats_;
  const layer_registry& layers_;
  export_summary& sum_;
  std::vector<std::uint8_t> blob_;
  std::map<std::string, const format_codec*> used_;
};

}  // namespace detail

/// Writes `net` to `manifest` (a .json path) and its blob next to it (same name, extension
/// .bin), each atomically (io::write_file_atomic): the blob first, then the manifest, so a crash
/// in between leaves the previous manifest, whose CRCs then refuse the new blob. Every format
/// of the network (weights, biases, outputs) must be in `formats`.
/// Throws qnas::invalid_argument naming the layer for an unsupported layer kind, a format
/// missing from the registry, or NaN weights in a format without a NaN code; qnas::io_error
/// when a file cannot be written.
inline export_summary export_model(sequential& net, const std::filesystem::path& manifest, const format_registry& formats,
                                   const layer_registry& layers = builtin_layers()) {
  constexpr const char* where = detail::model_writer::where;
  if (manifest.extension() == ".bin")
    throw invalid_argument(where, qnas::detail::cat("the manifest path '", manifest.string(),
                                                    "' ends in .bin, the name of its blob; give a .json path"));
  export_summary sum;
  sum.manifest = manifest;
  sum.blob = std::filesystem::path(manifest).replace_extension(".bin");
  detail::model_writer w(formats, layers, sum);
  nlohmann::json entries = w.layers(net, "layers");
  const std::string output_format = w.codec_for(net.output_quantizer(), "the network's output").name;
  nlohmann::json j = {{"format", std::string(model_format)},
                      {"version", model_format_version},
                      {"blob", sum.blob.filename().string()},
                      {"blob_bytes", w.blob().size()},
                      {"input_shape", detail::shape_json(net.input_shape())},
                      {"output_shape", detail::shape_json(net.output_shape())},
                      {"output_format", output_format},
                      {"formats", w.formats_table()},
                      {"layers", std::move(entries)}};
  const std::string text = j.dump(1) + "\n";
  const auto& blob = w.blob();
  io::write_file_atomic(sum.blob, std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()));
  io::write_file_atomic(manifest, text);
  sum.manifest_bytes = text.size();
  sum.blob_bytes = blob.size();
  sum.float32_bytes = 4 * sum.elements;
  return sum;
}

namespace detail {

class model_reader {
 public:
  model_reader(const std::filesystem::path& manifest, const format_registry& formats, const layer_registry& layers)
      : manifest_(manifest), formats_(formats), layers_(layers), where_("qnas::nn::load_model('" + manifest.string() + "')") {}

  std::unique_ptr<sequential> read() {
    const std::string text = read_bytes(manifest_, "cannot open the manifest");
    check_depth(text);
    const json j = io::parse_json(text, manifest_.string());
    if (!j.is_object() || !j.contains("format") || j.at("format") != std::string(model_format))
      throw io_error(where_, qnas::detail::cat("not a qnas model manifest (no \"format\": \"", model_format, "\")"));
    const int version = io::get_field<int>(j, "version", where_);
    if (version != model_format_version)
      throw io_error(where_, qnas::detail::cat("the manifest is version ", version,
                                               " of the qnas model format; this library reads version ",
                                               model_format_version));
    const auto name = io::get_field<std::string>(j, "blob", where_);
    blob_path_ = manifest_.parent_path() / name;
    const std::filesystem::path target = confined_blob(name);
    read_blob(target, io::get_field<std::size_t>(j, "blob_bytes", where_));
    formats_table_ = &io::get_member(j, "formats", where_);
    if (!formats_table_->is_object())
      throw io_error(where_, qnas::detail::cat("field 'formats' must be an object {name: format}, got ",
                                               formats_table_->type_name()));
    const tensor_shape in = shape(io::get_member(j, "input_shape", where_), "input_shape", where_);
    auto net = std::make_unique<sequential>(in);
    build(*net, io::get_member(j, "layers", where_), "layers", 0);
    const tensor_shape out = shape(io::get_member(j, "output_shape", where_), "output_shape", where_);
    if (!(net->output_shape() == out))
      throw io_error(where_, qnas::detail::cat("shape mismatch: the layers produce ", to_string(net->output_shape()),
                                               ", the manifest's output_shape is ", to_string(out)));
    const quantizer& oq = format(j, "output_format", "the network's output").q;
    guarded("the network's output", [&] { return net->set_output_quantizer(oq), 0; });  // refuses lsq
    return net;
  }

 private:
  template <class F>
  auto guarded(const std::string& what, F&& make) const -> std::invoke_result_t<F&> {
    try {
      return make();
    } catch (const invalid_argument& e) {  // a layer refusing a hyper-parameter or format
      throw io_error(where_, qnas::detail::cat(what, ": ", e.what()));
    }
  }

  /// Counts how deep the manifest nests arrays and objects, without building it. nlohmann parses
  /// iteratively, but copying, printing and comparing a value recurse, and so does the layer
  /// reader; a manifest too deep for them is refused here, before anything recurses. Malformed
  /// text passes, for io::parse_json to report with its byte position.
  struct depth_probe {
    std::size_t depth = 0;
    bool too_deep = false;
    bool open() {
      if (++depth <= max_manifest_json_depth) return true;
      too_deep = true;
      return false;  // stops the parse: the rest need not be read
    }
    bool close() {
      --depth;
      return true;
    }
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const json::string_t&) { return true; }
    bool string(json::string_t&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) { return open(); }
    bool key(json::string_t&) { return true; }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
  };
  void check_depth(const std::string& text) const {
    depth_probe p;
    json::sax_parse(text, &p);
    if (p.too_deep)
      throw io_error(where_, qnas::detail::cat("the manifest nests arrays and objects more than ", max_manifest_json_depth,
                                               " deep; a model manifest needs at most ", 2 * max_model_nesting + 5,
                                               " (blocks nested nn::max_model_nesting = ", max_model_nesting, " deep)"));
  }

  /// The file that field 'blob' names, resolved inside the manifest's folder. A manifest is data,
  /// perhaps from elsewhere: it may name the blob beside it, not any file the reader can open
  /// (an absolute path, '..', or a symbolic link out of the folder would let it read, or hang on,
  /// /etc/passwd or /dev/zero).
  std::filesystem::path confined_blob(const std::string& name) const {
    namespace fs = std::filesystem;
    const auto refuse = [&](const std::string& why) {
      return io_error(where_, qnas::detail::cat("field 'blob' is '", name, "': ", why));
    };
    if (name.empty()) throw refuse("empty; it names the blob file beside the manifest");
    if (name.find('\0') != std::string::npos) throw refuse("it holds a NUL character");
    if (fs::path(name).has_root_path())
      throw refuse("an absolute path; a manifest names its blob relative to its own folder, and only files inside "
                   "that folder are read");
    std::error_code ec;
    const fs::path parent = manifest_.parent_path().empty() ? fs::path(".") : manifest_.parent_path();
    const fs::path folder = fs::weakly_canonical(fs::absolute(parent, ec), ec);
    if (ec) throw refuse(qnas::detail::cat("cannot resolve the manifest's folder: ", ec.message()));
    const fs::path target = fs::weakly_canonical(folder / name, ec);
    if (ec) throw refuse(qnas::detail::cat("cannot resolve it: ", ec.message()));
    const fs::path inside = target.lexically_relative(folder);
    if (inside.empty() || *inside.begin() == "..")
      throw refuse(qnas::detail::cat("it resolves to '", target.string(), "', outside the manifest's folder '",
                                     folder.string(), "' (through '..' or a symbolic link); only files inside that "
                                     "folder are read"));
    return target;
  }

  /// Reads the blob at `target` (blob_path_ as the manifest names it, for messages), which must be
  /// a regular file of exactly `declared` bytes: the size is checked before anything is allocated,
  /// and no more than `declared` bytes are ever read.
  void read_blob(const std::filesystem::path& target, std::size_t declared) {
    namespace fs = std::filesystem;
    const std::string blob = "the blob '" + blob_path_.string() + "'";
    std::error_code ec;
    const fs::file_status st = fs::status(target, ec);
    if (st.type() == fs::file_type::not_found)
      throw io_error(where_, qnas::detail::cat("cannot open ", blob, " that it names: ", io::detail::errno_text(ENOENT)));
    if (ec) throw io_error(where_, qnas::detail::cat("cannot open ", blob, " that it names: ", ec.message()));
    if (st.type() != fs::file_type::regular)
      throw io_error(where_, qnas::detail::cat(blob, " that it names is not a regular file but a ", type_text(st.type()),
                                               "; field 'blob' must name the file export_model wrote"));
    const std::uintmax_t size = fs::file_size(target, ec);
    if (ec) throw io_error(where_, qnas::detail::cat("cannot open ", blob, " that it names: ", ec.message()));
    if (size != declared)
      throw io_error(where_, qnas::detail::cat(blob, " has ", size, " bytes, the manifest says ", declared,
                                               size < declared ? " (truncated?)" : " (written by another export?)"));
    std::ifstream f(target, std::ios::binary);
    if (!f) throw io_error(where_, qnas::detail::cat("cannot open ", blob, " that it names: ", io::detail::errno_text(errno)));
    blob_.resize(declared);
    f.read(reinterpret_cast<char*>(blob_.data()), static_cast<std::streamsize>(declared));
    const auto got = static_cast<std::size_t>(f.gcount());
    if (f.bad() || got != declared || f.peek() != std::ifstream::traits_type::eof())
      throw io_error(where_, qnas::detail::cat(blob, " changed while it was read (", declared, " bytes expected",
                                               f.bad() ? ", read error" : "", ")"));
  }
  static const char* type_text(std::filesystem::file_type t) {
    using std::filesystem::file_type;
    switch (t) {
      case file_type::directory: return "directory";
      case file_type::character: return "character device";
      case file_type::block: return "block device";
      case file_type::fifo: return "FIFO";
      case file_type::socket: return "socket";
      case file_type::symlink: return "symbolic link";
      default: return "special file";
    }
  }

  std::string read_bytes(const std::filesystem::path& p, const std::string& what) const {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw io_error(where_, qnas::detail::cat(what, ": ", io::detail::errno_text(errno)));
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) throw io_error(where_, qnas::detail::cat(what, ": read error"));
    return s;
  }

  /// [h, w, c] or [c], every entry > 0.
  tensor_shape shape(const json& v, const std::string& key, const std::string& where) const {
    if (!v.is_array() || (v.size() != 1 && v.size() != 3))
      throw io_error(where, qnas::detail::cat("field '", key, "' must be [h, w, c] or [c], got ", v.dump()));
    std::vector<std::size_t> d;
    for (const auto& e : v) {
      d.push_back(io::get_integer<std::size_t>(e, key, where));
      if (d.back() == 0) throw io_error(where, qnas::detail::cat("field '", key, "' has a zero dimension: ", v.dump()));
    }
    return d.size() == 1 ? flat(d[0]) : image(d[0], d[1], d[2]);
  }

  /// The codec of the format that field `key` of entry `e` names; the manifest's description of
  /// it (formats table) must be the one this program writes for that format, field by field.
  const format_codec& format(const json& e, const char* key, const std::string& what) {
    const std::string w = where_ + ": " + what;
    const auto name = io::get_field<std::string>(e, key, w);
    const auto it = formats_table_->find(name);
    if (it == formats_table_->end())
      throw io_error(where_, qnas::detail::cat(what, ": format '", name, "' is not in the manifest's formats table"));
    const json& f = *it;
    const format_codec* c = formats_.find(name);
    if (c == nullptr)
      throw io_error(where_, qnas::detail::cat(what, ": unknown format '", name, "' (the format registry holds ",
                                               formats_.names(), "; add the format with format_registry::add<F>())"));
    if (!verified_.contains(name)) {
      check_description(f, *c, what);
      verified_.insert(name);
    }
    return *c;
  }

  /// Refuses a formats-table entry that differs from what this program's format `c` would write:
  /// the loader decodes with its own codec, but other readers of the file decode with the table
  /// (code_values, bits, block sizes; docs/export.md), so a table that disagrees with the codec
  /// would make them compute another model. Compared after a JSON round trip of this program's
  /// description, which is exactly what export_model writes.
  void check_description(const json& theirs, const format_codec& c, const std::string& what) const {
    const std::string w = where_ + ": " + what + ": format '" + c.name + "' in the manifest's formats table";
    if (!theirs.is_object())
      throw io_error(w, qnas::detail::cat("expected a JSON object describing the format, got ", theirs.type_name()));
    const json mine = json::parse(format_json(c).dump());
    const auto differs = [&](const std::string& field, const json& t, const json& m) {
      return io_error(where_, qnas::detail::cat(what, ": format '", c.name, "' has ", field, " ", t.dump(),
                                                " in the manifest but ", m.dump(), " in this program"));
    };
    for (const auto& [key, m] : mine.items()) {
      const auto it = theirs.find(key);
      if (it == theirs.end()) throw io_error(w, qnas::detail::cat("missing field '", key, "'"));
      if (m.is_array() && it->is_array()) {
        if (it->size() != m.size())
          throw io_error(where_, qnas::detail::cat(what, ": format '", c.name, "' has ", it->size(), " ", key,
                                                   " in the manifest but ", m.size(), " in this program"));
        for (std::size_t i = 0; i < m.size(); ++i)
          if (!same_value((*it)[i], m[i])) throw differs(qnas::detail::cat(key, "[", i, "]"), (*it)[i], m[i]);
      } else if (!same_value(*it, m)) {
        throw differs(key, *it, m);
      }
    }
    for (const auto& [key, t] : theirs.items())
      if (!mine.contains(key))
        throw io_error(where_, qnas::detail::cat(what, ": format '", c.name, "' has a field '", key,
                                                 "' in the manifest that this program does not write for it"));
  }
  /// Equal JSON values, where numbers compare by value (8 and 8.0 are the same) and zeros by sign.
  static bool same_value(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) {
      const auto x = a.get<double>(), y = b.get<double>();
      return x == y && std::signbit(x) == std::signbit(y);
    }
    return a == b;
  }

  /// Reads tensor entry `t`, which must have `expected` shape, and returns its decoded values
  /// and format (the byte ranges and CRC are checked before anything is decoded).
  /// A tensor as read: its values, format, and the bytes they were decoded from.
  struct read_tensor {
    xt::xarray<float> values;
    const format_codec* codec = nullptr;
    std::vector<std::uint8_t> codes, headers;
  };

  read_tensor tensor(const json& t, const std::vector<std::size_t>& expected, const std::string& what) {
    const std::string w = where_ + ": " + what;
    const format_codec& c = format(t, "format", what);
    const auto s = io::get_field<std::vector<json>>(t, "shape", w);
    std::vector<std::size_t> got;
    for (const auto& e : s) got.push_back(io::get_integer<std::size_t>(e, "shape", w));
    if (got != expected)
      throw io_error(where_, qnas::detail::cat(what, ": shape mismatch: the manifest's tensor is ", shape_text(got),
                                               ", the layer needs ", shape_text(expected)));
    std::size_t n = 1;
    for (auto d : expected) n *= d;
    if (const auto e = io::get_field<std::size_t>(t, "elements", w); e != n)
      throw io_error(where_, qnas::detail::cat(what, ": elements is ", e, ", the shape ", shape_text(expected), " holds ", n));
    const std::size_t code_bytes = code_bytes_of(c.info, n), header_bytes = header_bytes_of(c, expected);
    const auto cb = io::get_field<std::size_t>(t, "code_bytes", w), hb = io::get_field<std::size_t>(t, "header_bytes", w);
    const auto offset = io::get_field<std::size_t>(t, "offset", w), bytes = io::get_field<std::size_t>(t, "bytes", w);
    if (cb != code_bytes || hb != header_bytes || bytes != cb + hb)
      throw io_error(where_, qnas::detail::cat(what, ": ", n, " elements of ", c.name, " take ", code_bytes,
                                               " code bytes and ", header_bytes, " header bytes, the manifest says ", cb,
                                               " and ", hb, " (", bytes, " in all)"));
    if (offset > blob_.size() || bytes > blob_.size() - offset)
      throw io_error(where_, qnas::detail::cat(what, ": bytes [", offset, ", ", offset + bytes, ") lie beyond the end of the blob '",
                                               blob_path_.string(), "' (", blob_.size(), " bytes)"));
    const auto crc = io::get_field<std::uint32_t>(t, "crc32", w);
    if (const std::uint32_t mine = crc32_bytes(blob_.data() + offset, bytes); mine != crc)
      throw io_error(where_, qnas::detail::cat(what, ": CRC-32 of bytes [", offset, ", ", offset + bytes, ") of the blob is ", mine,
                                               ", the manifest says ", crc, " (corrupt blob, or one from another export)"));
    const auto first = blob_.begin() + static_cast<std::ptrdiff_t>(offset);
    std::vector<std::uint8_t> codes(first, first + static_cast<std::ptrdiff_t>(cb));
    std::vector<std::uint8_t> headers(first + static_cast<std::ptrdiff_t>(cb), first + static_cast<std::ptrdiff_t>(bytes));
    read_tensor r{{}, &c, {}, {}};
    if (c.tensor_scaled) {  // the loaded layer keeps the stored bytes (weighted_layer::pin_weights)
      r.codes = codes;
      r.headers = headers;
    }
    try {
      r.values = c.decode(expected, std::move(codes), std::move(headers));
    } catch (const invalid_argument& e) {  // a header no encoder writes (a scale exponent no float has)
      throw io_error(where_, qnas::detail::cat(what, ": ", e.what()));
    }
    return r;
  }

  static std::vector<std::size_t> dims(const xt::xarray<float>& a) { return {a.shape().begin(), a.shape().end()}; }

  /// Fills a weighted layer's parameters from the entry; the layer was built with float32
  /// quantizers and gets the manifest's ones.
  void weighted(weighted_layer& l, const json& j, bool use_bias, const std::string& what) {
    const std::string w = where_ + ": " + what;
    read_tensor wt = tensor(io::get_member(j, "weights", w), dims(l.weights().value), what + " weights");
    const format_codec& wf = *wt.codec;
    l.set_weight_quantizer(wf.q);
    if (wf.steps_of != nullptr) {  // learned steps: the layer quantizes its weights with them
      std::vector<float> steps;
      try {
        steps = wf.steps_of(dims(wt.values), wt.headers);
      } catch (const invalid_argument& e) {
        throw io_error(where_, qnas::detail::cat(what, " weights: ", e.what()));
      }
      l.weights().value = std::move(wt.values);
      std::copy(steps.begin(), steps.end(), l.weight_steps().value.begin());
    } else if (wf.tensor_scaled) {  // scales from the data: the values as stored
      l.pin_weights({std::move(wt.values), std::move(wt.codes), std::move(wt.headers)});
    } else {
      l.weights().value = std::move(wt.values);
    }
    if (use_bias) {
      read_tensor bt = tensor(io::get_member(j, "bias", w), dims(l.bias().value), what + " bias");
      guarded(what + " bias", [&] { return l.set_bias_quantizer(bt.codec->q), 0; });  // refuses lsq
      if (bt.codec->tensor_scaled)
        l.pin_bias({std::move(bt.values), std::move(bt.codes), std::move(bt.headers)});
      else
        l.bias().value = std::move(bt.values);
    } else if (j.contains("bias")) {
      throw io_error(where_, what + ": has a bias tensor but use_bias is false");
    }
  }

  /// Appends the layers of array `layers` (named `list` in messages) to net, which lies inside
  /// `nesting` blocks (0: the network itself).
  void build(sequential& net, const json& layers, const std::string& list, std::size_t nesting) {
    if (!layers.is_array()) throw io_error(where_, qnas::detail::cat(list, " must be an array, got ", layers.type_name()));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const json& j = layers[i];
      const std::string at = list + "[" + std::to_string(i) + "]";
      const auto kind = io::get_field<std::string>(j, "kind", where_ + ": " + at);
      const std::string what = at + " (" + kind + ")";
      const std::string w = where_ + ": " + what;
      const tensor_shape in = shape(io::get_member(j, "input_shape", w), "input_shape", w);
      if (!(in == net.output_shape()))
        throw io_error(where_, qnas::detail::cat(what, ": shape mismatch: its input_shape is ", to_string(in),
                                                 " but the layers before it produce ", to_string(net.output_shape())));
      const tensor_shape out = shape(io::get_member(j, "output_shape", w), "output_shape", w);
      std::unique_ptr<nn::layer> l = make(j, kind, in, out, what, at, nesting);
      if (!(l->output_shape() == out))
        throw io_error(where_, qnas::detail::cat(what, ": shape mismatch: the layer produces ", to_string(l->output_shape()),
                                                 ", the manifest's output_shape is ", to_string(out)));
      const quantizer& oq = format(j, "output_format", what + " output").q;
      guarded(what + " output", [&] { return l->set_output_quantizer(oq), 0; });  // refuses lsq
      net.add(std::move(l));
    }
  }

  /// Builds the layer of entry `j` with the registry's factory for its kind, then reads its
  /// weights, bias and state() tensors into it.
  std::unique_ptr<nn::layer> make(const json& j, const std::string& kind, tensor_shape in, tensor_shape out,
                                  const std::string& what, const std::string& at, std::size_t nesting) {
    const std::string w = where_ + ": " + what;
    const layer_factory* factory = layers_.find(kind);
    if (factory == nullptr)
      throw io_error(where_, qnas::detail::cat(what, ": unknown layer kind '", kind, "' (the layer registry holds ",
                                               layers_.names(), "; add a user layer's kind with nn::layer_registry::add)"));
    layer_record record(j, w, blob_.size(), [&, in]() {
      // The reader recurses once per block (so do the layers' own forward and backward): the
      // cap bounds the stack a manifest can make it use.
      if (nesting >= max_model_nesting)
        throw io_error(where_, qnas::detail::cat(what, ": blocks nest more than ", max_model_nesting,
                                                 " deep (nn::max_model_nesting)"));
      auto body = std::make_unique<sequential>(in);
      build(*body, io::get_member(j, "body", w), at + ".body", nesting + 1);
      return body;
    });
    record.kind = kind;
    record.input = in;
    record.output = out;
    std::unique_ptr<nn::layer> l = guarded(what, [&] { return (*factory)(record); });
    if (!l) throw io_error(where_, qnas::detail::cat(what, ": the layer registry's factory for '", kind, "' built no layer"));
    if (auto* wl = dynamic_cast<weighted_layer*>(l.get())) weighted(*wl, j, wl->has_bias(), what);
    for (const state_tensor& t : l->state()) {
      const auto values = tensor(io::get_member(j, t.key, w), t.shape, what + " " + t.key).values;
      std::copy(values.begin(), values.end(), t.values.begin());
    }
    return l;
  }

  std::filesystem::path manifest_, blob_path_;
  const format_registry& formats_;
  const layer_registry& layers_;
  std::string where_;
  std::vector<std::uint8_t> blob_;
  const json* formats_table_ = nullptr;
  std::set<std::string> verified_;  // formats whose table entry has been checked
};

}  // namespace detail

/// Reads a model written by export_model: the manifest at `manifest` and the blob it names
/// (a regular file inside the manifest's folder). Every format the manifest names must be in
/// `formats`. The network runs inference (forward(x, false)) with the exported network's
/// outputs, bit for bit; it can be trained further, but its float master weights are the
/// quantized ones.
/// Throws qnas::io_error "qnas::nn::load_model('<manifest>'): <what and where>" for a missing
/// or unreadable file, malformed JSON or fields, JSON or blocks nested too deep
/// (max_manifest_json_depth, max_model_nesting), a blob path outside the manifest's folder or
/// not naming a regular file, another format version, a blob of the wrong size, a CRC mismatch,
/// an unknown format name or layer kind, a format description that differs from the format's
/// own, and shapes that do not chain or do not match the layers' hyper-parameters
/// (docs/bad_input.md lists the messages).
inline std::unique_ptr<sequential> load_model(const std::filesystem::path& manifest, const format_registry& formats,
                                              const layer_registry& layers = builtin_layers()) {
  return detail::model_reader(manifest, formats, layers).read();
}

}  // namespace qnas::nn
