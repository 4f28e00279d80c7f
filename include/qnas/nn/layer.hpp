// The run-time layer interface: forward/backward on NHWC xtensor buffers with quantized outputs.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/nn/blas.hpp"
#include "qnas/nn/parameter.hpp"
#include "qnas/nn/shape.hpp"

namespace qnas::nn {

/// The quantizers of one computational layer. Each defaults to float32 (identity).
/// `weights` and `bias` quantize the parameters on every forward pass (the float master copy
/// is what the optimizer updates); `output` quantizes the layer's output activations.
struct layer_formats {
  quantizer weights{};
  quantizer bias{};
  quantizer output{};
};

/// What a layer computes, as the energy model reads it: one value per kind of computation,
/// not per class, so a user's layer that computes a convolution says `conv2d` and is priced as
/// one. Composite layers (residual, sequential) are followed in describe_layers by their body's
/// rows at depth + 1.
enum class layer_op : std::uint8_t {
  unpriced,          ///< no pricing rule (squeeze_excite; a layer that says nothing): the bridge refuses it
  conv2d,            ///< window = kernel, stride, padding, groups; output channels = output.c
  depthwise_conv2d,  ///< one window per channel
  dense,             ///< output.c units on the flattened input
  max_pool,
  avg_pool,
  global_avg_pool,   ///< [h, w, c] -> [c]
  activation,        ///< element-wise, shape kept (relu, relu6, swish, sigmoid, softmax)
  flatten,
  batch_norm,        ///< priced folded into the layer before it
  residual,          ///< y = x + body(x)
  sequential         ///< the body's layers in order
};

constexpr const char* to_string(layer_op op) noexcept {
  switch (op) {
    case layer_op::unpriced: return "unpriced";
    case layer_op::conv2d: return "conv2d";
    case layer_op::depthwise_conv2d: return "depthwise_conv2d";
    case layer_op::dense: return "dense";
    case layer_op::max_pool: return "max_pool";
    case layer_op::avg_pool: return "avg_pool";
    case layer_op::global_avg_pool: return "global_avg_pool";
    case layer_op::activation: return "activation";
    case layer_op::flatten: return "flatten";
    case layer_op::batch_norm: return "batch_norm";
    case layer_op::residual: return "residual";
    case layer_op::sequential: return "sequential";
  }
  return "?";
}

/// The window of a convolution or pool: square kernel, stride, padding, and for a conv2d the
/// number of channel groups (1: every output reads every input channel).
struct window_desc {
  std::size_t kernel = 0;
  std::size_t stride = 0;
  padding pad = padding::valid;
  std::size_t groups = 1;
  constexpr bool operator==(const window_desc&) const = default;
};

/// What a layer is, as plain data: the summary prints it, and the energy model reads it (a
/// layer's computation, geometry, MACs and the formats of the operands are what an
/// operator-level cost needs). `op` and `window` are the typed geometry; `kind` and `config`
/// are for people (summaries, messages) and are never parsed.
struct layer_description {
  std::string kind;              ///< "conv2d", "dense", "relu", ... (the layer's name for people)
  std::string config;            ///< short human-readable hyper-parameters ("3x3/2 same")
  layer_op op = layer_op::unpriced;
  window_desc window{};          ///< conv2d, depthwise_conv2d, max_pool, avg_pool
  tensor_shape input{};
  tensor_shape output{};
  std::size_t params = 0;        ///< trainable scalars
  std::size_t step_params = 0;   ///< of which learned quantization steps (lsq weight formats)
  std::size_t macs = 0;          ///< multiply-accumulates per sample (forward)
  format_info weight_format = float32_info;
  format_info bias_format = float32_info;
  format_info output_format = float32_info;
  std::string weight_format_name = "float32";
  std::string output_format_name = "float32";
  int depth = 0;                 ///< nesting level inside composite layers (0 = top level)
};

namespace detail {

/// Resizes `a` to `shape` only when the shape differs: buffers are kept across steps with the
/// same batch size, so a training step allocates nothing once warm.
template <class Shape>
void ensure_shape(xt::xarray<float>& a, const Shape& shape) {
  if (a.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), a.shape().begin())) return;
  a.resize(std::vector<std::size_t>(shape.begin(), shape.end()));
}

inline std::vector<std::size_t> batch_shape(std::size_t n, const tensor_shape& s) {
  if (s.rank == 1) return {n, s.c};
  return {n, s.h, s.w, s.c};
}

inline void ensure_batch(xt::xarray<float>& a, std::size_t n, const tensor_shape& s) {
  const std::size_t rank = s.rank == 1 ? 2 : 4;
  if (a.dimension() == rank && a.shape()[0] == n && a.size() == n * s.size()) return;
  a.resize(batch_shape(n, s));
}

/// Quantizes a whole buffer with `q` (last axis = blocking axis, so block formats block along
/// channels for NHWC tensors and along output units for [in, out] weights). Formats quantize
/// each line of the last axis on its own, so a large buffer of a deterministic format is split
/// along its first axis among nn::blas_threads() threads (same values); stochastic formats draw
/// from `engine` in order, on the calling thread. Formats whose scales follow the whole tensor
/// (quantizer::whole_tensor(): per-tensor or per-channel scales reduce over every row) run on
/// the calling thread in one piece, so the scales do not depend on the thread count.
inline void quantize_into(const quantizer& q, const xt::xarray<float>& in, xt::xarray<float>& out,
                          quantizer::engine_type* engine) {
  ensure_shape(out, in.shape());
  const std::span<const std::size_t> shape(in.shape().data(), in.shape().size());
  constexpr std::size_t max_rank = 8;
  if (q.needs_engine() || q.whole_tensor() || shape.size() < 2 || shape.size() > max_rank || in.size() == 0) {
    q(std::span<const float>(in.data(), in.size()), std::span<float>(out.data(), out.size()), shape, last_axis, engine);
    return;
  }
  const std::size_t per_item = in.size() / shape[0];
  parallel_ranges(shape[0], per_item, [&](std::size_t b0, std::size_t b1) {
    std::array<std::size_t, max_rank> part{};
    std::copy(shape.begin(), shape.end(), part.begin());
    part[0] = b1 - b0;
    q(std::span<const float>(in.data() + b0 * per_item, (b1 - b0) * per_item),
      std::span<float>(out.data() + b0 * per_item, (b1 - b0) * per_item),
      std::span<const std::size_t>(part.data(), shape.size()), last_axis, engine);
  });
}

/// Straight-through estimator clipped to the format's range: the gradient passes where the
/// unquantized value was inside [min_value, max_value] and is zero where it was clipped.
/// Formats with data-dependent scales (formats/scaled.hpp) declare +-FLT_MAX, so every finite
/// value passes: QKeras's straight-through estimator for alpha='auto*' has no clipping mask.
inline void ste_mask(const format_info& f, const float* pre, const float* g, float* out, std::size_t n) {
  const float lo = static_cast<float>(f.min_value), hi = static_cast<float>(f.max_value);
  parallel_ranges(n, 1, [&](std::size_t i0, std::size_t i1) {
    // Locals, not the captures: the float stores could alias a captured float (lo, hi), and the
    // loop would reload every capture per element instead of vectorizing.
    const float* p = pre + i0;
    const float* d = g + i0;
    float* o = out + i0;
    const float l = lo, h = hi;
    for (std::size_t i = 0, e = i1 - i0; i < e; ++i) {
      const float x = p[i], v = d[i];  // both loaded unconditionally: the loop is a vector select
      o[i] = ((x >= l) & (x <= h)) ? v : 0.0f;
    }
  });
}
/// Adds the column sums of x[rows, cols] into acc[cols] (bias gradients).
inline void add_column_sums(const float* x, std::size_t rows, std::size_t cols, float* acc) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    for (std::size_t j = 0; j < cols; ++j) acc[j] += row[j];
  }
}

/// Frees a buffer's storage (memory-saving training hands buffers back as soon as nothing needs them).
inline void free_buffer(xt::xarray<float>& a) { a = xt::xarray<float>(); }

inline void ste_mask_accumulate(const format_info& f, const float* pre, const float* g, float* acc, std::size_t n) {
  const float lo = static_cast<float>(f.min_value), hi = static_cast<float>(f.max_value);
  for (std::size_t i = 0; i < n; ++i) acc[i] += (pre[i] >= lo && pre[i] <= hi) ? g[i] : 0.0f;
}

}  // namespace detail

/// Keeps an activation that a layer's backward pass needs, in whatever form the holder chooses:
/// `train::activation_store` keeps it encoded in a narrow number format, optionally losslessly
/// compressed. A layer given a saver (`layer::set_input_saver`) saves its input on every training
/// forward pass and restores it at the start of backward, instead of holding the float input (or
/// a copy derived from it, such as conv2d's im2col matrix); its gradients are then computed from
/// the restored values.
class activation_saver {
 public:
  virtual ~activation_saver() = default;
  /// Keeps `x` (row-major, of `shape`) until the next save; `x` may be overwritten afterwards.
  virtual void save(std::span<const float> x, std::span<const std::size_t> shape) = 0;
  /// Writes what was saved (or the holder's approximation of it) into `out`, resizing it to the
  /// saved shape when it differs.
  virtual void restore(xt::xarray<float>& out) = 0;
};

/// A tensor a model file stores for a layer besides its weights and bias (batch norm's gamma,
/// beta and running statistics, a user layer's parameters): its key in the layer's entry, its
/// shape, and its values inside the layer (read when a model is exported, written in place when
/// one is loaded).
struct state_tensor {
  std::string key;
  std::vector<std::size_t> shape;
  std::span<float> values;
};

/// A number a model file stores for a layer (batch norm's epsilon, a user layer's
/// hyper-parameter): its key in the layer's entry and its value.
struct layer_attribute {
  std::string key;
  double value = 0.0;
};

/// A layer of a run-time network. Activations are row-major NHWC `[n, h, w, c]` (rank-4) or
/// `[n, c]` (rank-2) xtensor arrays. Every layer owns its output and input-gradient buffers
/// (reused while the batch size stays the same); `forward` keeps a pointer to its input, which
/// must stay alive until the matching `backward`.
///
/// The output quantizer is applied here, for every layer kind: forward computes the float
/// output, then fake-quantizes it; backward masks the incoming gradient with the clipped
/// straight-through estimator before the layer's own backward.
class layer {
 public:
  layer(std::string kind, tensor_shape in, tensor_shape out) : kind_(std::move(kind)), in_(in), out_(out) {}
  virtual ~layer() = default;
  layer(const layer&) = delete;
  layer& operator=(const layer&) = delete;

  [[nodiscard]] const std::string& kind() const noexcept { return kind_; }
  [[nodiscard]] const tensor_shape& input_shape() const noexcept { return in_; }
  [[nodiscard]] const tensor_shape& output_shape() const noexcept { return out_; }

  /// Forward pass on a batch `x` of shape [n, input_shape()]. `training` selects batch
  /// statistics (batch norm) and keeps what backward needs.
  const xt::xarray<float>& forward(const xt::xarray<float>& x, bool training) {
    const xt::xarray<float>& y = forward_impl(x, training);
    if (out_q_.is_identity()) return y;
    detail::quantize_into(out_q_, y, yq_, engine_);
    if (!memory_saving_) {
      y_pre_ = &y;
      return yq_;
    }
    // Memory saving: keep one bit per element (inside the format's range) for the clipped
    // straight-through estimator instead of the float output before quantization.
    y_pre_ = nullptr;
    const format_info& f = out_q_.info();
    const float lo = static_cast<float>(f.min_value), hi = static_cast<float>(f.max_value);
    inside_.assign((y.size() + 63) / 64, 0);
    const float* p = y.data();
    for (std::size_t i = 0; i < y.size(); ++i)
      if (p[i] >= lo && p[i] <= hi) inside_[i / 64] |= std::uint64_t{1} << (i % 64);
    if (!reads_own_output()) release_output_impl();
    return yq_;
  }
  /// Deleted: the layer keeps a pointer to its input until backward, so a temporary (e.g. an
  /// xtensor converted on the fly) would dangle. Copy into an xt::xarray<float> first.
  const xt::xarray<float>& forward(xt::xarray<float>&&, bool) = delete;

  /// Backward pass: `dy` is d(loss)/d(output) for the last forward batch. Accumulates into the
  /// parameters' `grad` and returns d(loss)/d(input), or an empty array when `need_input_grad`
  /// is false (the first layer of a network: the images need no gradient).
  const xt::xarray<float>& backward(const xt::xarray<float>& dy, bool need_input_grad = true) {
    if (out_q_.is_identity()) return backward_impl(dy, need_input_grad);
    detail::ensure_shape(dyq_, dy.shape());
    if (y_pre_ != nullptr) {
      detail::ste_mask(out_q_.info(), y_pre_->data(), dy.data(), dyq_.data(), dy.size());
    } else {
      if (inside_.size() != (dy.size() + 63) / 64)
        throw invalid_argument("qnas::nn::" + kind_ + "::backward", "no forward pass in training mode came first");
      const float* g = dy.data();
      float* out = dyq_.data();
      for (std::size_t i = 0; i < dy.size(); ++i) out[i] = (inside_[i / 64] >> (i % 64)) & 1u ? g[i] : 0.0f;
    }
    const xt::xarray<float>& dx = backward_impl(dyq_, need_input_grad);
    if (memory_saving_) detail::free_buffer(dyq_);
    return dx;
  }

  /// Whether this layer can apply a ReLU that follows it in its own output stage, in inference:
  /// conv2d and dense without an output quantizer do (in the GEMM's store). sequential then runs
  /// the pair as one pass (forward_relu) and skips the ReLU layer.
  [[nodiscard]] virtual bool fuses_relu() const noexcept { return false; }
  /// Whether this layer is a ReLU without an output quantizer, which a fuses_relu() layer before
  /// it can absorb in inference.
  [[nodiscard]] virtual bool is_plain_relu() const noexcept { return false; }
  /// Inference: relu(forward(x, false)) in one pass, for a layer whose fuses_relu() is true (else
  /// throws). The layer's output buffer then holds the rectified values; nothing is kept for a
  /// backward pass, as after any forward in inference mode.
  const xt::xarray<float>& forward_relu(const xt::xarray<float>& x) {
    if (!fuses_relu())
      throw invalid_argument("qnas::nn::" + kind_ + "::forward_relu", "this layer cannot apply a following ReLU itself");
    relu_epilogue_ = true;
    struct reset {
      bool& flag;
      ~reset() { flag = false; }
    } guard{relu_epilogue_};
    return forward(x, false);
  }
  const xt::xarray<float>& forward_relu(xt::xarray<float>&&) = delete;

  /// Memory-saving training (set by `sequential::set_memory_saving` on its layers): buffers are
  /// freed as soon as nothing needs them, at the cost of allocating them again at every step.
  virtual void set_memory_saving(bool on) { memory_saving_ = on; }
  [[nodiscard]] bool memory_saving() const noexcept { return memory_saving_; }

  /// Whether this layer kind can keep its input in an activation_saver: conv2d,
  /// depthwise_conv2d, dense, the elementwise activations and batch norm (which saves its
  /// normalized input) can. Layers whose backward needs nothing of their input (pooling,
  /// flatten, softmax) need none.
  [[nodiscard]] virtual bool accepts_input_saver() const noexcept { return false; }
  /// Lends a saver for the input (null: keep float data, the default). The saver must outlive
  /// the layer's use of it. Throws for a layer kind that cannot use one.
  void set_input_saver(activation_saver* s) {
    if (s != nullptr && !accepts_input_saver())
      throw invalid_argument("qnas::nn::" + kind_ + "::set_input_saver", "this layer kind cannot keep its input in a saver");
    saver_ = s;
  }
  [[nodiscard]] activation_saver* input_saver() const noexcept { return saver_; }

  /// Whether backward reads the buffer that was passed to forward (so it must stay alive until
  /// then). False when the layer saved the input, copied what it needs, or needs nothing of it.
  [[nodiscard]] virtual bool reads_input_in_backward() const noexcept { return true; }
  /// Whether backward reads the output buffer forward returned (with an output quantizer that
  /// is the quantized copy, which backward never reads).
  [[nodiscard]] virtual bool reads_output_in_backward() const noexcept {
    return out_q_.is_identity() && reads_own_output();
  }
  /// Frees the output buffer until the next forward pass. sequential calls this in
  /// memory-saving mode once no layer needs the buffer.
  virtual void release_output() {
    detail::free_buffer(yq_);
    if (out_q_.is_identity() || (memory_saving_ && !reads_own_output())) release_output_impl();
  }
  /// Frees the input-gradient buffer until the next backward pass.
  virtual void release_input_grad() {}

  /// Trainable parameters (owned by the layer; pointers stay valid for its lifetime).
  virtual std::vector<parameter*> parameters() { return {}; }
  /// Draws initial parameter values (He for weights followed by rectifiers, ones/zeros for
  /// batch-norm scales/shifts, zero biases).
  virtual void initialize(std::mt19937_64& /*engine*/) {}
  /// Sub-layers of a composite layer (residual, block, sequential); empty for leaves.
  virtual std::vector<layer*> children() { return {}; }
  /// What a model file stores of the layer besides weights and bias (nn::export_model): by
  /// default every parameter, keyed by its name after the last '.' ("batch_norm.gamma" ->
  /// "gamma"). A layer with other state (running statistics) adds it.
  virtual std::vector<state_tensor> state() {
    std::vector<state_tensor> out;
    for (parameter* p : parameters()) {
      const std::size_t dot = p->name.rfind('.');
      out.push_back({dot == std::string::npos ? p->name : p->name.substr(dot + 1),
                     {p->value.shape().begin(), p->value.shape().end()},
                     {p->value.data(), p->value.size()}});
    }
    return out;
  }
  /// The numbers a model file stores of the layer (hyper-parameters its factory reads back
  /// beyond shapes and window; nn::layer_registry).
  [[nodiscard]] virtual std::vector<layer_attribute> attributes() const { return {}; }

  /// The description printed by summaries and read by the energy model.
  [[nodiscard]] virtual layer_description describe() const {
    layer_description d;
    d.kind = kind_;
    d.input = in_;
    d.output = out_;
    d.output_format = out_q_.info();
    d.output_format_name = out_q_.name();
    return d;
  }

  /// Sets the output (activation) quantizer. Throws for a format with learned steps (lsq):
  /// only weight quantizers keep steps as a parameter.
  void set_output_quantizer(quantizer q) {
    if (q.learned())
      throw invalid_argument("qnas::nn::" + kind_ + "::set_output_quantizer",
                             q.name() + " learns its steps, which only a layer's weights can hold; quantize activations "
                                        "with a fixed or data-dependent format (e.g. scaled<fixed_point<8, 0>, alpha_auto_po2<>>)");
    out_q_ = std::move(q);
  }
  [[nodiscard]] const quantizer& output_quantizer() const noexcept { return out_q_; }
  /// Engine for stochastic-rounding quantizers (owned by the network).
  virtual void set_engine(quantizer::engine_type* engine) { engine_ = engine; }

 protected:
  virtual const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) = 0;
  virtual const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_input_grad) = 0;

  /// Checks that `x` is a batch of this layer's input shape; returns the batch size.
  std::size_t check_input(const xt::xarray<float>& x) const {
    const std::size_t rank = in_.rank == 1 ? 2 : 4;
    const bool ok = x.dimension() == rank && x.size() == x.shape()[0] * in_.size() &&
                    (rank == 2 || (x.shape()[1] == in_.h && x.shape()[2] == in_.w && x.shape()[3] == in_.c));
    if (!ok) {
      std::string got = "[";
      for (std::size_t i = 0; i < x.dimension(); ++i) got += (i ? "," : "") + std::to_string(x.shape()[i]);
      throw invalid_argument("qnas::nn::" + kind_, qnas::detail::cat("expected a batch of shape [n,", to_string(in_).substr(1),
                                                                " but got ", got, "]"));
    }
    return x.shape()[0];
  }

  /// Composite layers (sequential) grow their output shape as layers are appended.
  void set_output_shape(tensor_shape s) noexcept { out_ = s; }

  /// Whether backward_impl reads the buffer forward_impl returned (the float output before the
  /// output quantizer). Conservative default: yes.
  [[nodiscard]] virtual bool reads_own_output() const noexcept { return true; }
  /// Frees the buffer forward_impl returns (no-op by default).
  virtual void release_output_impl() {}

  /// Whether forward_impl runs for forward_relu: apply max(y, 0) to the output before returning.
  [[nodiscard]] bool relu_epilogue() const noexcept { return relu_epilogue_; }

  /// Saves the forward input through the saver in training (no-op without one).
  void save_input(const xt::xarray<float>& x, bool training) {
    if (saver_ != nullptr && training)
      saver_->save(std::span<const float>(x.data(), x.size()), std::span<const std::size_t>(x.shape().data(), x.dimension()));
  }
  /// Restores the saved input into `out` for backward.
  void restore_input(xt::xarray<float>& out) { saver_->restore(out); }

  quantizer::engine_type* engine_ = nullptr;
  xt::xarray<float> empty_{};  // returned by backward when no input gradient is wanted
  activation_saver* saver_ = nullptr;
  bool memory_saving_ = false;

 private:
  bool relu_epilogue_ = false;
  std::string kind_;
  tensor_shape in_, out_;
  quantizer out_q_{};
  const xt::xarray<float>* y_pre_ = nullptr;
  xt::xarray<float> yq_, dyq_;
  std::vector<std::uint64_t> inside_;  // memory saving: 1 bit per output, inside the format's range
};

/// Weights as a model file holds them (nn::load_model): values that are already values of the
/// layer's weight format, and the encoding they were read from (element codes and headers, as
/// qnas::encode packs them).
struct stored_weights {
  xt::xarray<float> values;
  std::vector<std::uint8_t> codes, headers;
};

/// A layer with a weight tensor and an optional bias, each fake-quantized on every forward pass.
/// Derived classes use `wq()` / `bq()` (the quantized values) in their arithmetic and call
/// `accumulate_weight_grad` / `accumulate_bias_grad` with gradients w.r.t. those values.
class weighted_layer : public layer {
 public:
  weighted_layer(std::string kind, tensor_shape in, tensor_shape out, layer_formats f)
      : layer(std::move(kind), in, out) {
    set_output_quantizer(std::move(f.output));
    set_bias_quantizer(std::move(f.bias));
    wq_fmt_ = std::move(f.weights);
  }

  parameter& weights() noexcept { return w_; }
  parameter& bias() noexcept { return b_; }
  [[nodiscard]] bool has_bias() const noexcept { return use_bias_; }
  std::vector<parameter*> parameters() override {
    std::vector<parameter*> p{&w_};
    if (use_bias_) p.push_back(&b_);
    if (wq_fmt_.learned()) p.push_back(&steps_);
    return p;
  }
  /// Weights, bias and learned steps are stored with their formats (nn::export_model); a
  /// weighted layer has no other state.
  std::vector<state_tensor> state() override { return {}; }
  /// Turns the bias on (batch-norm folding gives a layer without bias a shift); keeps values.
  void enable_bias() {
    if (b_.value.size() != out_c()) {
      b_.value = xt::zeros<float>({out_c()});
      b_.grad = xt::zeros<float>({out_c()});
    }
    use_bias_ = true;
  }
  /// Sets the weight quantizer. A format with learned steps (lsq) adds the parameter
  /// "<kind>.weight_step" (one step per tensor or per output channel), which starts at zero:
  /// the next forward pass sets each zero step from the weights (LSQ's initialisation).
  void set_weight_quantizer(quantizer q) {
    wq_fmt_ = std::move(q);
    pinned_w_.reset();
    reset_weight_steps();
  }
  /// Sets the weights to stored values of the weight format, used as they are: while the
  /// weights keep exactly these values, forward passes use them without quantizing them again,
  /// and pinned_weights() returns them with their encoding. A format whose scales follow the
  /// data (alpha 'auto' of ternary and binary, a constant alpha on fixed point) does not give its
  /// own values back when it quantizes them again: the scale found from quantized values
  /// differs in the last bits. Pinning is how a loaded model computes what the exported one did
  /// (nn::load_model). Any change to the weights (an optimizer step, batch-norm folding, a new
  /// weight quantizer) ends it, and quantization resumes. Throws qnas::invalid_argument when
  /// the shape differs from the weights'.
  void pin_weights(stored_weights s) { pin(w_, std::move(s), pinned_w_, "pin_weights"); }
  /// pin_weights for the bias (with the bias quantizer).
  void pin_bias(stored_weights s) { pin(b_, std::move(s), pinned_b_, "pin_bias"); }
  /// The pinned weights while the weights still hold exactly their values, else nullptr.
  [[nodiscard]] const stored_weights* pinned_weights() const noexcept { return holds(pinned_w_, w_) ? &*pinned_w_ : nullptr; }
  /// The pinned bias while the bias still holds exactly its values, else nullptr.
  [[nodiscard]] const stored_weights* pinned_bias() const noexcept {
    return use_bias_ && holds(pinned_b_, b_) ? &*pinned_b_ : nullptr;
  }
  /// Sets the bias quantizer. Throws for a format with learned steps (lsq).
  void set_bias_quantizer(quantizer q) {
    if (q.learned())
      throw invalid_argument("qnas::nn::" + kind() + "::set_bias_quantizer",
                             q.name() + " learns its steps, which only a layer's weights can hold; quantize the bias "
                                        "with a fixed or data-dependent format");
    bq_fmt_ = std::move(q);
    pinned_b_.reset();
  }
  /// The learned steps of the weight quantizer (empty unless it is an lsq format); 0 marks a
  /// step not yet initialised from the weights.
  parameter& weight_steps() noexcept { return steps_; }
  /// Sets every learned step that is still 0 from the weights (LSQ's initial step), as the next
  /// forward pass would; a no-op for other formats.
  void initialize_weight_steps() {
    float* s = steps_.value.data();
    const std::size_t k = steps_.value.size();
    if (std::any_of(s, s + k, [](float v) { return v == 0.0f; })) {
      std::vector<float> init(k);
      wq_fmt_.init_steps(span_of(w_.value), shape_of(w_.value), init);
      for (std::size_t j = 0; j < k; ++j)
        if (s[j] == 0.0f) s[j] = init[j];
    }
  }
  [[nodiscard]] const parameter& weight_steps() const noexcept { return steps_; }
  [[nodiscard]] const quantizer& weight_quantizer() const noexcept { return wq_fmt_; }
  [[nodiscard]] const quantizer& bias_quantizer() const noexcept { return bq_fmt_; }

  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.params = w_.value.size() + (use_bias_ ? b_.value.size() : 0) + steps_.value.size();
    d.step_params = steps_.value.size();
    d.weight_format = wq_fmt_.info();
    d.weight_format_name = wq_fmt_.name();
    d.bias_format = bq_fmt_.info();
    return d;
  }

 protected:
  void init_params(std::vector<std::size_t> wshape, std::size_t bias_size, bool use_bias) {
    w_.name = kind() + ".weights";
    w_.value = xt::zeros<float>(wshape);
    w_.grad = xt::zeros<float>(wshape);
    w_.decay = true;
    use_bias_ = use_bias;
    b_.name = kind() + ".bias";
    b_.value = xt::zeros<float>({use_bias ? bias_size : std::size_t{0}});
    b_.grad = xt::zeros<float>({use_bias ? bias_size : std::size_t{0}});
    b_.decay = false;
    reset_weight_steps();
  }

  /// He-normal draw (std = sqrt(2 / fan_in)), the usual start for layers followed by ReLU.
  /// qnas's own Box-Muller (not std::normal_distribution), so any standard library gives the
  /// same initial weights for a seed.
  void he_normal(std::mt19937_64& engine, std::size_t fan_in) {
    qnas::detail::fill_normal(std::span<float>(w_.value.data(), w_.value.size()),
                              std::sqrt(2.0 / static_cast<double>(fan_in)), engine);
    std::fill(b_.value.begin(), b_.value.end(), 0.0f);
    std::fill(steps_.value.begin(), steps_.value.end(), 0.0f);  // set again from the new weights
  }

  /// Quantizes the weights and bias for this forward pass (a no-op for float32).
  void quantize_params() {
    if (!wq_fmt_.is_identity() && !use_pinned(pinned_w_, w_, wq_buf_)) {
      if (wq_fmt_.learned())
        quantize_learned_weights();
      else
        detail::quantize_into(wq_fmt_, w_.value, wq_buf_, engine_);
    }
    if (use_bias_ && !bq_fmt_.is_identity() && !use_pinned(pinned_b_, b_, bq_buf_))
      detail::quantize_into(bq_fmt_, b_.value, bq_buf_, engine_);
  }
  [[nodiscard]] const float* wq() const noexcept { return wq_fmt_.is_identity() ? w_.value.data() : wq_buf_.data(); }
  [[nodiscard]] const float* bq() const noexcept { return bq_fmt_.is_identity() ? b_.value.data() : bq_buf_.data(); }
  [[nodiscard]] bool weights_quantized() const noexcept { return !wq_fmt_.is_identity(); }

  /// Where the weight-gradient GEMM may write with beta = 1 (float32: straight into grad), or
  /// nullptr when it must go to a scratch buffer first (quantized: the STE mask is applied).
  float* direct_weight_grad() noexcept { return wq_fmt_.is_identity() ? w_.grad.data() : nullptr; }
  float* weight_grad_scratch() {
    detail::ensure_shape(gw_buf_, w_.value.shape());
    return gw_buf_.data();
  }
  /// Adds the scratch gradient (w.r.t. the quantized weights) to grad through the STE mask.
  void accumulate_weight_scratch() {
    if (wq_fmt_.learned()) {
      wq_fmt_.backward_with_steps(span_of(w_.value), span_of(gw_buf_), shape_of(w_.value), span_of(steps_.value),
                                  span_of(w_.grad), span_of(steps_.grad));
      return;
    }
    detail::ste_mask_accumulate(wq_fmt_.info(), w_.value.data(), gw_buf_.data(), w_.grad.data(), w_.grad.size());
  }
  /// Adds d(loss)/d(bias_q) (one value per bias element) to the bias grad through the STE mask.
  void accumulate_bias_grad(const float* g) {
    if (!use_bias_) return;
    if (bq_fmt_.is_identity()) {
      float* acc = b_.grad.data();
      for (std::size_t i = 0; i < b_.grad.size(); ++i) acc[i] += g[i];
    } else {
      detail::ste_mask_accumulate(bq_fmt_.info(), b_.value.data(), g, b_.grad.data(), b_.grad.size());
    }
  }

  /// Adds the bias gradient for output gradients dy[rows, bias size] (their column sums) through
  /// the STE mask; a no-op for a layer without bias.
  void accumulate_bias_grad_from_rows(const float* dy, std::size_t rows) {
    if (!use_bias_) return;
    detail::ensure_shape(gb_buf_, b_.value.shape());
    std::fill(gb_buf_.begin(), gb_buf_.end(), 0.0f);
    detail::add_column_sums(dy, rows, b_.value.size(), gb_buf_.data());
    accumulate_bias_grad(gb_buf_.data());
  }

  [[nodiscard]] std::size_t out_c() const noexcept { return output_shape().c; }

 private:
  static std::span<const float> span_of(const xt::xarray<float>& a) noexcept { return {a.data(), a.size()}; }
  static std::span<float> span_of(xt::xarray<float>& a) noexcept { return {a.data(), a.size()}; }
  static std::span<const std::size_t> shape_of(const xt::xarray<float>& a) noexcept {
    return {a.shape().data(), a.dimension()};
  }

  static bool holds(const std::optional<stored_weights>& p, const parameter& t) noexcept {
    return p && p->values.shape() == t.value.shape() &&
           (t.value.size() == 0 || std::memcmp(p->values.data(), t.value.data(), t.value.size() * sizeof(float)) == 0);
  }
  void pin(parameter& t, stored_weights s, std::optional<stored_weights>& slot, const char* fn) {
    if (s.values.shape() != t.value.shape())
      throw invalid_argument(qnas::detail::cat("qnas::nn::", kind(), "::", fn),
                             qnas::detail::cat("the stored tensor has ", s.values.size(), " elements in a shape other than the layer's (",
                                               t.value.size(), " elements)"));
    t.value = s.values;
    slot = std::move(s);
  }
  /// Copies pinned values into `buf` while `t` still holds them; drops a pin whose tensor changed.
  static bool use_pinned(std::optional<stored_weights>& p, const parameter& t, xt::xarray<float>& buf) {
    if (!p) return false;
    if (!holds(p, t)) {
      p.reset();  // the tensor changed: quantize it from now on
      return false;
    }
    detail::ensure_shape(buf, t.value.shape());
    std::copy(t.value.begin(), t.value.end(), buf.begin());
    return true;
  }

  /// Sizes the step parameter for the weight quantizer (zeros: not yet initialised).
  void reset_weight_steps() {
    steps_.name = kind() + ".weight_step";
    steps_.decay = false;
    const std::size_t k = wq_fmt_.learned() && w_.value.dimension() > 0 ? wq_fmt_.step_count(shape_of(w_.value)) : 0;
    steps_.value = xt::zeros<float>({k});
    steps_.grad = xt::zeros<float>({k});
  }

  /// Quantizes the weights with their learned steps, first setting every step that is still 0
  /// from the weights (LSQ's initial step). A step the optimizer drove to a negative or
  /// non-finite value stops the pass with an error naming the layer (lower the learning rate).
  void quantize_learned_weights() {
    initialize_weight_steps();
    const float* s = steps_.value.data();
    const std::size_t k = steps_.value.size();
    for (std::size_t j = 0; j < k; ++j)
      if (!(s[j] > 0.0f) || !std::isfinite(s[j]))
        throw invalid_argument("qnas::nn::" + kind() + "::forward",
                               qnas::detail::cat("the learned weight step ", j, " of ", wq_fmt_.name(), " is ", s[j],
                                                 "; a step must stay a finite number > 0 (lower the learning rate)"));
    detail::ensure_shape(wq_buf_, w_.value.shape());
    wq_fmt_.quantize_with_steps(span_of(w_.value), span_of(wq_buf_), shape_of(w_.value), span_of(steps_.value));
  }

 protected:

  parameter w_, b_;
  parameter steps_;  // learned steps of an lsq weight quantizer (empty otherwise)
  bool use_bias_ = true;
  quantizer wq_fmt_, bq_fmt_;
  xt::xarray<float> wq_buf_, bq_buf_, gw_buf_, gb_buf_;

 private:
  std::optional<stored_weights> pinned_w_, pinned_b_;  // pin_weights / pin_bias: stored values used as they are while unchanged
};

/// The output buffer `y_` and input-gradient buffer `dx_` of a leaf layer, with the
/// memory-saving hooks for a layer whose backward pass does not read its output: sequential may
/// free `y_` once the next layer has run, and `dx_` once the layer before has consumed it. A
/// layer whose backward reads `y_` (softmax) overrides reads_own_output.
template <class Base>
class with_buffers : public Base {
 public:
  using Base::Base;
  void release_input_grad() override { detail::free_buffer(dx_); }

 protected:
  [[nodiscard]] bool reads_own_output() const noexcept override { return false; }
  void release_output_impl() override { detail::free_buffer(y_); }

  xt::xarray<float> y_, dx_;
};

}  // namespace qnas::nn
