// Import of a float CNN from ONNX (opsets 13-17, as torch.onnx.export and qnas::export_onnx write them) into a run-time nn::sequential with the file's weights.
//
// ONNX computes in NCHW; qnas networks are NHWC. The importer follows each activation through
// the graph with its layout and rewrites the weights instead of adding transposes: Conv weights
// OIHW become HWIO [k, k, in, out] (a depthwise Conv [c, 1, k, k] becomes [k, k, c]); Gemm and
// MatMul weights become [in, out]; and the rows of the first Gemm/MatMul after a Flatten of an
// image are permuted from ONNX's CHW order to qnas's HWC order, so the imported network's outputs
// equal the file's. A graph whose input is NHWC followed by Transpose(0, 3, 1, 2) (what
// qnas::export_onnx writes) keeps that input; an NCHW input [N, C, H, W] becomes qnas's
// [N, H, W, C]. The imported network always takes and returns qnas's layout (NHWC or [N, C]).
//
// The graph must be a chain of supported operators with residual adds (y = x + f(x), either
// operand order) and swish (x * Sigmoid(x)); anything else is refused, naming the node. The file
// is untrusted: its size is checked against a cap before it is read, every tensor's declared
// size against the bytes it holds before anything is allocated, and the graph for missing
// tensors and cycles; errors are qnas::io_error (the file) and qnas::invalid_argument (the
// model), and nothing reads outside the file. docs/onnx_import.md lists the operators and the
// refusals. This header belongs to the optional component qnas::onnx (Debian's libonnx-dev).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>
#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas {

/// The lowest and highest default-domain opset import reads.
inline constexpr std::int64_t onnx_import_min_opset = 13;
inline constexpr std::int64_t onnx_import_max_opset = 17;

/// Options of import_onnx.
struct onnx_import_options {
  /// Files larger than this are refused before they are read (io_error).
  std::size_t max_file_bytes = std::size_t{256} << 20;
  /// Residual blocks may nest this deep.
  std::size_t max_nesting = 64;
};

namespace detail::onnx_in {

/// A decoded initializer or Constant: its dims and its values as floats or int64s.
struct constant {
  std::vector<std::int64_t> dims;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  bool integer = false;
  [[nodiscard]] std::size_t size() const { return integer ? i.size() : f.size(); }
};

/// An int64 vector computed from shapes; `batch` marks the graph's batch dimension.
inline constexpr std::int64_t batch = std::numeric_limits<std::int64_t>::min();

/// How an activation tensor of the graph relates to qnas's tensor holding the same values.
enum class form : std::uint8_t {
  image,   ///< ONNX [N, C, H, W]; qnas [N, H, W, C]
  nhwc,    ///< ONNX [N, H, W, C] (the input before Transpose(0,3,1,2), or after Transpose(0,2,3,1)); qnas the same
  flat,    ///< ONNX [N, F]; qnas [N, F] in the same order
  chw,     ///< ONNX [N, F] holding the image `img` in CHW order; qnas [N, F] in HWC order
  pooled   ///< ONNX [N, C, 1, 1] (GlobalAveragePool); qnas [N, C]
};

struct value {
  form f = form::image;
  tensor_shape s{};    ///< qnas's shape of the tensor
  tensor_shape img{};  ///< for form::chw: the image it flattens
};

class importer {
 public:
  importer(const onnx::ModelProto& m, std::string where, const onnx_import_options& opt)
      : m_(m), g_(m.graph()), where_(std::move(where)), opt_(opt) {}

  std::unique_ptr<nn::sequential> run() {
    check_opsets();
    read_constants();
    index_nodes();
    sort_nodes();
    const auto [input, start] = graph_input();
    auto net = std::make_unique<nn::sequential>(start.s);
    std::string t = input;
    value v = start;
    seen_[t] = v;
    walk(*net, t, v, "", -1, 0);
    if (t != output_)
      bad(cat("the chain of layers ends at tensor '", t, "', not at the graph output '", output_, "'"));
    if (v.f == form::chw)
      bad(cat("the graph output '", output_, "' is a flattened image in CHW order, which a qnas network (HWC order) "
              "cannot return"));
    return net;
  }

 private:
  const onnx::ModelProto& m_;
  const onnx::GraphProto& g_;
  std::string where_;
  onnx_import_options opt_;
  std::map<std::string, constant> constants_;
  std::map<std::string, int> producer_;                 // tensor -> node
  std::map<std::string, std::vector<int>> consumers_;   // activation tensor -> nodes reading it (Shape excluded)
  std::map<std::string, value> seen_;                    // activation tensors met by the walk
  std::vector<bool> used_;
  std::string output_;
  std::optional<std::int64_t> static_batch_;

  template <class... Ts>
  static std::string cat(const Ts&... parts) {
    return qnas::detail::cat(parts...);
  }
  [[noreturn]] void bad(const std::string& what) const { throw invalid_argument(where_, what); }
  [[noreturn]] void malformed(const std::string& what) const { throw io_error(where_, what); }

  const onnx::NodeProto& node(int i) const { return g_.node(i); }
  static std::string node_name(const onnx::NodeProto& n) {
    return n.name().empty() ? (n.output_size() > 0 ? "<unnamed, output " + n.output(0) + ">" : "<unnamed>") : n.name();
  }
  static std::string label(const onnx::NodeProto& n) { return "node '" + node_name(n) + "' (" + n.op_type() + ")"; }
  static const std::string& in(const onnx::NodeProto& n, int i) {
    static const std::string none;
    return i < n.input_size() ? n.input(i) : none;
  }

  // ---- the model: opsets, constants, nodes, the graph ---------------------------------------

  void check_opsets() const {
    bool found = false;
    for (const auto& o : m_.opset_import()) {
      if (!o.domain().empty() && o.domain() != "ai.onnx") continue;
      found = true;
      if (o.version() < onnx_import_min_opset || o.version() > onnx_import_max_opset)
        bad(cat("the model imports opset ", o.version(), " of the default domain; import reads opsets ",
                onnx_import_min_opset, " to ", onnx_import_max_opset));
    }
    if (!found) bad("the model imports no opset of the default ONNX domain");
    if (g_.sparse_initializer_size() > 0) bad("the graph has sparse initializers, which import does not read");
  }

  /// Decodes `t`, checking its declared size against the bytes it holds before allocating.
  constant decode(const onnx::TensorProto& t, const std::string& what) const {
    if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
      bad(cat(what, " stores its data in an external file, which import does not read (save the model with its "
                    "weights inside)"));
    if (t.has_segment()) bad(cat(what, " is segmented, which import does not read"));
    constant c;
    // The element count saturates at 2^60 (no overflow); it must then match the bytes held.
    constexpr std::size_t limit = std::size_t{1} << 60;
    std::size_t n = 1;
    for (const std::int64_t d : t.dims()) {
      if (d < 0) malformed(cat(what, " has a negative dimension ", d));
      const auto u = static_cast<std::size_t>(d);
      if (u != 0 && n > limit / u) n = limit + 1;
      else n = std::min(n * u, limit + 1);
      if (c.dims.size() < 64) c.dims.push_back(d);
    }
    if (t.dims_size() > 8) bad(cat(what, " has rank ", t.dims_size(), "; import reads tensors of rank up to 8"));
    const int type = t.data_type();
    std::size_t elem = 0;
    int typed = 0;
    switch (type) {
      case onnx::TensorProto::FLOAT: elem = 4; typed = t.float_data_size(); break;
      case onnx::TensorProto::DOUBLE: elem = 8; typed = t.double_data_size(); break;
      case onnx::TensorProto::INT64: elem = 8; typed = t.int64_data_size(); break;
      case onnx::TensorProto::INT32: elem = 4; typed = t.int32_data_size(); break;
      default: {
        const std::string name = onnx::TensorProto_DataType_IsValid(type)
                                     ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type))
                                     : std::string("unknown");
        bad(cat(what, " has data type ", name, " (", type, "); import reads FLOAT, DOUBLE, INT64 and INT32 tensors"));
      }
    }
    const bool raw = t.has_raw_data();
    const std::size_t have = raw ? t.raw_data().size() : static_cast<std::size_t>(typed) * elem;
    if (n > limit || n * elem != have)
      malformed(cat(what, " declares ", n > limit ? std::string("over 2^60") : std::to_string(n), " elements of ", elem,
                    " bytes but holds ", have, " bytes (truncated or corrupt)"));
    c.integer = type == onnx::TensorProto::INT64 || type == onnx::TensorProto::INT32;
    const char* p = t.raw_data().data();
    if (c.integer) c.i.resize(n);
    else c.f.resize(n);
    for (std::size_t k = 0; k < n; ++k) {  // raw_data is little-endian, as the machines qnas runs on
      switch (type) {
        case onnx::TensorProto::FLOAT:
          if (raw) std::memcpy(&c.f[k], p + 4 * k, 4);
          else c.f[k] = t.float_data(static_cast<int>(k));
          break;
        case onnx::TensorProto::DOUBLE: {
          double d = 0;
          if (raw) std::memcpy(&d, p + 8 * k, 8);
          else d = t.double_data(static_cast<int>(k));
          c.f[k] = static_cast<float>(d);
          break;
        }
        case onnx::TensorProto::INT64:
          if (raw) std::memcpy(&c.i[k], p + 8 * k, 8);
          else c.i[k] = t.int64_data(static_cast<int>(k));
          break;
        default: {
          std::int32_t v = 0;
          if (raw) std::memcpy(&v, p + 4 * k, 4);
          else v = t.int32_data(static_cast<int>(k));
          c.i[k] = v;
        }
      }
    }
    return c;
  }

  void add_constant(const std::string& name, constant c, const std::string& what) {
    if (name.empty()) malformed(cat(what, " has no name"));
    if (!constants_.emplace(name, std::move(c)).second) malformed(cat("tensor '", name, "' is defined twice (", what, ")"));
  }

  void read_constants() {
    for (const auto& t : g_.initializer()) add_constant(t.name(), decode(t, "initializer '" + t.name() + "'"), "an initializer");
    for (const auto& n : g_.node()) {
      if (n.op_type() != "Constant" || (!n.domain().empty() && n.domain() != "ai.onnx")) continue;
      if (n.output_size() != 1 || n.attribute_size() != 1) bad(cat(label(n), ": needs one output and one attribute"));
      const onnx::AttributeProto& a = n.attribute(0);
      constant c;
      if (a.name() == "value" && a.type() == onnx::AttributeProto::TENSOR) {
        c = decode(a.t(), label(n));
      } else if (a.name() == "value_float" && a.type() == onnx::AttributeProto::FLOAT) {
        c.f = {a.f()};
      } else if (a.name() == "value_floats" && a.type() == onnx::AttributeProto::FLOATS) {
        c.f.assign(a.floats().begin(), a.floats().end());
        c.dims = {static_cast<std::int64_t>(c.f.size())};
      } else if (a.name() == "value_int" && a.type() == onnx::AttributeProto::INT) {
        c.integer = true;
        c.i = {a.i()};
      } else if (a.name() == "value_ints" && a.type() == onnx::AttributeProto::INTS) {
        c.integer = true;
        c.i.assign(a.ints().begin(), a.ints().end());
        c.dims = {static_cast<std::int64_t>(c.i.size())};
      } else {
        bad(cat(label(n), ": attribute '", a.name(), "' is not read (value, value_float(s) and value_int(s) are)"));
      }
      add_constant(n.output(0), std::move(c), label(n));
    }
  }

  /// The operators import reads, besides Constant.
  static bool supported(const std::string& op) {
    static const std::set<std::string, std::less<>> ops = {
        "Conv", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "Sigmoid", "Softmax", "MaxPool", "AveragePool",
        "GlobalAveragePool", "Flatten", "Reshape", "BatchNormalization", "Identity", "Dropout", "Transpose", "Pad",
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast"};
    return ops.contains(op);
  }
  static bool shape_op(const std::string& op) {
    return op == "Gather" || op == "Unsqueeze" || op == "Squeeze" || op == "Concat" || op == "Cast";
  }

  void index_nodes() {
    const int count = g_.node_size();
    used_.assign(static_cast<std::size_t>(count), false);
    for (int i = 0; i < count; ++i) {
      const onnx::NodeProto& n = node(i);
      if (!n.domain().empty() && n.domain() != "ai.onnx")
        bad(cat("unsupported op '", n.domain(), ".", n.op_type(), "' (node '", node_name(n), "')"));
      if (n.op_type() == "Constant") continue;
      if (!supported(n.op_type()))
        bad(cat("unsupported op '", n.op_type(), "' (node '", node_name(n), "')"));
      if (n.output_size() < 1 || n.output(0).empty()) malformed(cat(label(n), " has no output"));
      for (const auto& o : n.output()) {
        if (o.empty()) continue;
        if (constants_.contains(o)) malformed(cat("tensor '", o, "' is both a constant and the output of ", label(n)));
        if (!producer_.emplace(o, i).second) malformed(cat("tensor '", o, "' is the output of two nodes (", label(n), ")"));
      }
    }
  }

  /// Kahn's algorithm: refuses a tensor nothing produces and a cycle.
  void sort_nodes() {
    std::set<std::string, std::less<>> inputs;
    for (const auto& i : g_.input()) {
      if (producer_.contains(i.name())) malformed(cat("the graph input '", i.name(), "' is also the output of a node"));
      inputs.insert(i.name());
    }
    const int count = g_.node_size();
    std::vector<int> pending(static_cast<std::size_t>(count), 0);
    std::map<std::string, std::vector<int>> readers;
    for (int i = 0; i < count; ++i) {
      const onnx::NodeProto& n = node(i);
      if (n.op_type() == "Constant") continue;
      std::set<std::string> distinct;
      for (const auto& t : n.input()) {
        if (t.empty() || constants_.contains(t)) continue;
        if (!producer_.contains(t) && !inputs.contains(t))
          malformed(cat("missing initializer/input '", t, "' of ", label(n)));
        if (!distinct.insert(t).second) continue;
        if (n.op_type() != "Shape") consumers_[t].push_back(i);
        if (producer_.contains(t)) {
          ++pending[static_cast<std::size_t>(i)];
          readers[t].push_back(i);
        }
      }
    }
    std::vector<int> ready;
    for (int i = 0; i < count; ++i)
      if (pending[static_cast<std::size_t>(i)] == 0) ready.push_back(i);
    std::size_t done = 0;
    while (!ready.empty()) {
      const int i = ready.back();
      ready.pop_back();
      ++done;
      for (const auto& o : node(i).output()) {
        const auto it = readers.find(o);
        if (it == readers.end()) continue;
        for (int r : it->second)
          if (--pending[static_cast<std::size_t>(r)] == 0) ready.push_back(r);
      }
    }
    if (done != static_cast<std::size_t>(count))
      for (int i = 0; i < count; ++i)
        if (pending[static_cast<std::size_t>(i)] > 0)
          malformed(cat("the graph has a cycle through ", label(node(i))));
  }

  std::pair<std::string, value> graph_input() {
    const onnx::ValueInfoProto* input = nullptr;
    for (const auto& i : g_.input()) {
      if (constants_.contains(i.name())) continue;  // older exporters list initializers as inputs
      if (input != nullptr) bad(cat("the graph has several inputs ('", input->name(), "', '", i.name(), "'); import needs one"));
      input = &i;
    }
    if (input == nullptr) bad("the graph has no input");
    if (g_.output_size() != 1) bad(cat("the graph has ", g_.output_size(), " outputs; import needs one"));
    output_ = g_.output(0).name();
    const std::string& name = input->name();
    if (!input->type().has_tensor_type() || input->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
      bad(cat("the graph input '", name, "' is not a float tensor"));
    const auto& tt = input->type().tensor_type();
    if (!tt.has_shape()) bad(cat("the graph input '", name, "' has no shape; import needs [N, C, H, W] or [N, F]"));
    const auto& dims = tt.shape().dim();
    if (dims.size() != 4 && dims.size() != 2)
      bad(cat("the graph input '", name, "' has rank ", dims.size(), "; import reads [N, C, H, W] or [N, F]"));
    if (dims[0].has_dim_value()) static_batch_ = dims[0].dim_value();
    std::vector<std::size_t> d;
    for (int k = 1; k < dims.size(); ++k) {
      if (!dims[k].has_dim_value())
        bad(cat("the graph input '", name, "' has a dynamic dimension ", k, " ('", dims[k].dim_param(),
                "'); only the batch dimension may be dynamic"));
      const std::int64_t x = dims[k].dim_value();
      if (x <= 0 || x > (std::int64_t{1} << 24))
        bad(cat("the graph input '", name, "' has dimension ", k, " = ", x, "; import reads 1 to 2^24"));
      d.push_back(static_cast<std::size_t>(x));
    }
    if (d.size() == 1) return {name, {form::flat, qnas::flat(d[0]), {}}};
    if (d[0] * d[1] > (std::size_t{1} << 31) / d[2])
      bad(cat("the graph input '", name, "' has over 2^31 elements per sample"));
    const auto c = consumers_.find(name);
    if (c != consumers_.end() && c->second.size() == 1 && node(c->second[0]).op_type() == "Transpose" &&
        ints(node(c->second[0]), "perm", {}) == std::vector<std::int64_t>{0, 3, 1, 2})
      return {name, {form::nhwc, qnas::image(d[0], d[1], d[2]), {}}};
    return {name, {form::image, qnas::image(d[1], d[2], d[0]), {}}};
  }

  // ---- attributes and constant inputs ---------------------------------------------------------

  const onnx::AttributeProto* attr(const onnx::NodeProto& n, std::string_view name, onnx::AttributeProto::AttributeType type) const {
    const onnx::AttributeProto* found = nullptr;
    for (const auto& a : n.attribute())
      if (a.name() == name) {
        if (a.type() != type) bad(cat(label(n), ": attribute '", name, "' has the wrong type"));
        found = &a;
      }
    return found;
  }
  std::int64_t integer(const onnx::NodeProto& n, std::string_view name, std::int64_t fallback) const {
    const auto* a = attr(n, name, onnx::AttributeProto::INT);
    return a != nullptr ? a->i() : fallback;
  }
  std::vector<std::int64_t> ints(const onnx::NodeProto& n, std::string_view name, std::vector<std::int64_t> fallback) const {
    const auto* a = attr(n, name, onnx::AttributeProto::INTS);
    return a != nullptr ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
  }
  float real(const onnx::NodeProto& n, std::string_view name, float fallback) const {
    const auto* a = attr(n, name, onnx::AttributeProto::FLOAT);
    return a != nullptr ? a->f() : fallback;
  }
  /// Refuses an attribute not in `known`.
  void only(const onnx::NodeProto& n, std::initializer_list<std::string_view> known) const {
    for (const auto& a : n.attribute())
      if (std::find(known.begin(), known.end(), a.name()) == known.end())
        bad(cat(label(n), ": attribute '", a.name(), "' is not supported"));
  }

  /// The float constant input `i` of `n` (initializer or Constant), or nullptr when omitted.
  const constant* float_input(const onnx::NodeProto& n, int i, const char* what) const {
    const std::string& t = in(n, i);
    if (t.empty()) return nullptr;
    const auto it = constants_.find(t);
    if (it == constants_.end()) bad(cat(label(n), ": the ", what, " '", t, "' must be an initializer or Constant"));
    if (it->second.integer) bad(cat(label(n), ": the ", what, " '", t, "' must be a float tensor"));
    return &it->second;
  }

  /// The int64 values of tensor `t`: a constant, or a small computation on shapes (Shape,
  /// Gather, Unsqueeze, Squeeze, Concat, Cast) such as PyTorch writes for x.view(x.size(0), -1).
  std::vector<std::int64_t> shape_values(const std::string& t, const onnx::NodeProto& user, std::size_t depth) {
    if (const auto c = constants_.find(t); c != constants_.end()) {
      if (!c->second.integer) bad(cat(label(user), ": '", t, "' must be an integer tensor"));
      return c->second.i;
    }
    const auto p = producer_.find(t);
    if (p == producer_.end() || depth > 32) bad(cat(label(user), ": '", t, "' is not a shape import can compute"));
    const onnx::NodeProto& n = node(p->second);
    const std::string& op = n.op_type();
    used_[static_cast<std::size_t>(p->second)] = true;
    if (op == "Shape") {
      only(n, {});
      const auto s = seen_.find(in(n, 0));
      if (s == seen_.end()) bad(cat(label(n), ": the shape of '", in(n, 0), "' is not known where it is read"));
      const value& v = s->second;
      const auto z = [](std::size_t x) { return static_cast<std::int64_t>(x); };
      switch (v.f) {
        case form::image: return {batch, z(v.s.c), z(v.s.h), z(v.s.w)};
        case form::nhwc: return {batch, z(v.s.h), z(v.s.w), z(v.s.c)};
        case form::pooled: return {batch, z(v.s.c), 1, 1};
        default: return {batch, z(v.s.c)};
      }
    }
    if (!shape_op(op)) bad(cat(label(user), ": '", t, "' is not a shape import can compute (made by ", label(n), ")"));
    std::vector<std::int64_t> x = shape_values(in(n, 0), n, depth + 1);
    if (op == "Cast" || op == "Squeeze" || op == "Unsqueeze") return x;  // 0-d and 1-d vectors: the values are kept
    if (op == "Gather") {
      only(n, {"axis"});
      if (integer(n, "axis", 0) != 0) bad(cat(label(n), ": import reads Gather on axis 0 of a shape"));
      std::vector<std::int64_t> out;
      for (std::int64_t k : shape_values(in(n, 1), n, depth + 1)) {
        if (k < 0) k += static_cast<std::int64_t>(x.size());
        if (k < 0 || k >= static_cast<std::int64_t>(x.size())) bad(cat(label(n), ": index out of range"));
        out.push_back(x[static_cast<std::size_t>(k)]);
      }
      return out;
    }
    for (int k = 1; k < n.input_size(); ++k) {  // Concat
      if (x.size() > 64) bad(cat(label(n), ": the shape is too long"));
      const std::vector<std::int64_t> y = shape_values(n.input(k), n, depth + 1);
      x.insert(x.end(), y.begin(), y.end());
    }
    return x;
  }

  // ---- the walk along the chain -------------------------------------------------------------

  std::vector<int> consumers(const std::string& t, int exclude) const {
    std::vector<int> c;
    if (const auto it = consumers_.find(t); it != consumers_.end())
      for (int i : it->second)
        if (i != exclude) c.push_back(i);
    return c;
  }
  void take(int i) {
    if (used_[static_cast<std::size_t>(i)]) bad(cat(label(node(i)), " is reached twice"));
    used_[static_cast<std::size_t>(i)] = true;
  }
  void advance(std::string& t, value& v, const std::string& out, value nv) {
    t = out;
    v = nv;
    seen_[t] = v;
  }

  /// Appends to `seq` the layers from tensor `t` (held as `v`) until tensor `stop` (or the end),
  /// leaving `t`/`v` at the last tensor. `exclude` is a node not to follow from the first tensor.
  void walk(nn::sequential& seq, std::string& t, value& v, const std::string& stop, int exclude, std::size_t depth) {
    if (depth > opt_.max_nesting) bad(cat("residual blocks nest deeper than ", opt_.max_nesting));
    for (bool first = true;; first = false) {
      if (!stop.empty() && t == stop) return;
      const std::vector<int> c = consumers(t, first ? exclude : -1);
      if (c.empty()) {
        if (!stop.empty() || t != output_) bad(cat("tensor '", t, "' leads nowhere: nothing reads it and it is not the graph output"));
        return;
      }
      if (t == output_) bad(cat("the graph output '", t, "' is also read by ", label(node(c[0]))));
      if (c.size() == 1) {
        take(c[0]);
        apply(seq, node(c[0]), t, v);
        continue;
      }
      if (c.size() == 2 && swish(seq, c, t, v)) continue;
      if (c.size() == 2 && residual(seq, c, t, v, depth)) continue;
      std::string names;
      for (int i : c) names += (names.empty() ? "" : ", ") + label(node(i));
      bad(cat("tensor '", t, "' is read by ", c.size(), " nodes (", names,
              "); import reads chains with residual adds (x + f(x)) and swish (x * Sigmoid(x))"));
    }
  }

  bool swish(nn::sequential& seq, const std::vector<int>& c, std::string& t, value& v) {
    for (int k = 0; k < 2; ++k) {
      const onnx::NodeProto& s = node(c[static_cast<std::size_t>(k)]);
      const onnx::NodeProto& m = node(c[static_cast<std::size_t>(1 - k)]);
      if (s.op_type() != "Sigmoid" || m.op_type() != "Mul" || m.input_size() != 2) continue;
      const std::string& so = s.output(0);
      if (!((m.input(0) == t && m.input(1) == so) || (m.input(1) == t && m.input(0) == so))) continue;
      if (consumers(so, -1).size() != 1 || so == output_) continue;
      only(s, {});
      only(m, {});
      take(c[static_cast<std::size_t>(k)]);
      take(c[static_cast<std::size_t>(1 - k)]);
      add(seq, std::make_unique<nn::swish_layer>(v.s), m);
      advance(t, v, m.output(0), v);
      return true;
    }
    return false;
  }

  bool residual(nn::sequential& seq, const std::vector<int>& c, std::string& t, value& v, std::size_t depth) {
    for (int k = 0; k < 2; ++k) {
      const int ai = c[static_cast<std::size_t>(k)];
      const onnx::NodeProto& a = node(ai);
      if (a.op_type() != "Add" || a.input_size() != 2) continue;
      const std::string& u = a.input(0) == t ? a.input(1) : a.input(0);
      if (u == t || constants_.contains(u)) continue;
      only(a, {});
      take(ai);
      auto body = std::make_unique<nn::sequential>(v.s);
      std::string bt = t;
      value bv = v;
      walk(*body, bt, bv, u, ai, depth + 1);
      if (consumers(u, -1).size() != 1 || u == output_)
        bad(cat(label(a), ": the block's output '", u, "' is read by other nodes too"));
      if (bv.f != v.f || !(bv.s == v.s))
        bad(cat(label(a), ": adds '", t, "' ", qnas::to_string(v.s), " and '", u, "' ", qnas::to_string(bv.s),
                " held in another layout; a residual add needs the block to keep its input's shape"));
      add(seq, std::make_unique<nn::residual_layer>(std::move(body)), a);
      advance(t, v, a.output(0), v);
      return true;
    }
    return false;
  }

  void add(nn::sequential& seq, std::unique_ptr<nn::layer> l, const onnx::NodeProto& n) {
    try {
      seq.add(std::move(l));
    } catch (const invalid_argument& e) {
      bad(cat(label(n), ": ", e.what()));
    }
  }
  template <class L, class... Args>
  L& make(nn::sequential& seq, const onnx::NodeProto& n, Args&&... args) {
    std::unique_ptr<L> p;
    try {
      p = std::make_unique<L>(static_cast<Args&&>(args)...);
    } catch (const invalid_argument& e) {
      bad(cat(label(n), ": ", e.what()));
    }
    L& ref = *p;
    add(seq, std::move(p), n);
    return ref;
  }

  void need(const onnx::NodeProto& n, const value& v, std::initializer_list<form> forms, const char* what) const {
    if (std::find(forms.begin(), forms.end(), v.f) == forms.end()) bad(cat(label(n), ": needs ", what));
  }

  /// Applies node `n`, which reads activation `t`, to the chain.
  void apply(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    const std::string& op = n.op_type();
    if (op == "Add") bad(cat(label(n), ": import reads Add as a residual (x + f(x)) or as the bias after a MatMul"));
    if (op == "Mul") bad(cat(label(n), ": import reads Mul only as swish, x * Sigmoid(x)"));
    if (in(n, 0) != t) bad(cat(label(n), ": reads the activation '", t, "' other than as its first input"));
    for (int k = 1; k < n.input_size(); ++k)
      if (n.input(k) == t) bad(cat(label(n), ": reads the activation '", t, "' twice"));
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && (consumers_.contains(n.output(k)) || n.output(k) == output_))
        bad(cat(label(n), ": its output ", k, " ('", n.output(k), "') is used; import reads the first output only"));
    const std::string& out = n.output(0);
    if (op == "Identity" || op == "Dropout") {
      only(n, {"seed"});
      if (op == "Dropout" && !in(n, 2).empty()) {
        const auto c = constants_.find(in(n, 2));
        if (c == constants_.end() || c->second.size() != 1 || (c->second.integer ? c->second.i[0] != 0 : c->second.f[0] != 0))
          bad(cat(label(n), ": training_mode must be a constant false"));
      }
      return advance(t, v, out, v);
    }
    if (op == "Pad") {  // PyTorch writes Pad(0) before the AveragePool of AvgPool2d(count_include_pad=True)
      only(n, {"mode"});
      std::vector<std::int64_t> pads;
      if (!in(n, 1).empty()) pads = shape_values(in(n, 1), n, 0);
      if (std::any_of(pads.begin(), pads.end(), [](std::int64_t p) { return p != 0; }))
        bad(cat(label(n), ": import reads Pad only where it pads nothing"));
      return advance(t, v, out, v);
    }
    if (op == "Relu" || op == "Sigmoid") {
      only(n, {});
      if (op == "Relu") make<nn::relu_layer>(seq, n, v.s);
      else make<nn::sigmoid_layer>(seq, n, v.s);
      return advance(t, v, out, v);
    }
    if (op == "Clip") return clip(seq, n, t, v);
    if (op == "Softmax") {
      only(n, {"axis"});
      const std::int64_t axis = integer(n, "axis", -1);
      need(n, v, {form::flat, form::pooled}, "a flat input [N, F] in qnas's order (softmax over the features)");
      if (axis != 1 && axis != -1) bad(cat(label(n), ": axis ", axis, "; import reads softmax over axis 1 of [N, F]"));
      make<nn::softmax_layer>(seq, n, v.s);
      return advance(t, v, out, {form::flat, v.s, {}});
    }
    if (op == "Conv") return conv(seq, n, t, v);
    if (op == "MaxPool" || op == "AveragePool") return pool(seq, n, t, v);
    if (op == "GlobalAveragePool") {
      only(n, {});
      need(n, v, {form::image}, "an NCHW image");
      make<nn::global_avg_pool_layer>(seq, n, v.s);
      return advance(t, v, out, {form::pooled, qnas::flat(v.s.c), {}});
    }
    if (op == "Flatten") {
      only(n, {"axis"});
      const std::int64_t axis = integer(n, "axis", 1);
      const int rank = v.f == form::flat || v.f == form::chw ? 2 : 4;
      if (axis != 1 && axis != 1 - rank) bad(cat(label(n), ": axis ", axis, "; import reads Flatten(axis = 1)"));
      return flatten(seq, n, t, v);
    }
    if (op == "Reshape") return reshape(seq, n, t, v);
    if (op == "Squeeze") {  // [N, C, 1, 1] -> [N, C] after GlobalAveragePool
      only(n, {});
      if (v.f != form::pooled) bad(cat(label(n), ": import reads Squeeze only after GlobalAveragePool"));
      const std::vector<std::int64_t> axes = in(n, 1).empty() ? std::vector<std::int64_t>{2, 3} : shape_values(in(n, 1), n, 0);
      std::vector<std::int64_t> sorted;
      for (std::int64_t a : axes) sorted.push_back(a < 0 ? a + 4 : a);
      std::sort(sorted.begin(), sorted.end());
      if (sorted != std::vector<std::int64_t>{2, 3}) bad(cat(label(n), ": import reads Squeeze of axes 2 and 3"));
      return advance(t, v, out, {form::flat, v.s, {}});
    }
    if (op == "BatchNormalization") return batch_norm(seq, n, t, v);
    if (op == "Gemm" || op == "MatMul") return dense(seq, n, t, v);
    if (op == "Transpose") {
      only(n, {"perm"});
      const std::vector<std::int64_t> perm = ints(n, "perm", {});
      if (v.f == form::nhwc && perm == std::vector<std::int64_t>{0, 3, 1, 2}) return advance(t, v, out, {form::image, v.s, {}});
      if (v.f == form::image && perm == std::vector<std::int64_t>{0, 2, 3, 1}) return advance(t, v, out, {form::nhwc, v.s, {}});
      bad(cat(label(n), ": import reads Transpose only between NCHW and NHWC images"));
    }
    bad(cat(label(n), ": import reads this operator only on shapes and constants, not on the activation '", t, "'"));
  }

  void clip(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    only(n, {});
    const auto bound = [&](int i, const char* what) -> std::optional<float> {
      const constant* c = float_input(n, i, what);
      if (c == nullptr) return std::nullopt;
      if (c->f.size() != 1) bad(cat(label(n), ": the ", what, " must be a scalar"));
      return c->f[0];
    };
    const std::optional<float> lo = bound(1, "min"), hi = bound(2, "max");
    const bool relu = lo && *lo == 0.0f && (!hi || (std::isinf(*hi) && *hi > 0.0f));
    if (relu) make<nn::relu_layer>(seq, n, v.s);
    else if (lo && *lo == 0.0f && hi && *hi == 6.0f) make<nn::relu6_layer>(seq, n, v.s);
    else bad(cat(label(n), ": import reads Clip(0, 6) (relu6) and Clip(0) (relu)"));
    advance(t, v, n.output(0), v);
  }

  void flatten(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    const std::string& out = n.output(0);
    switch (v.f) {
      case form::image:
        make<nn::flatten_layer>(seq, n, v.s);
        // A 1x1 image has the same order in CHW and HWC.
        return advance(t, v, out, {v.s.h * v.s.w == 1 ? form::flat : form::chw, qnas::flat(v.s.size()), v.s});
      case form::nhwc:
        make<nn::flatten_layer>(seq, n, v.s);
        return advance(t, v, out, {form::flat, qnas::flat(v.s.size()), {}});
      case form::pooled: return advance(t, v, out, {form::flat, v.s, {}});
      default: return advance(t, v, out, v);
    }
  }

  void reshape(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    only(n, {"allowzero"});
    if (integer(n, "allowzero", 0) != 0) bad(cat(label(n), ": allowzero must be 0"));
    const std::vector<std::int64_t> s = shape_values(in(n, 1), n, 0);
    const auto f = static_cast<std::int64_t>(v.s.size());
    const auto is_batch = [&](std::int64_t x) { return x == batch || x == 0 || (static_batch_ && x == *static_batch_); };
    const bool ok = s.size() == 2 && ((is_batch(s[0]) && (s[1] == -1 || s[1] == f)) || (s[0] == -1 && s[1] == f));
    if (!ok) bad(cat(label(n), ": import reads Reshape only as a flatten to [N, ", f, "] (x.view(x.size(0), -1))"));
    flatten(seq, n, t, v);
  }

  /// The qnas padding of a window with ONNX `pads` [top, left, bottom, right] (or auto_pad), or a refusal.
  padding window_padding(const onnx::NodeProto& n, const tensor_shape& s, std::size_t k, std::size_t stride, bool ceil) const {
    const auto* ap = attr(n, "auto_pad", onnx::AttributeProto::STRING);
    const std::string auto_pad = ap != nullptr ? ap->s() : "NOTSET";
    std::vector<std::int64_t> pads = ints(n, "pads", {0, 0, 0, 0});
    if (auto_pad == "VALID") pads = {0, 0, 0, 0};
    else if (auto_pad == "SAME_UPPER") return padding::same;
    else if (auto_pad != "NOTSET") bad(cat(label(n), ": auto_pad ", auto_pad, " is not read (NOTSET, VALID, SAME_UPPER are)"));
    if (pads.size() != 4) bad(cat(label(n), ": pads must have 4 values"));
    for (const std::int64_t p : pads)
      if (p < 0 || p > 4096) bad(cat(label(n), ": pads must be in 0..4096"));
    const auto fits = [&](padding mode) {
      for (int axis = 0; axis < 2; ++axis) {
        const std::size_t len = axis == 0 ? s.h : s.w;
        const auto b = static_cast<std::size_t>(pads[static_cast<std::size_t>(axis)]);
        const auto e = static_cast<std::size_t>(pads[static_cast<std::size_t>(axis + 2)]);
        if (len + b + e < k) return false;
        const std::size_t span = len + b + e - k;
        const std::size_t outs = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
        if (b != qnas::conv_pad_before(len, k, stride, mode) || outs != qnas::conv_output_size(len, k, stride, mode)) return false;
      }
      return true;
    };
    if (fits(padding::valid)) return padding::valid;
    if (fits(padding::same)) return padding::same;
    bad(cat(label(n), ": pads [", pads[0], ", ", pads[1], ", ", pads[2], ", ", pads[3], "] on a ", s.h, "x", s.w,
            " input with a ", k, "x", k, " window and stride ", stride,
            " match neither qnas's valid padding nor its same padding (the extra row/column at the bottom/right)"));
  }

  std::size_t stride_of(const onnx::NodeProto& n) const {
    const std::vector<std::int64_t> s = ints(n, "strides", {1, 1});
    if (s.size() != 2 || s[0] != s[1] || s[0] < 1 || s[0] > 4096)
      bad(cat(label(n), ": strides must be two equal values in 1..4096"));
    return static_cast<std::size_t>(s[0]);
  }
  void unit_dilations(const onnx::NodeProto& n) const {
    for (const std::int64_t d : ints(n, "dilations", {1, 1}))
      if (d != 1) bad(cat(label(n), ": dilations must be 1"));
  }

  void conv(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    only(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    need(n, v, {form::image}, "an NCHW image");
    const constant* w = float_input(n, 1, "weight");
    if (w == nullptr) bad(cat(label(n), ": has no weight"));
    const constant* b = float_input(n, 2, "bias");
    if (w->dims.size() != 4 || w->dims[2] != w->dims[3] || w->dims[2] < 1)
      bad(cat(label(n), ": the weight must be [O, I, k, k] with a square kernel"));
    const auto o = static_cast<std::size_t>(w->dims[0]), i = static_cast<std::size_t>(w->dims[1]),
               k = static_cast<std::size_t>(w->dims[2]);
    const std::vector<std::int64_t> ks = ints(n, "kernel_shape", {w->dims[2], w->dims[3]});
    if (ks != std::vector<std::int64_t>{w->dims[2], w->dims[3]}) bad(cat(label(n), ": kernel_shape differs from the weight's"));
    unit_dilations(n);
    const std::size_t stride = stride_of(n);
    const std::int64_t group = integer(n, "group", 1);
    const std::size_t c = v.s.c;
    if (b != nullptr && (b->dims.size() != 1 || b->f.size() != o)) bad(cat(label(n), ": the bias must be [", o, "]"));
    const padding pad = window_padding(n, v.s, k, stride, false);
    const float* src = w->f.data();
    if (group == 1) {
      if (i != c) bad(cat(label(n), ": the weight reads ", i, " channels of an input with ", c));
      auto& l = make<nn::conv2d_layer>(seq, n, v.s, o, k, stride, pad, nn::layer_formats{}, b != nullptr);
      float* dst = l.weights().value.data();  // HWIO [k, k, c, o] from OIHW [o, c, k, k]
      for (std::size_t oo = 0; oo < o; ++oo)
        for (std::size_t ii = 0; ii < c; ++ii)
          for (std::size_t y = 0; y < k; ++y)
            for (std::size_t x = 0; x < k; ++x) dst[((y * k + x) * c + ii) * o + oo] = src[((oo * c + ii) * k + y) * k + x];
      if (b != nullptr) std::copy(b->f.begin(), b->f.end(), l.bias().value.begin());
      return advance(t, v, n.output(0), {form::image, l.output_shape(), {}});
    }
    if (group != static_cast<std::int64_t>(c) || i != 1 || o != c)
      bad(cat(label(n), ": group ", group, " with weight [", o, ", ", i, ", ", k, ", ", k, "] on ", c,
              " channels; qnas has one group (conv2d) or one filter per channel (depthwise_conv2d)"));
    auto& l = make<nn::depthwise_conv2d_layer>(seq, n, v.s, k, stride, pad, nn::layer_formats{}, b != nullptr);
    float* dst = l.weights().value.data();  // [k, k, c] from [c, 1, k, k]
    for (std::size_t cc = 0; cc < c; ++cc)
      for (std::size_t y = 0; y < k; ++y)
        for (std::size_t x = 0; x < k; ++x) dst[(y * k + x) * c + cc] = src[(cc * k + y) * k + x];
    if (b != nullptr) std::copy(b->f.begin(), b->f.end(), l.bias().value.begin());
    advance(t, v, n.output(0), {form::image, l.output_shape(), {}});
  }

  void pool(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    const bool max = n.op_type() == "MaxPool";
    if (max) only(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    else only(n, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
    need(n, v, {form::image}, "an NCHW image");
    const std::vector<std::int64_t> ks = ints(n, "kernel_shape", {});
    if (ks.size() != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > 4096)
      bad(cat(label(n), ": kernel_shape must be two equal values in 1..4096"));
    if (max) unit_dilations(n);
    if (integer(n, "storage_order", 0) != 0) bad(cat(label(n), ": storage_order must be 0"));
    const auto k = static_cast<std::size_t>(ks[0]);
    const std::size_t stride = stride_of(n);
    const padding pad = window_padding(n, v.s, k, stride, integer(n, "ceil_mode", 0) != 0);
    const auto padded = [&](std::size_t len) {  // whether same padding adds any row/column on this axis
      return (qnas::conv_output_size(len, k, stride, padding::same) - 1) * stride + k > len;
    };
    if (!max && pad == padding::same && integer(n, "count_include_pad", 0) != 0 && (padded(v.s.h) || padded(v.s.w)))
      bad(cat(label(n), ": count_include_pad = 1 with padding; qnas averages over the taps inside the image "
                        "(count_include_pad = 0)"));
    auto& l = make<nn::pool_layer>(seq, n, v.s, max ? nn::pool_layer::mode::max : nn::pool_layer::mode::average, k, stride, pad);
    advance(t, v, n.output(0), {form::image, l.output_shape(), {}});
  }

  void batch_norm(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    only(n, {"epsilon", "momentum", "training_mode", "spatial"});
    if (integer(n, "training_mode", 0) != 0) bad(cat(label(n), ": training_mode must be 0 (inference)"));
    if (n.output_size() > 1)
      for (int k = 1; k < n.output_size(); ++k)
        if (!n.output(k).empty()) bad(cat(label(n), ": import reads the inference form (one output)"));
    need(n, v, {form::image, form::flat, form::pooled}, "an NCHW image or a flat input in qnas's order");
    const std::size_t c = v.s.c;
    const constant* p[4];
    const char* names[4] = {"scale", "B", "mean", "var"};
    for (int k = 0; k < 4; ++k) {
      p[k] = float_input(n, k + 1, names[k]);
      if (p[k] == nullptr || p[k]->f.size() != c) bad(cat(label(n), ": ", names[k], " must be a float tensor of ", c, " values"));
    }
    const float eps = real(n, "epsilon", 1e-5f);
    if (!(eps >= 0.0f) || !std::isfinite(eps)) bad(cat(label(n), ": epsilon must be finite and >= 0"));
    auto& l = make<nn::batch_norm_layer>(seq, n, v.s, 0.9f, eps);
    std::copy(p[0]->f.begin(), p[0]->f.end(), l.gamma().value.begin());
    std::copy(p[1]->f.begin(), p[1]->f.end(), l.beta().value.begin());
    l.running_mean() = p[2]->f;
    l.running_var() = p[3]->f;
    advance(t, v, n.output(0), v);
  }

  /// Gemm, or MatMul (+ Add of a constant bias): a dense layer with [in, out] weights.
  void dense(nn::sequential& seq, const onnx::NodeProto& n, std::string& t, value& v) {
    const bool gemm = n.op_type() == "Gemm";
    if (gemm) only(n, {"alpha", "beta", "transA", "transB"});
    else only(n, {});
    need(n, v, {form::flat, form::chw, form::pooled}, "a flat input [N, F]");
    if (gemm && (integer(n, "transA", 0) != 0 || real(n, "alpha", 1.0f) != 1.0f))
      bad(cat(label(n), ": import reads Gemm with transA = 0 and alpha = 1"));
    const bool trans = gemm && integer(n, "transB", 0) != 0;
    const constant* w = float_input(n, 1, "weight");
    if (w == nullptr || w->dims.size() != 2) bad(cat(label(n), ": the weight must be a 2-D float tensor"));
    const auto rows = static_cast<std::size_t>(w->dims[trans ? 1 : 0]), units = static_cast<std::size_t>(w->dims[trans ? 0 : 1]);
    const std::size_t f = v.s.size();
    if (rows != f) bad(cat(label(n), ": the weight reads ", rows, " features of an input with ", f));
    const constant* b = gemm ? float_input(n, 2, "bias") : nullptr;
    if (b != nullptr && real(n, "beta", 1.0f) != 1.0f) bad(cat(label(n), ": import reads Gemm with beta = 1"));
    std::string out = n.output(0);
    const onnx::NodeProto* where = &n;
    if (!gemm) {  // MatMul followed by Add(bias) as PyTorch writes a Linear without Gemm
      const std::vector<int> c = consumers(out, -1);
      if (c.size() == 1 && node(c[0]).op_type() == "Add" && out != output_) {
        const onnx::NodeProto& a = node(c[0]);
        const std::string& other = in(a, 0) == out ? in(a, 1) : in(a, 0);
        if (constants_.contains(other)) {
          only(a, {});
          take(c[0]);
          b = float_input(a, in(a, 0) == out ? 1 : 0, "bias");
          out = a.output(0);
          where = &a;
        }
      }
    }
    if (b != nullptr && (b->f.size() != units || b->dims.size() > 2 || (b->dims.size() == 2 && b->dims[0] != 1)))
      bad(cat(label(*where), ": the bias must be [", units, "] or [1, ", units, "]"));
    auto& l = make<nn::dense_layer>(seq, n, v.s, units, nn::layer_formats{}, b != nullptr);
    float* dst = l.weights().value.data();
    const float* src = w->f.data();
    const tensor_shape& im = v.img;
    for (std::size_t r = 0; r < f; ++r) {
      std::size_t from = r;  // the file's row of qnas's row r
      if (v.f == form::chw) {
        const std::size_t ch = r % im.c, x = (r / im.c) % im.w, y = r / (im.c * im.w);
        from = (ch * im.h + y) * im.w + x;
      }
      for (std::size_t u = 0; u < units; ++u) dst[r * units + u] = trans ? src[u * f + from] : src[from * units + u];
    }
    if (b != nullptr) std::copy(b->f.begin(), b->f.end(), l.bias().value.begin());
    advance(t, v, out, {form::flat, qnas::flat(units), {}});
  }
};

}  // namespace detail::onnx_in

/// The network of the ONNX model serialized in `bytes` (named `name` in messages); see the top
/// of this header. Throws qnas::io_error "qnas::import_onnx('<name>'): ..." when the bytes are not
/// an ONNX model or a tensor is truncated or corrupt, and qnas::invalid_argument
/// "qnas::import_onnx('<name>'): node '<name>' (<op>): ..." for a model import does not read
/// (docs/onnx_import.md lists every refusal).
inline std::unique_ptr<nn::sequential> import_onnx_bytes(std::span<const char> bytes, const std::string& name,
                                                         const onnx_import_options& options = {}) {
  const std::string where = "qnas::import_onnx('" + name + "')";
  if (bytes.size() > options.max_file_bytes)
    throw io_error(where, detail::cat("the model has ", bytes.size(), " bytes, over the limit of ", options.max_file_bytes,
                                      " (onnx_import_options::max_file_bytes)"));
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw io_error(where, "the model is over 2 GiB, which protobuf cannot parse");
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw io_error(where, "not an ONNX model (the protobuf does not parse: truncated or corrupt)");
  if (!m.has_graph()) throw io_error(where, "the model has no graph");
  return detail::onnx_in::importer(m, where, options).run();
}

/// The network of the ONNX file `path` (see the top of this header): its size is checked
/// against options.max_file_bytes before it is read. Throws qnas::io_error naming the file when
/// it cannot be read, is too large, or is not a well-formed ONNX model, and qnas::invalid_argument
/// for a model import does not read, naming the operator and the node.
inline std::unique_ptr<nn::sequential> import_onnx(const std::filesystem::path& path, const onnx_import_options& options = {}) {
  const std::string where = "qnas::import_onnx('" + path.string() + "')";
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw io_error(where, "cannot read the file: " + ec.message());
  if (size > options.max_file_bytes)
    throw io_error(where, detail::cat("the file has ", size, " bytes, over the limit of ", options.max_file_bytes,
                                      " (onnx_import_options::max_file_bytes)"));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw io_error(where, "cannot open the file");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(f.gcount()) != size) throw io_error(where, "the file changed size while it was read");
  return import_onnx_bytes({bytes.data(), bytes.size()}, path.string(), options);
}

}  // namespace qnas
