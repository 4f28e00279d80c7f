// quantizer: a format chosen at run time (type-erased), for networks built from search candidates.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qnas/formats/detail/block_simd.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/ops.hpp"

#if defined(QNAS_BLOCK_AVX2)
#define QNAS_QUANTIZE_AVX2 1
#endif

namespace qnas {

namespace detail {
/// Whether this CPU runs AVX2 (found once, shared with the block formats' loops). The
/// type-erased quantize loop of scalar formats then runs in 8-wide vectors; see quantizer::run.
inline bool quantize_avx2_available() noexcept { return block_avx2_available(); }
}  // namespace detail

/// A number format as a value: its traits (`info`), its full name, and a pointer to the
/// quantize loop instantiated once for that format. Layers of run-time networks hold one per
/// weight/bias/activation, so a search candidate picks formats by index without the network
/// being instantiated per combination (DESIGN.md section 3, rule 1).
/// A default-constructed quantizer is float32: it copies its input unchanged.
class quantizer {
 public:
  using engine_type = std::mt19937_64;

  quantizer() = default;

  template <number_format F>
  static quantizer of() {
    quantizer q;
    q.info_ = info_of<F>();
    q.name_ = F::name();
    q.fn_ = &run<F>;
    q.stochastic_ = F::rounding::needs_engine;
    q.whole_tensor_ = tensor_scaled_format<F>;
    if constexpr (learned_scale_format<F>) q.learned_ = &learned_table<F>;
    return q;
  }

  [[nodiscard]] const format_info& info() const noexcept { return info_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool is_identity() const noexcept { return fn_ == nullptr; }
  [[nodiscard]] bool needs_engine() const noexcept { return stochastic_; }
  /// Whether the format computes its scales from the whole tensor (a tensor_scaled_format such
  /// as scaled<..., alpha_auto_po2<>>): callers must pass the whole tensor in one call, never a
  /// part of it (parts would get scales of their own).
  [[nodiscard]] bool whole_tensor() const noexcept { return whole_tensor_; }

  /// Quantizes `in` (row-major, `shape`) into `out` along `axis` (block formats; the channel
  /// axis of per-channel scaled formats). `out` may alias `in`. Stochastic formats draw from `engine`, which must then be non-null.
  void operator()(std::span<const float> in, std::span<float> out, std::span<const std::size_t> shape,
                  std::ptrdiff_t axis = last_axis, engine_type* engine = nullptr) const {
    const auto l = detail::layout_of(shape, axis, "qnas::quantizer");
    if (in.size() != l.size() || out.size() != l.size())
      throw invalid_argument("qnas::quantizer", detail::cat(name_, ": buffer sizes (", in.size(), ", ", out.size(),
                                                            ") do not match the shape's ", l.size(), " elements"));
    if (stochastic_ && engine == nullptr)
      throw invalid_argument("qnas::quantizer", name_ + " uses stochastic rounding and needs an engine");
    if (fn_ == nullptr) {
      if (in.data() != out.data()) std::copy(in.begin(), in.end(), out.begin());
      return;
    }
    fn_(in.data(), out.data(), l, engine);
  }

  // --- formats with learned steps (learned_scale_format, e.g. lsq): the caller owns the steps ---
  // A tensor is taken with its channels last: `shape`'s last axis holds the groups of
  // per-channel steps (the output channel of HWIO conv and [in, out] dense weights).

  /// Whether the format's steps are trainable parameters (lsq): the layer holding this quantizer
  /// keeps them and calls the functions below; operator() quantizes with the initial steps of
  /// the data instead.
  [[nodiscard]] bool learned() const noexcept { return learned_ != nullptr; }
  /// Number of steps of a tensor of `shape` (1 per tensor, or one per index of the last axis).
  [[nodiscard]] std::size_t step_count(std::span<const std::size_t> shape) const {
    return learned_checked("step_count").step_count(rows_groups(shape).second);
  }
  /// The format's initial steps for `in` (LSQ: 2 mean|v| / sqrt(Qp) per group).
  void init_steps(std::span<const float> in, std::span<const std::size_t> shape, std::span<float> steps) const {
    const auto& t = learned_checked("init_steps");
    const auto [rows, groups] = check_learned_sizes(in.size(), shape, steps.size(), t);
    t.init(in.data(), steps.data(), rows, groups);
  }
  /// Quantizes `in` into `out` (may alias) with the given steps, each a finite number > 0.
  void quantize_with_steps(std::span<const float> in, std::span<float> out, std::span<const std::size_t> shape,
                           std::span<const float> steps) const {
    const auto& t = learned_checked("quantize_with_steps");
    const auto [rows, groups] = check_learned_sizes(in.size(), shape, steps.size(), t);
    if (out.size() != in.size())
      throw invalid_argument("qnas::quantizer::quantize_with_steps",
                             detail::cat(name_, ": output size ", out.size(), " differs from the input's ", in.size()));
    check_steps("quantize_with_steps", steps);
    t.quantize(in.data(), out.data(), steps.data(), rows, groups);
  }
  /// Backward pass through quantize_with_steps: adds d loss / d in (straight-through inside the
  /// range) to `din` and d loss / d steps to `dsteps`, from `dout` = d loss / d out.
  void backward_with_steps(std::span<const float> in, std::span<const float> dout, std::span<const std::size_t> shape,
                           std::span<const float> steps, std::span<float> din, std::span<float> dsteps) const {
    const auto& t = learned_checked("backward_with_steps");
    const auto [rows, groups] = check_learned_sizes(in.size(), shape, steps.size(), t);
    if (dout.size() != in.size() || din.size() != in.size() || dsteps.size() != steps.size())
      throw invalid_argument("qnas::quantizer::backward_with_steps", name_ + ": gradient buffers do not match the tensor");
    t.backward(in.data(), dout.data(), steps.data(), din.data(), dsteps.data(), rows, groups);
  }
  /// Element codes (packed as qnas::encode packs them) of `in` quantized with the given steps,
  /// each a finite number > 0; the headers are the steps' float32 bits: decoding gives
  /// quantize_with_steps(in) exactly.
  [[nodiscard]] std::vector<std::uint32_t> codes_with_steps(std::span<const float> in, std::span<const std::size_t> shape,
                                                            std::span<const float> steps) const {
    const auto& t = learned_checked("codes_with_steps");
    const auto [rows, groups] = check_learned_sizes(in.size(), shape, steps.size(), t);
    check_steps("codes_with_steps", steps);
    std::vector<std::uint32_t> codes(in.size());
    t.encode(in.data(), codes.data(), steps.data(), rows, groups);
    return codes;
  }

  friend bool operator==(const quantizer& a, const quantizer& b) noexcept { return a.fn_ == b.fn_; }

 private:
  struct learned_ops {
    std::size_t (*step_count)(std::size_t groups) noexcept;
    void (*init)(const float*, float*, std::size_t, std::size_t);
    void (*quantize)(const float*, float*, const float*, std::size_t, std::size_t);
    void (*encode)(const float*, std::uint32_t*, const float*, std::size_t, std::size_t);
    void (*backward)(const float*, const float*, const float*, float*, float*, std::size_t, std::size_t);
  };
  template <learned_scale_format F>
  static constexpr learned_ops learned_table{&F::step_count, &F::init_steps, &F::quantize_rows_with,
                                             &F::encode_rows_with, &F::backward_rows};

  void check_steps(const char* fn, std::span<const float> steps) const {
    for (std::size_t j = 0; j < steps.size(); ++j)
      if (!(steps[j] > 0.0f) || !std::isfinite(steps[j]))
        throw invalid_argument(detail::cat("qnas::quantizer::", fn),
                               detail::cat(name_, ": step ", j, " is ", steps[j], "; a step must be a finite number > 0"));
  }
  const learned_ops& learned_checked(const char* fn) const {
    if (learned_ == nullptr)
      throw invalid_argument(detail::cat("qnas::quantizer::", fn), name_ + " has no learned steps (only lsq<...> formats do)");
    return *learned_;
  }
  /// (rows, groups) of a tensor with its channels last; rank 0 and 1 are one group.
  static std::pair<std::size_t, std::size_t> rows_groups(std::span<const std::size_t> shape) noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    if (shape.size() < 2 || shape.back() == 0) return {n, 1};
    return {n / shape.back(), shape.back()};
  }
  std::pair<std::size_t, std::size_t> check_learned_sizes(std::size_t n, std::span<const std::size_t> shape, std::size_t steps,
                                                          const learned_ops& t) const {
    const auto rg = rows_groups(shape);
    if (rg.first * rg.second != n)
      throw invalid_argument("qnas::quantizer", detail::cat(name_, ": buffer of ", n, " values does not match the shape's ",
                                                            rg.first * rg.second));
    if (steps != t.step_count(rg.second))
      throw invalid_argument("qnas::quantizer", detail::cat(name_, ": ", steps, " steps given, the tensor has ",
                                                            t.step_count(rg.second), " step groups"));
    return rg;
  }

  template <number_format F>
  static void run(const float* in, float* out, const detail::line_layout& l, engine_type* engine) {
    if constexpr (F::rounding::needs_engine) {
      auto round = detail::make_rounder<F>(*engine);
      detail::quantize_raw<F>(in, out, l, round);
    } else {
#if defined(QNAS_QUANTIZE_AVX2)
      if constexpr (scalar_format<F>)
        if (detail::quantize_avx2_available()) return run_avx2<F>(in, out, l.size());
#endif
      auto round = detail::make_rounder<F>();
      detail::quantize_raw<F>(in, out, l, round);
    }
  }

#if defined(QNAS_QUANTIZE_AVX2)
  /// The elementwise loop of a deterministic scalar format compiled for AVX2 (activation
  /// quantizers of QAT run it over every output). AVX2 without FMA: the same IEEE operations as
  /// the baseline build in wider vectors, and no multiply-add contraction, so the values are bit
  /// for bit those of quantize<F> (tests/formats/test_quantizer.cpp).
  /// Blocks of 8 with a fixed trip count vectorize at -O2 too (GCC's cheap cost model leaves
  /// loops of unknown length scalar), and `out` may alias `in`: a block is read before it is
  /// written.
  template <number_format F>
  __attribute__((target("avx2"))) static void run_avx2(const float* in, float* out, std::size_t n) {
    auto round = detail::make_rounder<F>();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      float block[8];
      for (std::size_t j = 0; j < 8; ++j) block[j] = F::quantize_one(in[i + j], round);
      for (std::size_t j = 0; j < 8; ++j) out[i + j] = block[j];
    }
    for (; i < n; ++i) out[i] = F::quantize_one(in[i], round);
  }
#endif

  format_info info_ = float32_info;
  std::string name_ = "float32";
  void (*fn_)(const float*, float*, const detail::line_layout&, engine_type*) = nullptr;
  bool stochastic_ = false;
  bool whole_tensor_ = false;
  const learned_ops* learned_ = nullptr;
};

}  // namespace qnas
