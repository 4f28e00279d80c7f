// Public conformance kit for layers: checks that a layer (built-in or user-written) computes the gradients its backward claims, describes itself truthfully, is priced by the energy model and leaves and returns through export bit for bit. Use it in your tests: CHECK(qnas::testing::check_layer(make_my_layer)).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/horowitz_45nm.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/nn/export.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/nn/spec.hpp"
#include "qnas/testing/check_format.hpp"

namespace qnas::testing {

/// The checks check_layer runs, in the order it runs them.
enum class layer_check : std::uint8_t {
  description,    ///< describe() agrees with the layer: shapes, parameter count, MACs counted from the geometry
  shape,          ///< forward gives [n, output_shape()] for n = 1 and n > 1, training and inference; backward gives [n, input_shape()]
  energy,         ///< a one-layer network is priced by nn::describe_network + energy::price_model: finite, > 0 with MACs
  export_reload,  ///< nn::export_model then nn::load_model computes the same outputs bit for bit
  gradient        ///< backward against central differences, for the input and every parameter
};

inline constexpr std::array<layer_check, 5> all_layer_checks = {layer_check::description, layer_check::shape,
                                                                layer_check::energy, layer_check::export_reload,
                                                                layer_check::gradient};

constexpr const char* to_string(layer_check c) noexcept {
  switch (c) {
    case layer_check::description: return "description";
    case layer_check::shape: return "shape";
    case layer_check::energy: return "energy";
    case layer_check::export_reload: return "export_reload";
    case layer_check::gradient: return "gradient";
  }
  return "?";
}

struct layer_check_options {
  std::uint64_t seed = 12345;
  /// Batch size of the shape (besides 1), export and gradient checks.
  std::size_t batch = 3;
  /// Draw the parameters with layer::initialize(seed), then move every value by a small random
  /// amount, so biases, batch-norm shifts and scales are neither 0 nor 1 (a backward that forgot
  /// one of them would otherwise pass). Learned quantization steps are left alone. Set to false
  /// to check the values the layer already holds.
  bool initialize = true;
  /// Central-difference step, relative to max(1, |value|). An element that disagrees is tried
  /// again with step / 4 and step / 16 (a step may cross a kink downstream).
  double step = 1e-2;
  /// Gradient tolerance: |backward - difference| <= atol * scale + rtol * |difference| + noise,
  /// where scale is the root mean square of the tensor's gradient and noise bounds the float32
  /// rounding of the forward pass divided by the step.
  double atol = 1e-3;
  double rtol = 1e-2;
  /// At most this many elements of each tensor (input, each parameter) are compared; a larger
  /// tensor is sampled at random.
  std::size_t max_elements = 192;
  /// An element where the layer is not differentiable within the step (a ReLU or max-pool kink:
  /// the one-sided differences disagree and backward gives one of them) is not counted as a
  /// mismatch; more such elements than this fraction of a tensor fail the check.
  double max_kink_fraction = 0.25;
  /// Failure messages kept per check (the rest are counted).
  std::size_t max_failures = 8;
  /// The formats export_model may write and load_model read (float32 is always known): add the
  /// weight, bias and output formats of the layer under test.
  nn::format_registry formats{};
  /// The layer kinds export_model may write and load_model read: add a user layer's kind
  /// (nn::layer_registry::add) to check its export.
  nn::layer_registry layers = nn::layer_registry::builtin();
  /// How the energy check types the network's tensors.
  nn::bridge_options bridge{};
  /// Where the export check writes its files; empty: a fresh folder under the system's temporary
  /// folder, removed afterwards.
  std::filesystem::path export_dir{};
  /// Checks not run (reported as skipped).
  std::vector<layer_check> skip{};

  layer_check_options& skipping(layer_check c) {
    skip.push_back(c);
    return *this;
  }
  [[nodiscard]] bool skips(layer_check c) const { return std::find(skip.begin(), skip.end(), c) != skip.end(); }
};

/// The outcome of one check.
struct layer_check_result {
  layer_check check = layer_check::description;
  bool ran = false;               ///< false: skipped (layer_check_options::skip)
  std::size_t comparisons = 0;    ///< values and properties compared
  std::vector<std::string> failures;  ///< each names the layer and the check, and says by how much
  std::size_t unlisted_failures = 0;  ///< failures beyond layer_check_options::max_failures
  std::vector<std::string> notes;     ///< what the check did differently (quantizers replaced, kinks skipped)
  [[nodiscard]] bool passed() const noexcept { return failures.empty(); }
};

/// The outcome of check_layer: converts to true when every check that ran passed; streams one
/// line per check and the failures.
struct layer_check_report {
  std::string layer;  ///< "conv2d 4 3x3/2 same on [7,6,3]": describe()'s kind and config, and the input shape
  std::vector<layer_check_result> results;  ///< one per check, in the order of all_layer_checks

  explicit operator bool() const noexcept {
    return std::all_of(results.begin(), results.end(), [](const layer_check_result& r) { return r.passed(); });
  }
  [[nodiscard]] const layer_check_result& operator[](layer_check c) const {
    for (const auto& r : results)
      if (r.check == c) return r;
    throw invalid_argument("qnas::testing::layer_check_report", qnas::detail::cat("no result for check ", to_string(c)));
  }
  [[nodiscard]] bool passed(layer_check c) const { return (*this)[c].passed(); }
  [[nodiscard]] std::size_t failure_count() const noexcept {
    std::size_t n = 0;
    for (const auto& r : results) n += r.failures.size() + r.unlisted_failures;
    return n;
  }
  [[nodiscard]] std::string text() const {
    std::ostringstream os;
    os << *this;
    return os.str();
  }
  /// The throwing form: throws qnas::invalid_argument whose what() is the whole report when a
  /// check failed; returns *this otherwise. `check_layer(make).throw_if_failed();`
  const layer_check_report& throw_if_failed() const {
    if (!*this) throw invalid_argument("qnas::testing::check_layer", text());
    return *this;
  }

  friend std::ostream& operator<<(std::ostream& os, const layer_check_report& r) {
    std::size_t failed = 0;
    for (const auto& c : r.results) failed += c.passed() ? 0 : 1;
    os << r.layer << ": " << r.results.size() << " checks, " << failed << " failed";
    for (const auto& c : r.results) {
      os << "\n  " << to_string(c.check) << ": ";
      if (!c.ran) {
        os << "skipped";
        continue;
      }
      os << (c.passed() ? "passed" : "FAILED") << " (" << c.comparisons << " comparisons)";
      for (const auto& n : c.notes) os << "; " << n;
      for (const auto& f : c.failures) os << "\n    " << f;
      if (c.unlisted_failures > 0) os << "\n    ... and " << c.unlisted_failures << " more";
    }
    return os;
  }
};

namespace detail {

/// What a compile-time layer spec says about its input shape, compared with the layer it makes.
struct spec_facts {
  nn::tensor_shape input{}, output{};
  std::size_t params = 0, macs = 0;
};

/// Records the comparisons and failures of one check; every failure message starts with the
/// layer and the check.
class check_scope {
 public:
  check_scope(layer_check_result& r, const std::string& layer, std::size_t max) : r_(r), layer_(layer), max_(max) {}
  template <class... Ts>
  bool expect(bool ok, const Ts&... what) {
    ++r_.comparisons;
    if (!ok) fail(what...);
    return ok;
  }
  template <class... Ts>
  void fail(const Ts&... what) {
    if (r_.failures.size() < max_)
      r_.failures.push_back(qnas::detail::cat(layer_, ": ", to_string(r_.check), ": ", what...));
    else
      ++r_.unlisted_failures;
  }
  void count(std::size_t n) { r_.comparisons += n; }
  void note(std::string n) { r_.notes.push_back(std::move(n)); }

 private:
  layer_check_result& r_;
  const std::string& layer_;
  std::size_t max_;
};

inline std::string layer_name(const nn::layer_description& d) {
  std::string s = d.kind;
  if (!d.config.empty()) s += " " + d.config;
  return s + " on " + nn::to_string(d.input);
}

template <class Fn>
void for_each_layer(nn::layer& l, Fn&& fn) {
  fn(l);
  for (nn::layer* c : l.children()) for_each_layer(*c, fn);
}

inline std::string shape_text(const std::vector<std::size_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}
template <class Shape>
std::vector<std::size_t> dims(const Shape& s) {
  return std::vector<std::size_t>(s.begin(), s.end());
}

/// The multi-index of flat element i of a row-major tensor of shape s: "[1,0,2]".
inline std::string index_text(std::size_t i, const std::vector<std::size_t>& s) {
  std::vector<std::size_t> at(s.size());
  for (std::size_t k = s.size(); k-- > 0;) {
    at[k] = s[k] == 0 ? 0 : i % s[k];
    i = s[k] == 0 ? i : i / s[k];
  }
  return shape_text(at);
}

inline xt::xarray<float> random_batch(std::size_t n, const nn::tensor_shape& s, std::mt19937_64& e) {
  xt::xarray<float> x = xt::empty<float>(nn::detail::batch_shape(n, s));
  for (auto& v : x) v = static_cast<float>(qnas::detail::uniform(e, -1.0, 1.0));
  return x;
}

inline bool all_finite(const xt::xarray<float>& a) {
  return std::all_of(a.begin(), a.end(), [](float v) { return std::isfinite(v); });
}

/// The learned quantization steps of lsq weight formats: left alone by the perturbation (a step
/// must stay > 0; 0 means "set from the weights at the next forward pass").
inline std::vector<const nn::parameter*> step_parameters(nn::layer& root) {
  std::vector<const nn::parameter*> s;
  for_each_layer(root, [&](nn::layer& l) {
    if (auto* w = dynamic_cast<nn::weighted_layer*>(&l)) s.push_back(&w->weight_steps());
  });
  return s;
}

inline void perturb_parameters(nn::layer& root, std::mt19937_64& e) {
  const auto steps = step_parameters(root);
  for (nn::parameter* p : root.parameters()) {
    if (std::find(steps.begin(), steps.end(), p) != steps.end() || p->value.size() == 0) continue;
    double ss = 0;
    for (float v : p->value) ss += static_cast<double>(v) * v;
    const double rms = std::sqrt(ss / static_cast<double>(p->value.size()));
    const double amount = 0.25 * (rms + 0.25);
    for (auto& v : p->value) v = static_cast<float>(v + qnas::detail::uniform(e, -amount, amount));
  }
}

// ---------------------------------------------------------------------------------------------
// description

inline bool is_mac_op(nn::layer_op op) {
  return op == nn::layer_op::conv2d || op == nn::layer_op::depthwise_conv2d || op == nn::layer_op::dense;
}

/// The geometry rules of one layer's description (see nn::layer_op), and the same for its
/// children. `where` is empty for the layer under test, "child i (<its name>)" below it.
inline void check_description_of(check_scope& s, nn::layer& l, const std::string& where) {
  using nn::layer_op;
  const nn::layer_description d = l.describe();
  const std::string pre = where.empty() ? std::string() : where + ": ";
  s.expect(d.kind == l.kind(), pre, "describe().kind is '", d.kind, "' but kind() is '", l.kind(), "'");
  s.expect(d.input == l.input_shape(), pre, "describe().input is ", d.input, " but input_shape() is ", l.input_shape());
  s.expect(d.output == l.output_shape(), pre, "describe().output is ", d.output, " but output_shape() is ",
           l.output_shape());
  s.expect(d.output_format_name == l.output_quantizer().name(), pre, "describe().output_format_name is '",
           d.output_format_name, "' but the output quantizer is '", l.output_quantizer().name(), "'");
  std::size_t counted = 0;
  std::string sizes;
  for (nn::parameter* p : l.parameters()) {
    counted += p->value.size();
    sizes += qnas::detail::cat(sizes.empty() ? "" : " + ", p->name, " ", p->value.size());
  }
  s.expect(d.params == counted, pre, "describe().params is ", d.params, " but parameters() hold ", counted,
           sizes.empty() ? "" : " (", sizes, sizes.empty() ? "" : ")");
  s.expect(d.step_params <= d.params, pre, "describe().step_params (", d.step_params, ") exceeds params (", d.params, ")");
  if (auto* w = dynamic_cast<nn::weighted_layer*>(&l))
    s.expect(d.step_params == w->weight_steps().value.size(), pre, "describe().step_params is ", d.step_params,
             " but the weight quantizer keeps ", w->weight_steps().value.size(), " learned steps");

  const nn::tensor_shape& i = d.input;
  const nn::tensor_shape& o = d.output;
  const std::size_t weights = d.params - std::min(d.params, d.step_params);
  // MACs counted from the geometry, and the weights (+ bias) a MAC layer of that geometry holds.
  auto expect_macs = [&](std::size_t direct, const char* rule) {
    s.expect(d.macs == direct, pre, "describe().macs is ", d.macs, " but ", rule, " gives ", direct,
             d.macs > direct ? qnas::detail::cat(" (", d.macs - direct, " too many)")
                             : qnas::detail::cat(" (", direct - d.macs, " too few)"));
  };
  auto expect_weights = [&](std::size_t w, std::size_t bias, const char* rule) {
    s.expect(weights == w || weights == w + bias, pre, "describe().params (without ", d.step_params,
             " learned steps) is ", weights, " but ", rule, " holds ", w, " weights (+ ", bias, " biases)");
  };
  auto expect_window = [&]() -> bool {
    const nn::window_desc& g = d.window;
    if (!s.expect(g.kernel >= 1 && g.stride >= 1, pre, nn::to_string(d.op), " needs a window with kernel and stride >= 1, "
                  "describe().window has kernel ", g.kernel, ", stride ", g.stride))
      return false;
    const std::size_t oh = nn::conv_output_size(i.h, g.kernel, g.stride, g.pad);
    const std::size_t ow = nn::conv_output_size(i.w, g.kernel, g.stride, g.pad);
    return s.expect(i.is_image() && o.is_image() && o.h == oh && o.w == ow, pre, "a ", g.kernel, "x", g.kernel, "/",
                    g.stride, " ", nn::to_string(g.pad), " window on ", i, " gives ", oh, "x", ow,
                    " outputs, but describe().output is ", o);
  };
  auto expect_no_macs = [&] {
    s.expect(d.macs == 0, pre, "describe().macs is ", d.macs, " but a ", nn::to_string(d.op),
             " layer performs no multiply-accumulates (the energy model prices it without them)");
  };

  switch (d.op) {
    case layer_op::conv2d: {
      const std::size_t groups = d.window.groups;
      if (!s.expect(groups >= 1 && i.c % groups == 0 && o.c % groups == 0, pre, "describe().window.groups is ", groups,
                    ", which must be >= 1 and divide ", i.c, " input and ", o.c, " output channels"))
        break;
      if (expect_window())
        expect_macs(o.h * o.w * d.window.kernel * d.window.kernel * (i.c / groups) * o.c,
                    "out_h*out_w*kernel^2*(in_c/groups)*filters");
      expect_weights(d.window.kernel * d.window.kernel * (i.c / groups) * o.c, o.c,
                     "a conv2d kernel^2*(in_c/groups)*filters");
      break;
    }
    case layer_op::depthwise_conv2d:
      s.expect(o.c == i.c, pre, "a depthwise_conv2d keeps the channels, but describe() maps ", i.c, " to ", o.c);
      if (expect_window()) expect_macs(o.h * o.w * d.window.kernel * d.window.kernel * i.c, "out_h*out_w*kernel^2*channels");
      expect_weights(d.window.kernel * d.window.kernel * i.c, i.c, "a depthwise_conv2d kernel^2*channels");
      break;
    case layer_op::dense:
      s.expect(o.is_flat(), pre, "a dense layer gives a flat output, describe().output is ", o);
      expect_macs(i.size() * o.c, "inputs*units");
      expect_weights(i.size() * o.c, o.c, "a dense layer inputs*units");
      break;
    case layer_op::max_pool:
    case layer_op::avg_pool:
      if (expect_window())
        s.expect(o.c == i.c, pre, "a pool keeps the channels, but describe() maps ", i.c, " to ", o.c);
      expect_no_macs();
      break;
    case layer_op::global_avg_pool:
      s.expect(i.is_image() && o == nn::flat(i.c), pre, "a global_avg_pool maps [h,w,c] to [c], describe() maps ", i,
               " to ", o);
      expect_no_macs();
      break;
    case layer_op::activation:
      s.expect(o == i, pre, "an element-wise activation keeps the shape, describe() maps ", i, " to ", o);
      expect_no_macs();
      break;
    case layer_op::flatten:
      s.expect(o == nn::flat(i.size()), pre, "flatten maps ", i, " to ", nn::flat(i.size()), ", describe().output is ", o);
      expect_no_macs();
      break;
    case layer_op::batch_norm:
      s.expect(o == i, pre, "batch_norm keeps the shape, describe() maps ", i, " to ", o);
      expect_macs(i.size(), "one multiply-add per element");
      break;
    case layer_op::residual:
    case layer_op::sequential: {
      const auto children = l.children();
      std::size_t params = 0, macs = 0;
      nn::tensor_shape flow = i;
      for (std::size_t k = 0; k < children.size(); ++k) {
        const nn::layer_description c = children[k]->describe();
        params += c.params;
        macs += c.macs;
        s.expect(c.input == flow, pre, "child ", k, " (", c.kind, ") reads ", c.input, " but the block gives ", flow, " there");
        flow = c.output;
      }
      if (d.op == layer_op::residual)
        s.expect(o == i && flow == i, pre, "a residual block maps its input to itself, describe() maps ", i, " to ", o,
                 " and its body gives ", flow);
      else
        s.expect(o == flow, pre, "a sequential's output is its last layer's, ", flow, ", but describe().output is ", o);
      s.expect(d.params == params, pre, "describe().params is ", d.params, " but its layers hold ", params);
      s.expect(d.macs == macs, pre, "describe().macs is ", d.macs, " but its layers' MACs add up to ", macs);
      break;
    }
    case layer_op::unpriced:
      s.note(qnas::detail::cat(where.empty() ? "" : where + ": ",
                               "op is unpriced: no rule to count its MACs from the geometry"));
      break;
  }
  const auto children = l.children();
  for (std::size_t k = 0; k < children.size(); ++k)
    check_description_of(s, *children[k],
                         qnas::detail::cat(where.empty() ? "" : where + " > ", "child ", k, " (",
                                           layer_name(children[k]->describe()), ")"));
}

inline void check_description(check_scope& s, nn::layer& l, const spec_facts* spec) {
  check_description_of(s, l, "");
  if (spec == nullptr) return;
  const nn::layer_description d = l.describe();
  s.expect(spec->output == l.output_shape(), "the spec's output_shape(", spec->input, ") is ", spec->output,
           " but the layer it makes gives ", l.output_shape());
  s.expect(spec->params == d.params, "the spec's params(", spec->input, ") is ", spec->params,
           " but the layer it makes describes ", d.params);
  s.expect(spec->macs == d.macs, "the spec's macs(", spec->input, ") is ", spec->macs,
           " but the layer it makes describes ", d.macs);
}

// ---------------------------------------------------------------------------------------------
// shape

inline void check_shapes(check_scope& s, nn::layer& l, const layer_check_options& opt, std::mt19937_64& e) {
  for (const std::size_t n : {std::size_t{1}, opt.batch}) {
    for (const bool training : {false, true}) {
      const xt::xarray<float> x = random_batch(n, l.input_shape(), e);
      const auto& y = l.forward(x, training);
      const auto want = nn::detail::batch_shape(n, l.output_shape());
      const char* mode = training ? "training" : "inference";
      if (!s.expect(dims(y.shape()) == want, "forward (", mode, ") on a batch of ", n, " gives ", shape_text(dims(y.shape())),
                    " but output_shape() ", l.output_shape(), " says ", shape_text(want)))
        continue;
      s.expect(all_finite(y), "forward (", mode, ") on a batch of ", n, " inputs in [-1, 1] gives a value that is not finite");
      if (!training) continue;
      xt::xarray<float> dy = random_batch(n, l.output_shape(), e);
      const auto& dx = l.backward(dy, true);
      s.expect(dims(dx.shape()) == dims(x.shape()), "backward on a batch of ", n, " gives an input gradient of shape ",
               shape_text(dims(dx.shape())), ", the input is ", shape_text(dims(x.shape())));
      for (nn::parameter* p : l.parameters())
        s.expect(dims(p->grad.shape()) == dims(p->value.shape()), "parameter ", p->name, " has a gradient of shape ",
                 shape_text(dims(p->grad.shape())), " but values of shape ", shape_text(dims(p->value.shape())));
    }
  }
  for (nn::parameter* p : l.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

// ---------------------------------------------------------------------------------------------
// energy

inline void check_energy(check_scope& s, nn::sequential& net, nn::layer& l, const layer_check_options& opt) {
  energy::network_desc desc;
  try {
    desc = nn::describe_network(net, opt.bridge);
  } catch (const std::exception& ex) {
    s.fail("cannot be priced: nn::describe_network refused a network holding only this layer: ", ex.what());
    return;
  }
  const energy::model_energy m = energy::price_model<energy::horowitz_45nm>(desc);
  s.expect(std::isfinite(m.total_pj) && m.total_pj >= 0 && std::isfinite(m.all_pj) && m.all_pj >= 0,
           "the energy model prices it at ", m.total_pj, " pJ (all components: ", m.all_pj,
           " pJ); a price must be finite and >= 0");
  std::size_t mac_layer_macs = 0;
  for_each_layer(l, [&](nn::layer& c) {
    const nn::layer_description d = c.describe();
    if (is_mac_op(d.op)) mac_layer_macs += d.macs;
  });
  s.expect(m.macs >= 0 && static_cast<std::size_t>(m.macs) == mac_layer_macs, "the energy model counts ", m.macs,
           " MACs, its conv2d/depthwise_conv2d/dense descriptions ", mac_layer_macs);
  if (mac_layer_macs > 0)
    s.expect(m.total_pj > 0 && m.op > 0, "a layer with ", mac_layer_macs, " MACs is priced at ", m.total_pj,
             " pJ (operations: ", m.op, " pJ); it must cost more than nothing");
}

// ---------------------------------------------------------------------------------------------
// export

/// A scratch folder removed when the check ends.
struct scratch_dir {
  std::filesystem::path path;
  bool owned = false;
  explicit scratch_dir(const std::filesystem::path& given, std::uint64_t seed) {
    if (!given.empty()) {
      path = given;
      std::filesystem::create_directories(path);
      return;
    }
    static std::uint64_t counter = 0;
    const auto tick = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::uint64_t id = qnas::detail::mix_seed(seed ^ tick, ++counter);
    path = std::filesystem::temp_directory_path() / ("qnas_check_layer_" + std::to_string(id));
    std::filesystem::create_directories(path);
    owned = true;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (owned) std::filesystem::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

inline void check_export(check_scope& s, nn::sequential& net, const layer_check_options& opt, std::mt19937_64& e) {
  scratch_dir dir(opt.export_dir, opt.seed);
  std::string stem = net[0].kind();
  for (char& c : stem)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  const std::filesystem::path manifest = dir.path / (stem + ".json");
  try {
    nn::export_model(net, manifest, opt.formats, opt.layers);
  } catch (const std::exception& ex) {
    s.fail("not exportable: export_model refused a network holding only this layer: ", ex.what());
    return;
  }
  std::unique_ptr<nn::sequential> back;
  try {
    back = nn::load_model(manifest, opt.formats, opt.layers);
  } catch (const std::exception& ex) {
    s.fail("load_model could not read back what export_model wrote: ", ex.what());
    return;
  }
  const auto rows = nn::describe_layers(net);
  const auto loaded = nn::describe_layers(*back);
  if (s.expect(rows.size() == loaded.size(), "the reloaded model describes ", loaded.size(), " layers, the exported one ",
               rows.size())) {
    for (std::size_t k = 0; k < rows.size(); ++k) {
      const nn::layer_description& a = rows[k];
      const nn::layer_description& b = loaded[k];
      const bool same = a.kind == b.kind && a.op == b.op && a.window == b.window && a.input == b.input &&
                        a.output == b.output && a.params == b.params && a.macs == b.macs &&
                        a.weight_format_name == b.weight_format_name && a.output_format_name == b.output_format_name;
      s.expect(same, "row ", k, " of the reloaded model describes itself as ", layer_name(b), " (", b.params,
               " params, ", b.macs, " MACs, weights ", b.weight_format_name, ", output ", b.output_format_name,
               "), the exported one as ", layer_name(a), " (", a.params, " params, ", a.macs, " MACs, weights ",
               a.weight_format_name, ", output ", a.output_format_name, ")");
    }
  }
  const xt::xarray<float> x = random_batch(opt.batch, net.input_shape(), e);
  const xt::xarray<float> want = net.forward(x, false);
  const xt::xarray<float>& got = back->forward(x, false);
  if (!s.expect(dims(got.shape()) == dims(want.shape()), "the reloaded model gives outputs of shape ",
                shape_text(dims(got.shape())), ", the exported one ", shape_text(dims(want.shape()))))
    return;
  std::size_t differ = 0, first = 0;
  for (std::size_t k = 0; k < want.size(); ++k)
    if (!identical_bits(want.data()[k], got.data()[k]) && differ++ == 0) first = k;
  s.count(want.size());
  if (differ > 0)
    s.fail("the reloaded model's output differs from the exported one's at ", differ, " of ", want.size(),
           " elements; first at ", index_text(first, dims(want.shape())), ": exported ", want.data()[first], ", reloaded ",
           got.data()[first]);
}

// ---------------------------------------------------------------------------------------------
// gradient

/// Replaces every quantizer the checker can reach (each layer's output quantizer, the weight and
/// bias quantizers of weighted layers) by float32: a straight-through gradient is not the
/// derivative of the quantized forward pass, so only the float layer has a gradient to compare.
inline std::size_t strip_quantizers(nn::layer& root) {
  std::size_t n = 0;
  for_each_layer(root, [&](nn::layer& l) {
    if (!l.output_quantizer().is_identity()) {
      l.set_output_quantizer(quantizer{});
      ++n;
    }
    if (auto* w = dynamic_cast<nn::weighted_layer*>(&l)) {
      if (!w->weight_quantizer().is_identity()) {
        w->set_weight_quantizer(quantizer{});
        ++n;
      }
      if (!w->bias_quantizer().is_identity()) {
        w->set_bias_quantizer(quantizer{});
        ++n;
      }
    }
  });
  return n;
}

inline double rms_of(const std::vector<double>& v) {
  double ss = 0;
  for (double a : v) ss += a * a;
  return v.empty() ? 0.0 : std::sqrt(ss / static_cast<double>(v.size()));
}

/// Up to `k` distinct indices below n, in increasing order (all of them when n <= k).
inline std::vector<std::size_t> sample_indices(std::size_t n, std::size_t k, std::mt19937_64& e) {
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = i;
  if (n <= k) return all;
  for (std::size_t i = 0; i < k; ++i) std::swap(all[i], all[i + qnas::detail::uniform_below(e, n - i)]);
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

class gradient_checker {
 public:
  gradient_checker(check_scope& s, nn::layer& l, const layer_check_options& opt, std::mt19937_64& e)
      : s_(s), l_(l), opt_(opt), e_(e) {}

  void run() {
    if (const std::size_t n = strip_quantizers(l_); n > 0)
      s_.note(qnas::detail::cat(n, " quantizer(s) replaced by float32 (a straight-through gradient is not a derivative)"));
    x_ = random_batch(opt_.batch, l_.input_shape(), e_);
    const auto& y0 = l_.forward(x_, true);
    r_ = random_batch(opt_.batch, l_.output_shape(), e_);
    if (!s_.expect(dims(y0.shape()) == dims(r_.shape()), "forward gives ", shape_text(dims(y0.shape())), ", not [n, ",
                   nn::to_string(l_.output_shape()).substr(1), " (see the shape check)"))
      return;
    params_ = l_.parameters();
    zero_grads();
    base_ = loss();
    const xt::xarray<float> dx = l_.backward(r_, true);
    if (!s_.expect(dims(dx.shape()) == dims(x_.shape()), "backward gives an input gradient of shape ",
                   shape_text(dims(dx.shape())), ", the input is ", shape_text(dims(x_.shape()))))
      return;
    std::vector<xt::xarray<float>> grads;
    for (nn::parameter* p : params_) grads.push_back(p->grad);

    // backward(dy, false) accumulates the same parameter gradients, and a second backward adds
    // to them rather than replacing them.
    zero_grads();
    (void)loss();
    (void)l_.backward(r_, false);
    compare_grads(grads, 1.0, "backward(dy, need_input_grad = false) gives other parameter gradients than backward(dy, true)");
    (void)loss();
    (void)l_.backward(r_, true);
    compare_grads(grads, 2.0, "a second backward without zeroing must add to the gradient (optimizers rely on "
                              "accumulation), but the sum is not twice the gradient");
    zero_grads();

    check_tensor("the input gradient (d loss / d x)", x_, dx);
    for (std::size_t k = 0; k < params_.size(); ++k) check_tensor(params_[k]->name, params_[k]->value, grads[k]);
    if (kinks_ > 0)
      s_.note(qnas::detail::cat(kinks_, " element(s) where the layer is not differentiable within the step (kinks) not compared"));
  }

 private:
  void zero_grads() {
    for (nn::parameter* p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  }
  /// L = sum(forward(x) * r), accumulated in double.
  double loss() {
    const auto& y = l_.forward(x_, true);
    double sum = 0, mag = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double t = static_cast<double>(y.data()[i]) * r_.data()[i];
      sum += t;
      mag += std::fabs(t);
    }
    magnitude_ = mag;
    return sum;
  }

  void compare_grads(const std::vector<xt::xarray<float>>& g, double factor, const char* what) {
    for (std::size_t k = 0; k < params_.size(); ++k) {
      const xt::xarray<float>& now = params_[k]->grad;
      if (now.size() != g[k].size()) {
        s_.fail(params_[k]->name, ": ", what, ": the gradient changed size from ", g[k].size(), " to ", now.size());
        continue;
      }
      double ss = 0;
      for (float v : g[k]) ss += static_cast<double>(v) * v;
      const double scale = g[k].size() ? std::sqrt(ss / static_cast<double>(g[k].size())) : 0.0;
      std::size_t bad = 0, worst = 0;
      double worst_err = -1;
      for (std::size_t i = 0; i < now.size(); ++i) {
        const double want = factor * g[k].data()[i];
        const double err = std::fabs(now.data()[i] - want);
        const double tol = 1e-5 * scale + 1e-4 * std::fabs(want) + 1e-30;
        if (!(err <= tol)) {
          ++bad;
          if (err > worst_err || std::isnan(err)) worst_err = err, worst = i;
        }
      }
      s_.count(now.size());
      if (bad > 0)
        s_.fail(params_[k]->name, ": ", what, ": ", bad, " of ", now.size(), " elements; worst at ",
                index_text(worst, dims(now.shape())), ": ", now.data()[worst], " where ", factor * g[k].data()[worst],
                " was expected");
    }
  }

  /// One central difference at `values[i]` with step h (relative to max(1, |value|)).
  struct difference {
    double central = 0, left = 0, right = 0, noise = 0, step = 0;
  };
  difference differentiate(float& v, double step) {
    const float keep = v;
    const double h = step * std::max(1.0, std::fabs(static_cast<double>(keep)));
    const float up = static_cast<float>(keep + h), down = static_cast<float>(keep - h);
    const double hu = static_cast<double>(up) - keep, hd = keep - static_cast<double>(down);
    v = up;
    const double lu = loss();
    const double mag = magnitude_;
    v = down;
    const double ld = loss();
    v = keep;
    difference d;
    d.central = (lu - ld) / (hu + hd);
    d.left = (base_ - ld) / hd;
    d.right = (lu - base_) / hu;
    // float32 rounding of each output term, through the difference quotient
    d.noise = 16.0 * std::numeric_limits<float>::epsilon() * std::max(mag, magnitude_) / (hu + hd);
    d.step = step;
    return d;
  }

  /// Compares `analytic` (what backward gave) with central differences of the loss in each
  /// (sampled) element of `values`. An element that disagrees is tried again with the step
  /// divided by 4 and by 16: in a composite layer (batch norm feeding ReLUs and pools) a step
  /// easily crosses a kink somewhere downstream, and a smaller one steps past it. A backward
  /// that is wrong disagrees at every step.
  void check_tensor(const std::string& name, xt::xarray<float>& values, const xt::xarray<float>& analytic) {
    if (analytic.size() != values.size()) {
      s_.fail(name, ": backward gives ", analytic.size(), " gradient elements for ", values.size(), " values");
      return;
    }
    if (values.size() == 0) return;
    const auto idx = sample_indices(values.size(), opt_.max_elements, e_);
    std::vector<double> as;
    for (const std::size_t i : idx) as.push_back(analytic.data()[i]);
    const double scale = rms_of(as);
    auto tolerance = [&](const difference& d) { return opt_.atol * scale + opt_.rtol * std::fabs(d.central) + d.noise; };
    std::size_t bad = 0, kinks = 0, worst = 0;
    difference worst_d;
    double worst_ratio = -1, worst_a = 0;
    for (const std::size_t i : idx) {
      const double a = analytic.data()[i];
      difference first, d;
      bool ok = false;
      for (int level = 0; level < 3 && !ok; ++level) {
        d = differentiate(values.data()[i], opt_.step / static_cast<double>(1 << (2 * level)));
        if (level == 0) first = d;
        ok = std::fabs(a - d.central) <= tolerance(d);
      }
      if (ok) continue;
      // Not differentiable within even the smallest step: a kink where backward gives one of
      // the one-sided slopes.
      const double tol = tolerance(d);
      if (std::fabs(d.right - d.left) > tol && a >= std::min(d.left, d.right) - tol && a <= std::max(d.left, d.right) + tol) {
        ++kinks;
        continue;
      }
      ++bad;
      const double err = std::fabs(a - first.central);
      const double ratio = std::isnan(err) ? std::numeric_limits<double>::infinity() : err / tolerance(first);
      if (ratio > worst_ratio) worst_ratio = ratio, worst = i, worst_d = first, worst_a = a;
    }
    (void)loss();  // leave the layer's buffers as for the unperturbed values
    s_.count(idx.size());
    kinks_ += kinks;
    if (bad > 0) {
      const double err = std::fabs(worst_a - worst_d.central);
      s_.fail(name, ": ", bad, " of ", idx.size(), " compared elements disagree with central differences (steps ",
              opt_.step, " to ", opt_.step / 16, "); worst at ", index_text(worst, dims(values.shape())),
              ": backward gives ", worst_a, ", the central difference ", worst_d.central, " (step ", worst_d.step,
              "; abs error ", err, ", rel error ", err / std::max(std::fabs(worst_d.central), 1e-30), ", tolerance ",
              tolerance(worst_d), ")");
    }
    if (kinks > 2 && static_cast<double>(kinks) > opt_.max_kink_fraction * static_cast<double>(idx.size()))
      s_.fail(name, ": not differentiable within the step at ", kinks, " of ", idx.size(),
              " compared elements (more than max_kink_fraction ", opt_.max_kink_fraction,
              "): the one-sided differences disagree there; use a smaller step or inputs away from the kinks");
  }

  check_scope& s_;
  nn::layer& l_;
  const layer_check_options& opt_;
  std::mt19937_64& e_;
  xt::xarray<float> x_, r_;
  std::vector<nn::parameter*> params_;
  double base_ = 0, magnitude_ = 0;
  std::size_t kinks_ = 0;
};

inline void check_options(const layer_check_options& o) {
  constexpr const char* where = "qnas::testing::check_layer";
  if (o.batch < 2)
    throw invalid_argument(where, qnas::detail::cat("layer_check_options::batch is ", o.batch,
                                                    "; it must be >= 2 (batch size 1 is checked as well)"));
  if (!(o.step > 0) || !(o.step < 1))
    throw invalid_argument(where, qnas::detail::cat("layer_check_options::step is ", o.step, "; it must lie in (0, 1)"));
  if (!(o.atol >= 0) || !(o.rtol >= 0))
    throw invalid_argument(where, qnas::detail::cat("layer_check_options::atol (", o.atol, ") and rtol (", o.rtol,
                                                    ") must be >= 0"));
  if (o.max_elements == 0) throw invalid_argument(where, "layer_check_options::max_elements must be > 0");
  if (!(o.max_kink_fraction >= 0 && o.max_kink_fraction <= 1))
    throw invalid_argument(where, qnas::detail::cat("layer_check_options::max_kink_fraction is ", o.max_kink_fraction,
                                                    "; it must lie in [0, 1]"));
}

inline layer_check_report run_checks(std::unique_ptr<nn::layer> l, const layer_check_options& opt, const spec_facts* spec) {
  if (!l) throw invalid_argument("qnas::testing::check_layer", "the layer is null");
  check_options(opt);
  layer_check_report rep;
  for (layer_check c : all_layer_checks) {
    layer_check_result r;
    r.check = c;
    rep.results.push_back(std::move(r));
  }
  auto result = [&](layer_check c) -> layer_check_result& {
    for (auto& r : rep.results)
      if (r.check == c) return r;
    return rep.results.front();
  };
  try {
    rep.layer = layer_name(l->describe());
  } catch (const std::exception& ex) {
    rep.layer = l->kind() + " on " + nn::to_string(l->input_shape());
    check_scope(result(layer_check::description), rep.layer, opt.max_failures).fail("describe() threw: ", ex.what());
  }

  std::mt19937_64 e(opt.seed);
  quantizer::engine_type qe(qnas::detail::mix_seed(opt.seed, 1));
  auto net = std::make_unique<nn::sequential>(l->input_shape());
  nn::layer& layer = net->add(std::move(l));
  net->set_engine(&qe);
  if (opt.initialize) {
    layer.initialize(e);
    perturb_parameters(layer, e);
  }

  auto run = [&](layer_check c, auto&& body) {
    layer_check_result& r = result(c);
    if (opt.skips(c)) return;
    r.ran = true;
    check_scope s(r, rep.layer, opt.max_failures);
    try {
      body(s);
    } catch (const std::exception& ex) {
      s.fail("threw: ", ex.what());
    }
  };
  run(layer_check::description, [&](check_scope& s) { check_description(s, layer, spec); });
  run(layer_check::shape, [&](check_scope& s) { check_shapes(s, layer, opt, e); });
  run(layer_check::energy, [&](check_scope& s) { check_energy(s, *net, layer, opt); });
  run(layer_check::export_reload, [&](check_scope& s) { check_export(s, *net, opt, e); });
  // Last: it replaces the quantizers by float32.
  run(layer_check::gradient, [&](check_scope& s) { gradient_checker(s, layer, opt, e).run(); });
  return rep;
}

}  // namespace detail

/// Checks a run-time layer (check_layer takes it over: the export check places it in a network):
///   description    describe() agrees with the layer (kind, shapes, output format, params = the
///                  sizes of parameters()), MACs and weight counts equal a direct count from the
///                  geometry of its op (conv2d, depthwise_conv2d, dense, batch_norm; 0 for pools,
///                  activations, flatten), the output shape follows from the window, composites
///                  add up their children, and every child obeys the same rules;
///   shape          forward gives [n, output_shape()] of finite values for n = 1 and n = batch,
///                  in training and inference; backward gives [n, input_shape()] and parameter
///                  gradients shaped like their values;
///   energy         nn::describe_network + energy::price_model<horowitz_45nm> price a network of
///                  this one layer at a finite price, > 0 when it has MACs, and count the MACs
///                  its descriptions do;
///   export_reload  nn::export_model + nn::load_model (with options.formats) give a layer that
///                  describes itself the same and computes the same inference outputs bit for bit;
///   gradient       backward's input and parameter gradients against central differences of
///                  L = sum(forward(x) * r) (accumulated in double) on random inputs in [-1, 1],
///                  training mode (steps refined where a kink is crossed, see options.step);
///                  backward(dy, false) gives the same parameter gradients and a
///                  second backward adds to them. Quantizers are replaced by float32 first: a
///                  straight-through gradient is not the derivative of the quantized forward.
/// Throws qnas::invalid_argument for a null layer or bad options; a failing check is reported,
/// never thrown (see layer_check_report::throw_if_failed).
inline layer_check_report check_layer(std::unique_ptr<nn::layer> l, const layer_check_options& opt = {}) {
  return detail::run_checks(std::move(l), opt, nullptr);
}

/// Checks the layer `make()` builds: `check_layer([] { return std::make_unique<my_layer>(nn::image(6, 6, 3), 4); })`.
template <class Make>
  requires(!std::convertible_to<Make, std::unique_ptr<nn::layer>>)
layer_check_report check_layer(Make&& make, const layer_check_options& opt = {}) {
  static_assert(std::invocable<Make&>,
                "qnas::testing::check_layer(make, options): make must be callable with no arguments and return a "
                "std::unique_ptr to an nn::layer (or pass the std::unique_ptr itself)");
  using made = std::invoke_result_t<Make&>;
  static_assert(std::convertible_to<made, std::unique_ptr<nn::layer>>,
                "qnas::testing::check_layer(make, options): make() must return a std::unique_ptr to a class derived "
                "from qnas::nn::layer");
  return detail::run_checks(std::unique_ptr<nn::layer>(make()), opt, nullptr);
}

/// Checks a compile-time layer spec L on input shape In: L::check<0, In>() must hold (a
/// static_assert otherwise), and besides check_layer(L::make(In)) the spec's output_shape,
/// params and macs must equal what the layer it makes describes.
/// `check_layer<nn::conv2d<4, 3, 2>, nn::image(7, 6, 3)>()`.
template <class L, nn::tensor_shape In>
layer_check_report check_layer(const layer_check_options& opt = {}) {
  static_assert(nn::layer_spec<L>,
                "qnas::testing::check_layer<L, In>: L must be a layer spec (name(), output_shape(in), params(in), "
                "macs(in), make(in); see qnas/nn/spec.hpp)");
  static_assert(In.valid(), "qnas::testing::check_layer<L, In>: In must be a non-empty shape (nn::image(h, w, c) or nn::flat(n))");
  if constexpr (requires { L::template check<0, In>(); }) L::template check<0, In>();
  const detail::spec_facts facts{In, L::output_shape(In), L::params(In), L::macs(In)};
  return detail::run_checks(L::make(In), opt, &facts);
}

}  // namespace qnas::testing
