// layer_registry: the one table from the layer kinds a model file names to the factories that
// build them again, with every built-in kind; users add their own layers to it.
//
// nn::export_model writes each layer from what the layer says of itself (its description's
// shapes, window and output channels, weights and bias with their formats, state() tensors and
// attributes()), and nn::load_model rebuilds it by looking its kind up here. A layer a user
// writes becomes exportable by adding its kind with a factory that reads its entry back
// (docs/export.md, "User layers"; examples/11_custom_layer.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/json.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::nn {

/// One layer's entry in a model file, as the factory that rebuilds the layer reads it: the
/// kind, the shapes (checked against the layers around it), and typed accessors for the fields
/// the entry holds. Every accessor throws qnas::io_error naming the file, the layer and the
/// field when the field is missing or malformed. Weights, bias, state() tensors and the output
/// format are read by load_model after the factory returns, into the layer it built.
class layer_record {
 public:
  std::string kind;
  tensor_shape input{};
  tensor_shape output{};

  /// Integer field `key` (>= 0).
  [[nodiscard]] std::size_t count(std::string_view key) const { return io::get_field<std::size_t>(*entry_, key, where_); }
  /// Integer field `key` (>= 0), or `fallback` when the entry has no such field (the writer
  /// leaves out `groups` when it is 1).
  [[nodiscard]] std::size_t count(std::string_view key, std::size_t fallback) const {
    return entry_->is_object() && entry_->contains(key) ? count(key) : fallback;
  }
  /// Boolean field `key`.
  [[nodiscard]] bool flag(std::string_view key) const { return io::get_field<bool>(*entry_, key, where_); }
  /// Number field `key` (an attribute the layer wrote through layer::attributes()).
  [[nodiscard]] double number(std::string_view key) const {
    const nlohmann::json& v = io::get_member(*entry_, key, where_);
    if (!v.is_number()) throw io_error(where_, qnas::detail::cat("field '", key, "' must be a number, got ", v.dump()));
    return v.get<double>();
  }
  /// Fields kernel, stride and padding ("same" or "valid").
  [[nodiscard]] window_desc window() const {
    window_desc w{count("kernel"), count("stride"), padding::valid};
    const auto p = io::get_field<std::string>(*entry_, "padding", where_);
    if (p == "same") w.pad = padding::same;
    else if (p != "valid") throw io_error(where_, qnas::detail::cat("field 'padding' is '", p, "'; expected \"same\" or \"valid\""));
    return w;
  }
  /// Refuses, before the layer is built, a tensor of the product of `factors` elements (computed
  /// without overflow) that the file's blob could not hold: a corrupt hyper-parameter would
  /// otherwise make the factory allocate whatever it says.
  void reserve(std::initializer_list<std::size_t> factors) const {
    const std::size_t limit = 8 * blob_bytes_;  // an element takes at least one bit
    std::size_t n = 1;
    for (std::size_t f : factors) {
      if (f != 0 && n > limit / f) n = limit + 1;
      else n *= f;
    }
    if (n > limit)
      throw io_error(where_, qnas::detail::cat("shape mismatch: the hyper-parameters ask for more weights than the ",
                                               blob_bytes_, "-byte blob can hold"));
  }
  /// The layers of field "body" (composite layers), read as a network on `input`.
  [[nodiscard]] std::unique_ptr<sequential> body() const { return body_(); }
  /// An io_error naming the file and the layer.
  [[nodiscard]] io_error error(const std::string& what) const { return io_error(where_, what); }

  /// Built by load_model: the entry, "<reader>: <layer>" for messages, the blob size and how
  /// to read a body.
  layer_record(const nlohmann::json& entry, std::string where, std::size_t blob_bytes,
               std::function<std::unique_ptr<sequential>()> body)
      : entry_(&entry), where_(std::move(where)), blob_bytes_(blob_bytes), body_(std::move(body)) {}

 private:
  const nlohmann::json* entry_;
  std::string where_;
  std::size_t blob_bytes_ = 0;
  std::function<std::unique_ptr<sequential>()> body_;
};

/// Builds a layer (float32 formats) from its entry; load_model then fills its weights, bias and
/// state and sets its formats.
using layer_factory = std::function<std::unique_ptr<layer>(const layer_record&)>;

/// The layer kinds a program can write to and read from a model file, each with its factory.
/// `layer_registry::builtin()` holds every layer of qnas::nn; add a user layer's kind to a copy:
///
///     nn::layer_registry layers = nn::layer_registry::builtin();
///     layers.add("channel_shuffle", [](const nn::layer_record& r) {
///       return std::make_unique<channel_shuffle>(r.input, r.count("groups"));
///     });
///     nn::export_model(net, "model.json", formats, layers);
///     auto back = nn::load_model("model.json", formats, layers);
class layer_registry {
 public:
  /// An empty registry.
  layer_registry() = default;

  /// Every layer kind of qnas::nn: conv2d, depthwise_conv2d, dense, max_pool, avg_pool,
  /// global_avg_pool, batch_norm, relu, relu6, swish, sigmoid, softmax, flatten, residual,
  /// sequential.
  static layer_registry builtin();

  /// Adds `kind`. Throws qnas::invalid_argument when it is empty, already present, or the
  /// factory is empty.
  layer_registry& add(std::string kind, layer_factory factory) {
    constexpr const char* fn = "qnas::nn::layer_registry::add";
    if (kind.empty()) throw invalid_argument(fn, "the layer kind is empty");
    if (!factory) throw invalid_argument(fn, qnas::detail::cat("the factory of layer kind '", kind, "' is empty"));
    if (factories_.contains(kind))
      throw invalid_argument(fn, qnas::detail::cat("layer kind '", kind, "' is already in the registry"));
    factories_.emplace(std::move(kind), std::move(factory));
    return *this;
  }

  /// The factory of `kind`, or nullptr.
  [[nodiscard]] const layer_factory* find(std::string_view kind) const {
    const auto it = factories_.find(kind);
    return it == factories_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] bool contains(std::string_view kind) const { return find(kind) != nullptr; }
  /// The kinds, comma-separated (for messages).
  [[nodiscard]] std::string names() const {
    std::string s;
    for (const auto& [k, f] : factories_) s += (s.empty() ? "" : ", ") + k;
    return s;
  }

 private:
  std::map<std::string, layer_factory, std::less<>> factories_;
};

namespace detail {
/// The factory of a layer built from its input shape alone (activations, flatten, global pool).
template <class L>
std::unique_ptr<layer> on_input(const layer_record& e) {
  return std::make_unique<L>(e.input);
}
}  // namespace detail

inline layer_registry layer_registry::builtin() {
  layer_registry r;
  r.add("conv2d", [](const layer_record& e) -> std::unique_ptr<layer> {
    const window_desc w = e.window();
    const std::size_t filters = e.count("filters");
    const bool bias = e.flag("use_bias");
    if (const std::size_t g = e.count("groups", 1); g != 1)
      throw e.error(qnas::detail::cat("groups is ", g, "; the built-in conv2d has one group (a grouped convolution is a "
                                      "user layer of another kind)"));
    e.reserve({w.kernel, w.kernel, e.input.c, filters});
    return std::make_unique<conv2d_layer>(e.input, filters, w.kernel, w.stride, w.pad, layer_formats{}, bias);
  });
  r.add("depthwise_conv2d", [](const layer_record& e) -> std::unique_ptr<layer> {
    const window_desc w = e.window();
    const bool bias = e.flag("use_bias");
    e.reserve({w.kernel, w.kernel, e.input.c});
    return std::make_unique<depthwise_conv2d_layer>(e.input, w.kernel, w.stride, w.pad, layer_formats{}, bias);
  });
  r.add("dense", [](const layer_record& e) -> std::unique_ptr<layer> {
    const std::size_t units = e.count("units");
    const bool bias = e.flag("use_bias");
    e.reserve({e.input.size(), units});
    return std::make_unique<dense_layer>(e.input, units, layer_formats{}, bias);
  });
  const auto pool = [](pool_layer::mode m) {
    return [m](const layer_record& e) -> std::unique_ptr<layer> {
      const window_desc w = e.window();
      return std::make_unique<pool_layer>(e.input, m, w.kernel, w.stride, w.pad);
    };
  };
  r.add("max_pool", pool(pool_layer::mode::max)).add("avg_pool", pool(pool_layer::mode::average));
  r.add("batch_norm", [](const layer_record& e) -> std::unique_ptr<layer> {
    return std::make_unique<batch_norm_layer>(e.input, 0.9f, static_cast<float>(e.number("epsilon")));
  });
  r.add("residual", [](const layer_record& e) -> std::unique_ptr<layer> { return std::make_unique<residual_layer>(e.body()); });
  r.add("sequential", [](const layer_record& e) -> std::unique_ptr<layer> { return e.body(); });
  r.add("relu", detail::on_input<relu_layer>).add("relu6", detail::on_input<relu6_layer>);
  r.add("swish", detail::on_input<swish_layer>).add("sigmoid", detail::on_input<sigmoid_layer>);
  r.add("softmax", detail::on_input<softmax_layer>).add("flatten", detail::on_input<flatten_layer>);
  r.add("global_avg_pool", detail::on_input<global_avg_pool_layer>);
  return r;
}

/// The built-in registry, made once (the default of export_model and load_model).
inline const layer_registry& builtin_layers() {
  static const layer_registry r = layer_registry::builtin();
  return r;
}

}  // namespace qnas::nn
