// Weight-sharing supernets (TuNAS): one network at its largest size whose channel prefixes,
// branches, skipped blocks and quantizers are chosen per step by a candidate of a search space.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana/for_each.hpp>
#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/horowitz_45nm.hpp"
#include "qnas/energy/layer.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/space/candidate.hpp"
#include "qnas/space/space.hpp"

namespace qnas {

/// One searchable stage of a supernet: `conv(k x k, stride) -> batch norm -> ReLU [-> quantizer]`.
/// Every field that names a decision refers to a decision of the space description the supernet
/// is built from; an empty name fixes that property to the `fixed_*` value.
///
/// * `filters`: an ordinal decision whose labels are integers (output channels). The stage keeps
///   weights for the largest value and uses a prefix of the output channels.
/// * `kernel`: a decision whose labels are integers (kernel sizes). Each kernel size is its own
///   branch (own weights and batch norm); the decision switches between branches.
/// * `weights`: a decision whose alternatives are number formats; its quantizer is applied to the
///   shared weights of the selected slice.
/// * `activations`: a format decision whose quantizer is applied to the stage's output (after
///   the ReLU); without one the fixed `activation` quantizer is used.
/// * `skip`: an `optional` decision. The stage is then a residual block `x + f(x)` of stride 1
///   whose width follows its input (it has no `filters` decision); "skip" makes it the identity.
struct supernet_stage {
  std::string filters;
  std::size_t fixed_filters = 16;
  std::string kernel;
  std::size_t fixed_kernel = 3;
  std::string weights;
  std::string skip;
  std::size_t stride = 1;
  quantizer activation{};  ///< output quantizer after the ReLU when `activations` is empty
  std::string activations; ///< format decision of the output activations (overrides `activation`)

  /// A searchable convolution stage (empty names fix that property to its `fixed_*` value).
  static supernet_stage conv(std::string filters, std::string kernel, std::string weights, std::size_t stride = 1,
                             quantizer activation = {}) {
    supernet_stage s;
    s.filters = std::move(filters);
    s.kernel = std::move(kernel);
    s.weights = std::move(weights);
    s.stride = stride;
    s.activation = std::move(activation);
    return s;
  }
  /// A residual block `x + f(x)` (f: kernel x kernel conv, BN, ReLU) that decision `skip` removes.
  static supernet_stage skippable(std::string skip, std::string weights, std::size_t kernel = 3,
                                  quantizer activation = {}) {
    supernet_stage s;
    s.skip = std::move(skip);
    s.weights = std::move(weights);
    s.fixed_kernel = kernel;
    s.activation = std::move(activation);
    return s;
  }
};

/// A supernet: input image shape, stages, then flatten (or global average pooling) and a dense
/// classifier whose input rows are those of the channels the last stage produced.
struct supernet_spec {
  nn::tensor_shape input = nn::image(28, 28, 1);
  std::vector<supernet_stage> stages;
  std::size_t classes = 10;
  std::string head_weights;  ///< format decision of the classifier's weights (empty: float32)
  bool global_pool = false;  ///< head input: false flattens [h, w, c], true averages over h, w
};

/// Per format decision, one quantizer per alternative (in the order of the decision).
using format_table = std::map<std::string, std::vector<quantizer>, std::less<>>;

namespace detail {
template <class D>
struct format_decision_traits {
  static constexpr bool is_format = false;
};
template <fixed_string N, class... Ts>
struct format_decision_traits<type_choice<N, Ts...>> {
  static constexpr bool is_format = (number_format<Ts> && ...);
  static std::vector<quantizer> quantizers() {
    static_assert(!(learned_scale_format<Ts> || ...),
                  "qnas supernet: a format decision's alternatives must not learn their steps (lsq): supernet branches "
                  "share weights and keep no step parameters; use scaled<..., alpha_auto_po2<>> for data-dependent scales");
    return {quantizer::of<Ts>()...};
  }
};
}  // namespace detail

/// The quantizers of every decision of S that is a type_choice over number formats (one
/// `quantizer::of<F>` per alternative: the sum, not the product, of alternatives is instantiated).
template <space_type S>
format_table format_table_of() {
  format_table t;
  boost::hana::for_each(decisions_of<S>, [&](auto d) {
    using D = typename decltype(d)::type;
    if constexpr (detail::format_decision_traits<D>::is_format)
      t.emplace(std::string(D::name.view()), detail::format_decision_traits<D>::quantizers());
  });
  return t;
}

namespace detail {
template <class D>
struct size_decision_traits {  // a choice of positive integers (filters, kernel sizes)
  static constexpr bool value = false;
};
template <fixed_string N, auto... Vs>
struct size_decision_traits<choice<N, Vs...>> {
  static constexpr bool value = (std::is_integral_v<decltype(Vs)> && ...) && ((Vs > 0) && ...);
};
template <class D>
struct skip_decision_traits {
  static constexpr bool value = false;
};
template <fixed_string N, class L>
struct skip_decision_traits<optional<N, L>> {
  static constexpr bool value = true;
};

// One function per rule, so that the compiler's "in instantiation of" line names the decision
// (Name = "...") and the role it was given.
template <fixed_string Name, bool Known>
constexpr void supernet_decision_is_known() {
  static_assert(Known, "supernet_spec_for<Space>: the space has no decision with this Name");
}
template <fixed_string Name, bool IsSize>
constexpr void supernet_filters_or_kernel_is_a_size_choice() {
  static_assert(IsSize,
                "supernet_spec_for<Space>: a filters or kernel decision Name must be a choice<Name, positive integers...>");
}
template <fixed_string Name, bool IsFormat>
constexpr void supernet_weights_or_activations_is_a_format_choice() {
  static_assert(IsFormat,
                "supernet_spec_for<Space>: a weights, activations or head decision Name must be a "
                "type_choice<Name, number formats...>");
}
template <fixed_string Name, bool IsOptional>
constexpr void supernet_skip_is_an_optional() {
  static_assert(IsOptional, "supernet_spec_for<Space>: a skip decision Name must be an optional<Name, Layer>");
}

enum class supernet_role { size, format, skip };

/// Checks decision Name of S for a role ("" fixes the property: nothing to check); returns it.
template <space_type S, fixed_string Name, supernet_role Role>
std::string checked_supernet_decision() {
  if constexpr (Name.size() > 0) {
    constexpr std::size_t i = S::index_of(Name.view());
    supernet_decision_is_known<Name, (i < S::num_decisions)>();
    if constexpr (i < S::num_decisions) {
      using D = typename space_traits<S>::template decision_at<i>;
      if constexpr (Role == supernet_role::size)
        supernet_filters_or_kernel_is_a_size_choice<Name, size_decision_traits<D>::value>();
      else if constexpr (Role == supernet_role::format)
        supernet_weights_or_activations_is_a_format_choice<Name, format_decision_traits<D>::is_format>();
      else
        supernet_skip_is_an_optional<Name, skip_decision_traits<D>::value>();
    }
  }
  return std::string(Name.view());
}
}  // namespace detail

/// A supernet_spec for the space type S whose decision names are checked at compile time, as
/// get<"name"> and candidate_of are: a name the space lacks, a filters/kernel decision that is
/// not a choice of positive integers, a weights/activations/head decision that is not a
/// type_choice of number formats, or a skip decision that is not an optional fails to compile
/// with a message naming the rule, in an instantiation that names the decision. An empty name
/// ("") fixes that property (set `fixed_filters` / `fixed_kernel` of `stages.back()`).
///
///   supernet_spec_for<my_space> spec(nn::image(28, 28, 1));
///   spec.conv<"s0.filters", "s0.kernel", "s0.w">(2, a8)
///       .skippable<"s1.block", "s1.w">(3, a8)
///       .head<"head.w">();
///   supernet net = make_supernet(spec, /*seed=*/1);
template <space_type S>
struct supernet_spec_for : supernet_spec {
  explicit supernet_spec_for(nn::tensor_shape in, std::size_t num_classes = 10) {
    input = in;
    classes = num_classes;
  }
  /// Appends a searchable convolution stage (supernet_stage::conv); Activations, when given, is
  /// the format decision of the stage's output (it replaces `activation`).
  template <fixed_string Filters, fixed_string Kernel, fixed_string Weights, fixed_string Activations = "">
  supernet_spec_for& conv(std::size_t stride = 1, quantizer activation = {}) {
    std::string filters = detail::checked_supernet_decision<S, Filters, detail::supernet_role::size>();
    std::string kernel = detail::checked_supernet_decision<S, Kernel, detail::supernet_role::size>();
    std::string weights = detail::checked_supernet_decision<S, Weights, detail::supernet_role::format>();
    supernet_stage st =
        supernet_stage::conv(std::move(filters), std::move(kernel), std::move(weights), stride, std::move(activation));
    st.activations = detail::checked_supernet_decision<S, Activations, detail::supernet_role::format>();
    stages.push_back(std::move(st));
    return *this;
  }
  /// Appends a residual block that decision Skip removes (supernet_stage::skippable).
  template <fixed_string Skip, fixed_string Weights, fixed_string Activations = "">
  supernet_spec_for& skippable(std::size_t kernel = 3, quantizer activation = {}) {
    static_assert(Skip.size() > 0, "supernet_spec_for<Space>::skippable<Skip, Weights>: Skip must name a decision");
    std::string skip = detail::checked_supernet_decision<S, Skip, detail::supernet_role::skip>();
    std::string weights = detail::checked_supernet_decision<S, Weights, detail::supernet_role::format>();
    supernet_stage st = supernet_stage::skippable(std::move(skip), std::move(weights), kernel, std::move(activation));
    st.activations = detail::checked_supernet_decision<S, Activations, detail::supernet_role::format>();
    stages.push_back(std::move(st));
    return *this;
  }
  /// The classifier's weight format decision (without it the head stays float32).
  template <fixed_string Weights>
  supernet_spec_for& head() {
    head_weights = detail::checked_supernet_decision<S, Weights, detail::supernet_role::format>();
    return *this;
  }
};

/// What one supernet step runs: per stage the active branches (one, or all of them during op
/// warm-up: their outputs are averaged), the output channel count and the weight format index.
/// For a stage with a skip decision, `branches` lists 0 (identity) and/or 1 (the block).
struct stage_setting {
  std::vector<std::uint32_t> branches;
  std::size_t filters = 0;
  std::size_t format = 0;
  std::size_t activation_format = 0;
};
struct supernet_setting {
  std::vector<stage_setting> stages;
  std::size_t head_format = 0;
};

namespace detail {

/// Scratch of one branch's forward/backward. Buffers are std::vector so that a smaller slice
/// (fewer channels) reuses the capacity of a larger one instead of reallocating.
struct branch_workspace {
  std::vector<float> wc, wq, cols, conv, xhat, act, out, dact, dconv, gw, dcols, dx;
  std::vector<float> mean, inv_std, sum_dy, sum_dy_xhat;
  std::vector<double> acc;
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t b = 0;
    for (const auto* v : {&wc, &wq, &cols, &conv, &xhat, &act, &out, &dact, &dconv, &gw, &dcols, &dx, &mean, &inv_std,
                          &sum_dy, &sum_dy_xhat})
      b += v->capacity() * sizeof(float);
    return b + acc.capacity() * sizeof(double);
  }
};

inline std::size_t parse_label(const space_description& d, std::size_t i, std::size_t k) {
  const std::string& s = d[i].labels[k];
  std::size_t pos = 0;
  unsigned long v = 0;
  try {
    v = std::stoul(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != s.size() || v == 0)
    throw invalid_argument("qnas::supernet", detail::cat("decision '", d[i].name, "' must have positive integer labels, got '", s, "'"));
  return v;
}

}  // namespace detail

/// A weight-sharing supernet. Every stage holds its weights at the largest size; a setting
/// (usually made from a candidate) selects prefixes of channels, branches, skipped blocks and
/// quantizers. Channel masks are realised by slicing: inactive channels would multiply zeros,
/// so the active prefix of the weights is gathered into a compact buffer (and quantized there,
/// exactly as a standalone layer of that size quantizes its weights), activations carry only
/// the active channels, and gradients are scattered back into the prefix of the full tensors.
/// A masked step is therefore the same arithmetic as a standalone network of the selected size.
///
/// Batch norm always uses batch statistics (TuNAS): running statistics of a layer whose input
/// width changes every step would mean nothing.
///
/// With `rematerialize` on, the branches of a stage share one workspace: forward keeps only the
/// stage's input and averaged output, backward recomputes every branch but the last one, so a
/// step with op warm-up holds about one branch's buffers per stage. Stochastic-rounding formats
/// draw again when recomputed; use round-to-nearest formats when bit-exact recomputation matters.
class supernet {
 public:
  supernet(const space_description& space, format_table formats, supernet_spec spec, std::uint64_t seed = 1)
      : space_(space), formats_(std::move(formats)), spec_(std::move(spec)) {
    constexpr const char* where = "qnas::supernet";
    if (!spec_.input.is_image() || !spec_.input.valid()) throw invalid_argument(where, "the input must be an image");
    if (spec_.stages.empty()) throw invalid_argument(where, "a supernet needs at least one stage");
    if (spec_.classes < 2) throw invalid_argument(where, "classes must be >= 2");
    std::size_t h = spec_.input.h, w = spec_.input.w, cmax = spec_.input.c;
    for (std::size_t s = 0; s < spec_.stages.size(); ++s) {
      const auto& st = spec_.stages[s];
      stage_state ss;
      ss.name = "stage" + std::to_string(s);
      ss.add_name = ss.name + ".add";
      ss.filters_decision = lookup(st.filters);
      ss.kernel_decision = lookup(st.kernel);
      ss.format_decision = lookup(st.weights);
      ss.skip_decision = lookup(st.skip);
      ss.act_decision = lookup(st.activations);
      if (ss.format_decision >= 0) format_list(st.weights);
      if (ss.act_decision >= 0) format_list(st.activations);
      if (ss.skip_decision >= 0) {
        if (space_.cardinality(static_cast<std::size_t>(ss.skip_decision)) != 2)
          throw invalid_argument(where, detail::cat("skip decision '", st.skip, "' must have 2 alternatives (skip, include)"));
        if (st.stride != 1 || ss.filters_decision >= 0)
          throw invalid_argument(where, detail::cat(ss.name, ": a skippable stage has stride 1 and follows its input's width"));
      }
      if (ss.filters_decision >= 0)
        for (std::size_t k = 0; k < space_.cardinality(static_cast<std::size_t>(ss.filters_decision)); ++k)
          ss.filter_values.push_back(detail::parse_label(space_, static_cast<std::size_t>(ss.filters_decision), k));
      else
        ss.filter_values.push_back(ss.skip_decision >= 0 ? cmax : st.fixed_filters);
      if (ss.kernel_decision >= 0)
        for (std::size_t k = 0; k < space_.cardinality(static_cast<std::size_t>(ss.kernel_decision)); ++k)
          ss.kernels.push_back(detail::parse_label(space_, static_cast<std::size_t>(ss.kernel_decision), k));
      else
        ss.kernels.push_back(st.fixed_kernel);
      ss.cin_max = cmax;
      ss.cout_max = *std::max_element(ss.filter_values.begin(), ss.filter_values.end());
      ss.in_h = h;
      ss.in_w = w;
      ss.out_h = nn::conv_output_size(h, 1, st.stride, nn::padding::same);
      ss.out_w = nn::conv_output_size(w, 1, st.stride, nn::padding::same);
      for (std::size_t k : ss.kernels) {
        branch b;
        b.kernel = k;
        b.w.name = ss.name + ".k" + std::to_string(k) + ".weights";
        b.w.value = xt::zeros<float>({k, k, ss.cin_max, ss.cout_max});
        b.w.grad = xt::zeros<float>({k, k, ss.cin_max, ss.cout_max});
        b.w.decay = true;
        b.gamma = {ss.name + ".k" + std::to_string(k) + ".gamma", xt::ones<float>({ss.cout_max}),
                   xt::zeros<float>({ss.cout_max}), false};
        b.beta = {ss.name + ".k" + std::to_string(k) + ".beta", xt::zeros<float>({ss.cout_max}),
                  xt::zeros<float>({ss.cout_max}), false};
        ss.branches.push_back(std::move(b));
      }
      h = ss.out_h;
      w = ss.out_w;
      cmax = ss.cout_max;
      stages_.push_back(std::move(ss));
    }
    head_decision_ = lookup(spec_.head_weights);
    if (head_decision_ >= 0) format_list(spec_.head_weights);
    head_cin_max_ = cmax;
    const std::size_t rows = head_positions() * cmax;
    head_w_ = {"head.weights", xt::zeros<float>({rows, spec_.classes}), xt::zeros<float>({rows, spec_.classes}), true};
    head_b_ = {"head.bias", xt::zeros<float>({spec_.classes}), xt::zeros<float>({spec_.classes}), false};
    std::mt19937_64 e(seed);
    initialize(e);
  }

  /// He-normal weights (fan-in of the largest slice), unit BN scales, zero shifts and biases.
  /// The normal draws are qnas's own (random.hpp), so a seed gives the same supernet with any
  /// standard library.
  void initialize(std::mt19937_64& e) {
    for (auto& s : stages_)
      for (auto& b : s.branches) {
        qnas::detail::fill_normal(std::span<float>(b.w.value.data(), b.w.value.size()),
                                  std::sqrt(2.0 / static_cast<double>(b.kernel * b.kernel * s.cin_max)), e);
        std::fill(b.gamma.value.begin(), b.gamma.value.end(), 1.0f);
        std::fill(b.beta.value.begin(), b.beta.value.end(), 0.0f);
      }
    qnas::detail::fill_normal(std::span<float>(head_w_.value.data(), head_w_.value.size()),
                              std::sqrt(2.0 / static_cast<double>(head_positions() * head_cin_max_)), e);
    std::fill(head_b_.value.begin(), head_b_.value.end(), 0.0f);
  }

  [[nodiscard]] const space_description& space() const noexcept { return space_; }
  [[nodiscard]] const supernet_spec& spec() const noexcept { return spec_; }
  [[nodiscard]] std::size_t num_stages() const noexcept { return stages_.size(); }

  /// Index of stage s's filters / kernel / format / skip decision in the space, or -1.
  struct stage_decisions {
    int filters, kernel, format, skip, activations;
  };
  [[nodiscard]] stage_decisions decisions(std::size_t s) const {
    const auto& st = stages_.at(s);
    return {st.filters_decision, st.kernel_decision, st.format_decision, st.skip_decision, st.act_decision};
  }
  [[nodiscard]] int head_format_decision() const noexcept { return head_decision_; }

  /// The setting a candidate selects (one branch per stage).
  [[nodiscard]] supernet_setting setting_of(const candidate& c) const {
    if (c.size() != space_.num_decisions())
      throw invalid_argument("qnas::supernet::setting_of",
                             detail::cat("candidate has ", c.size(), " decisions, the space has ", space_.num_decisions()));
    supernet_setting r;
    std::size_t cin = spec_.input.c;
    for (const auto& s : stages_) {
      stage_setting ss;
      if (s.skip_decision >= 0) {
        ss.branches = {c[static_cast<std::size_t>(s.skip_decision)]};
        ss.filters = cin;
      } else {
        ss.branches = {s.kernel_decision >= 0 ? c[static_cast<std::size_t>(s.kernel_decision)] : 0u};
        ss.filters = s.filters_decision >= 0 ? s.filter_values[c[static_cast<std::size_t>(s.filters_decision)]]
                                             : s.filter_values[0];
      }
      ss.format = s.format_decision >= 0 ? c[static_cast<std::size_t>(s.format_decision)] : 0;
      ss.activation_format = s.act_decision >= 0 ? c[static_cast<std::size_t>(s.act_decision)] : 0;
      cin = ss.filters;
      r.stages.push_back(std::move(ss));
    }
    r.head_format = head_decision_ >= 0 ? c[static_cast<std::size_t>(head_decision_)] : 0;
    return r;
  }

  /// The largest filter count of stage s (filter warm-up uses it).
  [[nodiscard]] std::size_t max_filters(std::size_t s) const { return stages_.at(s).cout_max; }
  /// Number of branches of stage s's op decision (kernel sizes, or 2 for skip/include).
  [[nodiscard]] std::size_t num_ops(std::size_t s) const {
    const auto& st = stages_.at(s);
    return st.skip_decision >= 0 ? 2 : st.branches.size();
  }

  void set_rematerialize(bool on) noexcept { remat_ = on; }
  [[nodiscard]] bool rematerialize() const noexcept { return remat_; }
  /// Engine for stochastic-rounding formats (owned by the caller).
  void set_engine(quantizer::engine_type* e) noexcept { engine_ = e; }

  /// Forward pass of a batch [n, h, w, c] under `setting`; returns the logits [n, classes].
  const xt::xarray<float>& forward(const xt::xarray<float>& x, const supernet_setting& setting) {
    check_setting(setting);
    if (x.dimension() != 4 || x.shape()[1] != spec_.input.h || x.shape()[2] != spec_.input.w ||
        x.shape()[3] != spec_.input.c)
      throw invalid_argument("qnas::supernet::forward", "expected a batch of shape [n," +
                                                            nn::to_string(spec_.input).substr(1));
    setting_ = setting;
    n_ = x.shape()[0];
    const float* in = x.data();
    std::size_t cin = spec_.input.c;
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      in = stage_forward(s, in, cin, setting.stages[s]);
      cin = setting.stages[s].filters;
    }
    head_forward(in, cin, setting.head_format);
    return logits_;
  }

  /// Backward pass of the last forward: accumulates parameter gradients (the active slices only).
  void backward(const xt::xarray<float>& dlogits) {
    if (dlogits.size() != n_ * spec_.classes)
      throw invalid_argument("qnas::supernet::backward", "dlogits does not match the last forward batch");
    const float* dy = head_backward(dlogits.data());
    for (std::size_t s = stages_.size(); s-- > 0;) dy = stage_backward(s, dy, s > 0);
  }

  /// Every parameter at its full size (the optimizer updates them all; inactive slices get zero
  /// gradients).
  std::vector<nn::parameter*> parameters() {
    std::vector<nn::parameter*> p;
    for (auto& s : stages_)
      for (auto& b : s.branches) p.insert(p.end(), {&b.w, &b.gamma, &b.beta});
    p.insert(p.end(), {&head_w_, &head_b_});
    return p;
  }
  void zero_grad() {
    for (auto* p : parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  }

  /// Bytes held by activation and scratch buffers (parameters excluded).
  [[nodiscard]] std::size_t workspace_bytes() const noexcept {
    std::size_t b = 0;
    for (const auto& s : stages_) {
      for (const auto& br : s.branches) b += br.ws.bytes();
      b += s.shared.bytes() + (s.sum.capacity() + s.dys.capacity() + s.dx.capacity()) * sizeof(float);
    }
    return b + (pooled_.capacity() + dpooled_.capacity() + dhead_.capacity() + hwc_.capacity() + hwq_.capacity() +
                dfeatures_.capacity()) * sizeof(float) +
           (logits_.size()) * sizeof(float);
  }

  /// The energy model's description of the network a candidate selects (batch norm folded into
  /// the convolution; ReLU and its quantizer fused as the convolution's output format).
  [[nodiscard]] std::vector<energy::layer_desc> layer_descs(const candidate& c) const {
    const supernet_setting st = setting_of(c);
    std::vector<energy::layer_desc> r;
    tensor_shape in = spec_.input;
    format_info fin = float32_info;
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      const auto& ss = stages_[s];
      const auto& set = st.stages[s];
      const auto& q = stage_quantizer(s, set.format);
      const format_info fout = activation_quantizer(s, set.activation_format).info();
      if (ss.skip_decision >= 0) {
        if (set.branches[0] == 0) continue;
        auto conv = energy::conv2d(ss.name.c_str(), in, static_cast<int>(set.filters), static_cast<int>(ss.kernels[0]), 1,
                                   padding::same, false)
                        .with_formats(q.info(), float32_info, fin, fout);
        r.push_back(conv);
        r.push_back(energy::add(ss.add_name.c_str(), in).with_formats(fout, fout));
        continue;
      }
      auto conv = energy::conv2d(ss.name.c_str(), in, static_cast<int>(set.filters),
                                 static_cast<int>(ss.kernels[set.branches[0]]), static_cast<int>(spec_.stages[s].stride),
                                 padding::same, false)
                      .with_formats(q.info(), float32_info, fin, fout);
      r.push_back(conv);
      in = conv.out;
      fin = fout;
    }
    if (spec_.global_pool) {
      r.push_back(energy::pool("pool", energy::layer_kind::avg_pool, in, static_cast<int>(in.h), static_cast<int>(in.h),
                               padding::valid)
                      .with_formats(fin, fin));
      in = r.back().out;
    }
    r.push_back(energy::dense("head", in, static_cast<int>(spec_.classes), true)
                    .with_formats(head_quantizer(st.head_format).info(), float32_info, fin, float32_info));
    return r;
  }

  /// Inference energy (pJ) of the candidate's network under cost table T.
  template <class T = energy::horowitz_45nm>
  [[nodiscard]] double energy_pj(const candidate& c, const energy::energy_options& o = {}) const {
    const auto l = layer_descs(c);
    return energy::price_model<T>(energy::model_view(l.data(), l.size()), o).total_pj;
  }

  /// The standalone network a candidate selects, built from nn layers (conv2d without bias,
  /// batch_norm, relu with the stage's output quantizer; residual blocks for included skip
  /// stages; flatten or global_avg_pool, dense). With `inherit` the weights are copied from the supernet's
  /// active slices; otherwise they are drawn from `engine`.
  [[nodiscard]] std::unique_ptr<nn::sequential> build_standalone(const candidate& c, bool inherit,
                                                                 std::mt19937_64& engine) const {
    const supernet_setting st = setting_of(c);
    auto net = std::make_unique<nn::sequential>(spec_.input);
    std::vector<std::pair<std::size_t, std::size_t>> copies;  // (stage, branch) per conv, in order
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      const auto& ss = stages_[s];
      const auto& set = st.stages[s];
      nn::layer_formats f{stage_quantizer(s, set.format), {}, {}};
      auto add_block = [&](nn::sequential& seq, std::size_t b, std::size_t stride) {
        seq.emplace<nn::conv2d_layer>(set.filters, ss.kernels[b], stride, nn::padding::same, f, false);
        seq.emplace<nn::batch_norm_layer>();
        seq.emplace<nn::relu_layer>().set_output_quantizer(activation_quantizer(s, set.activation_format));
      };
      if (ss.skip_decision >= 0) {
        if (set.branches[0] == 0) continue;
        auto& res = net->emplace<nn::residual_layer>();
        add_block(res.body(), 0, 1);
        res.seal();
      } else {
        add_block(*net, set.branches[0], spec_.stages[s].stride);
      }
    }
    if (spec_.global_pool)
      net->emplace<nn::global_avg_pool_layer>();
    else
      net->emplace<nn::flatten_layer>();
    net->emplace<nn::dense_layer>(spec_.classes, nn::layer_formats{head_quantizer(st.head_format), {}, {}});
    net->initialize(engine);
    if (inherit) copy_weights_to(*net, st);
    return net;
  }

  /// Copies the active slices of the supernet's weights into a standalone network built by
  /// build_standalone for the same setting.
  void copy_weights_to(nn::sequential& net, const supernet_setting& st) const {
    std::vector<nn::layer*> leaves;
    collect_leaves(net, leaves);
    std::size_t li = 0;
    std::size_t cin = spec_.input.c;
    auto next = [&](const char* kind) -> nn::layer& {
      while (li < leaves.size() && leaves[li]->kind() != kind) ++li;
      if (li == leaves.size()) throw invalid_argument("qnas::supernet::copy_weights_to", "network does not match the setting");
      return *leaves[li++];
    };
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      const auto& ss = stages_[s];
      const auto& set = st.stages[s];
      if (ss.skip_decision >= 0 && set.branches[0] == 0) continue;
      const auto& b = ss.branches[ss.skip_decision >= 0 ? 0 : set.branches[0]];
      auto& conv = static_cast<nn::conv2d_layer&>(next("conv2d"));
      gather(b.w.value.data(), b.kernel, ss.cin_max, ss.cout_max, cin, set.filters, conv.weights().value.data());
      auto& bn = static_cast<nn::batch_norm_layer&>(next("batch_norm"));
      std::copy_n(b.gamma.value.data(), set.filters, bn.gamma().value.data());
      std::copy_n(b.beta.value.data(), set.filters, bn.beta().value.data());
      cin = set.filters;
    }
    auto& d = static_cast<nn::dense_layer&>(next("dense"));
    const std::size_t k = spec_.classes;
    for (std::size_t p = 0; p < head_positions(); ++p)
      std::copy_n(head_w_.value.data() + p * head_cin_max_ * k, cin * k, d.weights().value.data() + p * cin * k);
    std::copy_n(head_b_.value.data(), spec_.classes, d.bias().value.data());
  }

  /// Gathers the [k, k, cin, cout] prefix of a [k, k, cin_max, cout_max] HWIO tensor.
  static void gather(const float* w, std::size_t k, std::size_t cin_max, std::size_t cout_max, std::size_t cin,
                     std::size_t cout, float* out) {
    for (std::size_t t = 0; t < k * k; ++t)
      for (std::size_t i = 0; i < cin; ++i)
        std::copy_n(w + (t * cin_max + i) * cout_max, cout, out + (t * cin + i) * cout);
  }

 private:
  struct branch {
    std::size_t kernel = 3;
    nn::parameter w, gamma, beta;
    detail::branch_workspace ws;
  };
  struct stage_state {
    std::string name, add_name;
    int filters_decision = -1, kernel_decision = -1, format_decision = -1, skip_decision = -1, act_decision = -1;
    std::size_t act_format = 0;  // of the last forward
    std::vector<std::size_t> filter_values, kernels;
    std::size_t cin_max = 0, cout_max = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
    std::vector<branch> branches;
    detail::branch_workspace shared;  // the one workspace of all branches when rematerializing
    std::vector<float> sum, dys, dx;  // averaged output, scaled gradient, summed input gradient
    const float* in = nullptr;
    const float* out = nullptr;
    std::size_t cin = 0;
    std::uint32_t resident = 0;  // the branch whose state the shared workspace holds
  };

  int lookup(const std::string& name) const {
    if (name.empty()) return -1;
    auto i = space_.index_of(name);
    if (!i) throw invalid_argument("qnas::supernet", detail::cat("the space has no decision named '", name, "'"));
    return static_cast<int>(*i);
  }
  const std::vector<quantizer>& format_list(const std::string& name) const {
    auto it = formats_.find(name);
    if (it == formats_.end())
      throw invalid_argument("qnas::supernet", detail::cat("decision '", name, "' is not a format decision (no quantizers for it)"));
    return it->second;
  }
  const quantizer& stage_quantizer(std::size_t s, std::size_t f) const {
    static const quantizer identity{};
    return stages_[s].format_decision >= 0 ? format_list(spec_.stages[s].weights).at(f) : identity;
  }
  const quantizer& activation_quantizer(std::size_t s, std::size_t f) const {
    return stages_[s].act_decision >= 0 ? format_list(spec_.stages[s].activations).at(f) : spec_.stages[s].activation;
  }
  const quantizer& head_quantizer(std::size_t f) const {
    static const quantizer identity{};
    return head_decision_ >= 0 ? format_list(spec_.head_weights).at(f) : identity;
  }

  void check_setting(const supernet_setting& st) const {
    constexpr const char* where = "qnas::supernet: setting";
    if (st.stages.size() != stages_.size()) throw invalid_argument(where, "has the wrong number of stages");
    std::size_t cin = spec_.input.c;
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      const auto& ss = stages_[s];
      const auto& set = st.stages[s];
      if (set.branches.empty()) throw invalid_argument(where, detail::cat("stage ", s, " has no active branch"));
      if ((ss.format_decision >= 0 && set.format >= space_.cardinality(static_cast<std::size_t>(ss.format_decision))) ||
          (ss.act_decision >= 0 && set.activation_format >= space_.cardinality(static_cast<std::size_t>(ss.act_decision))))
        throw invalid_argument(where, detail::cat("stage ", s, " selects a format that does not exist"));
      for (auto b : set.branches)
        if (b >= num_ops(s)) throw invalid_argument(where, detail::cat("stage ", s, " branch ", b, " does not exist"));
      if (ss.skip_decision >= 0 ? set.filters != cin : (set.filters == 0 || set.filters > ss.cout_max))
        throw invalid_argument(where, detail::cat("stage ", s, " has ", set.filters, " filters (at most ", ss.cout_max, ")"));
      cin = set.filters;
    }
  }

  static void collect_leaves(nn::layer& l, std::vector<nn::layer*>& out) {
    auto ch = l.children();
    if (ch.empty()) out.push_back(&l);
    for (auto* c : ch) collect_leaves(*c, out);
  }

  // ---- one branch: conv (sliced, quantized) -> batch norm (batch statistics) -> ReLU [-> q] ----
  struct geometry {
    nn::window_geometry g;
    std::size_t cin, cout, m;
  };
  geometry branch_geometry(const stage_state& ss, const branch& b, std::size_t cin, std::size_t cout,
                           std::size_t stride) const {
    geometry r{nn::window_geometry::of(nn::image(ss.in_h, ss.in_w, cin), b.kernel, stride, nn::padding::same), cin,
               cout, 0};
    r.m = n_ * r.g.out_h * r.g.out_w;
    return r;
  }

  const float* branch_forward(std::size_t s, branch& b, detail::branch_workspace& ws, const float* x, std::size_t cin,
                              std::size_t cout, const quantizer& wq, std::size_t stride) {
    const stage_state& ss = stages_[s];
    const geometry geo = branch_geometry(ss, b, cin, cout, stride);
    const std::size_t k = b.kernel, patch = k * k * cin, m = geo.m;
    ws.wc.resize(patch * cout);
    gather(b.w.value.data(), k, ss.cin_max, ss.cout_max, cin, cout, ws.wc.data());
    const float* wuse = ws.wc.data();
    if (!wq.is_identity()) {
      ws.wq.resize(ws.wc.size());
      const std::array<std::size_t, 4> shape{k, k, cin, cout};
      wq(std::span<const float>(ws.wc), std::span<float>(ws.wq), shape, last_axis, engine_);
      wuse = ws.wq.data();
    }
    const float* cols = x;
    if (!geo.g.pointwise()) {
      ws.cols.resize(m * patch);
      nn::detail::im2col(x, n_, geo.g, ws.cols.data());
      cols = ws.cols.data();
    }
    ws.conv.resize(m * cout);
    nn::detail::gemm(false, false, m, cout, patch, 1.0f, cols, wuse, 0.0f, ws.conv.data());
    // Batch norm with batch statistics (nn::batch_norm_layer's arithmetic on the channel prefix of
    // gamma and beta), then ReLU in place.
    ws.mean.resize(cout);
    ws.inv_std.resize(cout);
    nn::detail::batch_statistics(ws.conv.data(), m, cout, nn::batch_norm_default_epsilon, ws.acc, ws.mean.data(),
                                 ws.inv_std.data());
    ws.xhat.resize(m * cout);
    ws.act.resize(m * cout);
    nn::detail::batch_norm_apply(ws.conv.data(), m, cout, ws.mean.data(), ws.inv_std.data(), b.gamma.value.data(),
                                 b.beta.value.data(), ws.xhat.data(), ws.act.data());
    for (float& v : ws.act) v = nn::detail::relu_op::f(v);
    const quantizer& aq = activation_quantizer(s, stages_[s].act_format);
    if (aq.is_identity()) return ws.act.data();
    ws.out.resize(m * cout);
    const std::array<std::size_t, 4> shape{n_, geo.g.out_h, geo.g.out_w, cout};
    aq(std::span<const float>(ws.act), std::span<float>(ws.out), shape, last_axis, engine_);
    return ws.out.data();
  }

  // Accumulates parameter gradients; writes dx (when wanted) into ws.dx and returns it.
  const float* branch_backward(std::size_t s, branch& b, detail::branch_workspace& ws, const float* x, const float* dy,
                               std::size_t cin, std::size_t cout, const quantizer& wq, std::size_t stride, bool need_dx) {
    const stage_state& ss = stages_[s];
    const geometry geo = branch_geometry(ss, b, cin, cout, stride);
    const std::size_t k = b.kernel, patch = k * k * cin, m = geo.m, sz = m * cout;
    const quantizer& aq = activation_quantizer(s, stages_[s].act_format);
    ws.dact.resize(sz);
    // Output quantizer STE (clipped to the format's range, on the pre-quantization values), then ReLU.
    if (!aq.is_identity()) {
      nn::detail::ste_mask(aq.info(), ws.act.data(), dy, ws.dact.data(), sz);
      dy = ws.dact.data();
    }
    ws.dconv.resize(sz);
    float* dbn = ws.dconv.data();  // d(loss)/d(BN output): ReLU's gradient (act > 0 exactly where its input is)
    for (std::size_t i = 0; i < sz; ++i) dbn[i] = nn::detail::relu_op::grad(ws.act[i], ws.act[i], dy[i]);
    ws.sum_dy.resize(cout);
    ws.sum_dy_xhat.resize(cout);
    nn::detail::batch_norm_param_grads(dbn, ws.xhat.data(), m, cout, ws.sum_dy.data(), ws.sum_dy_xhat.data(),
                                       b.gamma.grad.data(), b.beta.grad.data());
    nn::detail::batch_norm_input_grad(dbn, ws.xhat.data(), m, cout, b.gamma.value.data(), ws.inv_std.data(),
                                      ws.sum_dy.data(), ws.sum_dy_xhat.data(), true, dbn);
    const float* dconv = dbn;
    // Weight gradient of the slice, STE-masked when quantized, scattered into the full tensor.
    const float* cols = x;
    if (!geo.g.pointwise()) cols = ws.cols.data();
    ws.gw.resize(patch * cout);
    nn::detail::gemm(true, false, patch, cout, m, 1.0f, cols, dconv, 0.0f, ws.gw.data());
    if (!wq.is_identity()) nn::detail::ste_mask(wq.info(), ws.wc.data(), ws.gw.data(), ws.gw.data(), ws.gw.size());
    float* full = b.w.grad.data();
    for (std::size_t t = 0; t < k * k; ++t)
      for (std::size_t i = 0; i < cin; ++i) {
        float* dst = full + (t * ss.cin_max + i) * ss.cout_max;
        const float* src = ws.gw.data() + (t * cin + i) * cout;
        for (std::size_t j = 0; j < cout; ++j) dst[j] += src[j];
      }
    if (!need_dx) return nullptr;
    const float* wuse = wq.is_identity() ? ws.wc.data() : ws.wq.data();
    ws.dx.resize(n_ * ss.in_h * ss.in_w * cin);
    if (geo.g.pointwise()) {
      nn::detail::gemm(false, true, m, patch, cout, 1.0f, dconv, wuse, 0.0f, ws.dx.data());
    } else {
      ws.dcols.resize(m * patch);
      nn::detail::gemm(false, true, m, patch, cout, 1.0f, dconv, wuse, 0.0f, ws.dcols.data());
      nn::detail::col2im(ws.dcols.data(), n_, geo.g, ws.dx.data());
    }
    return ws.dx.data();
  }

  // ---- a stage: one branch, or the average of several (op warm-up) ----
  detail::branch_workspace& ws_of(stage_state& ss, std::uint32_t b) { return remat_ ? ss.shared : ss.branches[b].ws; }

  const float* stage_forward(std::size_t s, const float* x, std::size_t cin, const stage_setting& set) {
    stage_state& ss = stages_[s];
    ss.in = x;
    ss.cin = cin;
    ss.act_format = set.activation_format;
    const quantizer& wq = stage_quantizer(s, set.format);
    const std::size_t stride = spec_.stages[s].stride;
    const std::size_t out_size = n_ * ss.out_h * ss.out_w * set.filters;
    const bool skippable = ss.skip_decision >= 0;
    auto run = [&](std::uint32_t b) {
      ss.resident = b;
      const std::uint32_t br = skippable ? 0 : b;
      return branch_forward(s, ss.branches[br], ws_of(ss, br), x, cin, set.filters, wq, stride);
    };
    if (!skippable && set.branches.size() == 1) return ss.out = run(set.branches[0]);
    if (skippable && set.branches.size() == 1 && set.branches[0] == 0) return ss.out = x;  // skipped: identity
    // Averaged branches; for a skippable stage branch 0 is the identity and 1 is x + f(x).
    ss.sum.assign(out_size, 0.0f);
    const float inv = 1.0f / static_cast<float>(set.branches.size());
    for (auto b : set.branches) {
      if (skippable && b == 0) {
        for (std::size_t i = 0; i < out_size; ++i) ss.sum[i] += inv * x[i];
        continue;
      }
      const float* y = run(b);
      if (skippable)
        for (std::size_t i = 0; i < out_size; ++i) ss.sum[i] += inv * (x[i] + y[i]);
      else
        for (std::size_t i = 0; i < out_size; ++i) ss.sum[i] += inv * y[i];
    }
    return ss.out = ss.sum.data();
  }

  const float* stage_backward(std::size_t s, const float* dy, bool need_dx) {
    stage_state& ss = stages_[s];
    const stage_setting& set = setting_.stages[s];
    const quantizer& wq = stage_quantizer(s, set.format);
    const std::size_t stride = spec_.stages[s].stride;
    const bool skippable = ss.skip_decision >= 0;
    const std::size_t in_size = n_ * ss.in_h * ss.in_w * ss.cin;
    const std::size_t out_size = n_ * ss.out_h * ss.out_w * set.filters;
    if (!skippable && set.branches.size() == 1) {
      const auto b = set.branches[0];
      return branch_backward(s, ss.branches[b], ws_of(ss, b), ss.in, dy, ss.cin, set.filters, wq, stride, need_dx);
    }
    const float inv = 1.0f / static_cast<float>(set.branches.size());
    const float* g = dy;
    if (set.branches.size() > 1) {
      ss.dys.resize(out_size);
      for (std::size_t i = 0; i < out_size; ++i) ss.dys[i] = inv * dy[i];
      g = ss.dys.data();
    }
    // Every branch passes g to the input (identity or residual path) besides its own gradient.
    if (need_dx) ss.dx.assign(in_size, 0.0f);
    std::size_t identity_paths = 0;
    // The branch computed last comes first: its state is still in the (shared) workspace. Both
    // modes use this order, so a rematerialized backward sums the input gradients identically.
    std::vector<std::uint32_t> order;
    if (std::find(set.branches.begin(), set.branches.end(), ss.resident) != set.branches.end())
      order.push_back(ss.resident);
    for (auto b : set.branches)
      if (std::find(order.begin(), order.end(), b) == order.end()) order.push_back(b);
    for (auto b : order) {
      identity_paths += skippable ? 1 : 0;
      if (skippable && b == 0) continue;
      const std::uint32_t br = skippable ? 0 : b;
      detail::branch_workspace& ws = ws_of(ss, br);
      if (remat_ && ss.resident != b) {  // recompute this branch's forward state from the saved input
        branch_forward(s, ss.branches[br], ws, ss.in, ss.cin, set.filters, wq, stride);
        ss.resident = b;
      }
      const float* d = branch_backward(s, ss.branches[br], ws, ss.in, g, ss.cin, set.filters, wq, stride, need_dx);
      if (need_dx)
        for (std::size_t i = 0; i < in_size; ++i) ss.dx[i] += d[i];
    }
    if (!need_dx) return nullptr;
    for (std::size_t p = 0; p < identity_paths; ++p)
      for (std::size_t i = 0; i < in_size; ++i) ss.dx[i] += g[i];
    return ss.dx.data();
  }

  // ---- head: flatten (or global average pool) of the active channels, dense on those rows ----
  // Weight rows are (position, channel) with channel < cmax: the active rows of each position are
  // a contiguous block, gathered into a compact [positions * c, classes] matrix.
  [[nodiscard]] std::size_t head_positions() const noexcept {
    return spec_.global_pool ? 1 : stages_.back().out_h * stages_.back().out_w;
  }

  void head_forward(const float* x, std::size_t c, std::size_t format) {
    const auto& last = stages_.back();
    const std::size_t hw = last.out_h * last.out_w, k = spec_.classes, positions = head_positions();
    head_c_ = c;
    const float* features = x;  // flatten: the NHWC batch is already [n, hw * c]
    if (spec_.global_pool) {
      pooled_.assign(n_ * c, 0.0f);
      const float inv = 1.0f / static_cast<float>(hw);
      for (std::size_t b = 0; b < n_; ++b) {
        float* y = pooled_.data() + b * c;
        for (std::size_t p = 0; p < hw; ++p) {
          const float* xi = x + (b * hw + p) * c;
          for (std::size_t j = 0; j < c; ++j) y[j] += xi[j];
        }
        for (std::size_t j = 0; j < c; ++j) y[j] *= inv;
      }
      features = pooled_.data();
    }
    head_features_ = features;
    hwc_.resize(positions * c * k);
    for (std::size_t p = 0; p < positions; ++p)
      std::copy_n(head_w_.value.data() + p * head_cin_max_ * k, c * k, hwc_.data() + p * c * k);
    const quantizer& q = head_quantizer(format);
    head_wuse_ = hwc_.data();
    if (!q.is_identity()) {
      hwq_.resize(hwc_.size());
      const std::array<std::size_t, 2> shape{positions * c, k};
      q(std::span<const float>(hwc_), std::span<float>(hwq_), shape, last_axis, engine_);
      head_wuse_ = hwq_.data();
    }
    nn::detail::ensure_shape(logits_, std::array<std::size_t, 2>{n_, k});
    nn::detail::broadcast_rows(head_b_.value.data(), n_, k, logits_.data());
    nn::detail::gemm(false, false, n_, k, positions * c, 1.0f, features, head_wuse_, 1.0f, logits_.data());
  }

  const float* head_backward(const float* dy) {
    const auto& last = stages_.back();
    const std::size_t hw = last.out_h * last.out_w, k = spec_.classes, c = head_c_, positions = head_positions();
    const std::size_t rows = positions * c;
    const quantizer& q = head_quantizer(setting_.head_format);
    dhead_.resize(rows * k);
    nn::detail::gemm(true, false, rows, k, n_, 1.0f, head_features_, dy, 0.0f, dhead_.data());
    if (!q.is_identity()) nn::detail::ste_mask(q.info(), hwc_.data(), dhead_.data(), dhead_.data(), dhead_.size());
    for (std::size_t p = 0; p < positions; ++p) {
      float* dst = head_w_.grad.data() + p * head_cin_max_ * k;
      const float* src = dhead_.data() + p * c * k;
      for (std::size_t i = 0; i < c * k; ++i) dst[i] += src[i];
    }
    nn::detail::add_column_sums(dy, n_, k, head_b_.grad.data());
    dfeatures_.resize(n_ * rows);
    nn::detail::gemm(false, true, n_, rows, k, 1.0f, dy, head_wuse_, 0.0f, dfeatures_.data());
    if (!spec_.global_pool) return dfeatures_.data();
    dpooled_.resize(n_ * hw * c);
    const float inv = 1.0f / static_cast<float>(hw);
    for (std::size_t b = 0; b < n_; ++b)
      for (std::size_t p = 0; p < hw; ++p)
        for (std::size_t j = 0; j < c; ++j) dpooled_[(b * hw + p) * c + j] = dfeatures_[b * c + j] * inv;
    return dpooled_.data();
  }

  space_description space_;
  format_table formats_;
  supernet_spec spec_;
  std::vector<stage_state> stages_;
  int head_decision_ = -1;
  std::size_t head_cin_max_ = 0, head_c_ = 0, n_ = 0;
  nn::parameter head_w_, head_b_;
  const float* head_wuse_ = nullptr;
  const float* head_features_ = nullptr;
  std::vector<float> pooled_, dpooled_, dhead_, hwc_, hwq_, dfeatures_;
  xt::xarray<float> logits_;
  supernet_setting setting_;
  bool remat_ = true;
  quantizer::engine_type* engine_ = nullptr;
};

/// Builds the supernet of space S: the format decisions' quantizers come from S's types. The
/// decision names of a plain supernet_spec are checked when the supernet is built (run time).
template <space_type S>
supernet make_supernet(supernet_spec spec, std::uint64_t seed = 1) {
  return supernet(describe<S>(), format_table_of<S>(), std::move(spec), seed);
}
/// Builds the supernet of a spec whose decision names were checked at compile time.
template <space_type S>
supernet make_supernet(const supernet_spec_for<S>& spec, std::uint64_t seed = 1) {
  return supernet(describe<S>(), format_table_of<S>(), spec, seed);
}

}  // namespace qnas
