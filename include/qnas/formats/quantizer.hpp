// quantizer: a format chosen at run time (type-erased), for networks built from search candidates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>

#include "qnas/formats/ops.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define QNAS_QUANTIZE_AVX2 1
#endif

namespace qnas {

namespace detail {
/// Whether this CPU runs AVX2 (found once). The type-erased quantize loop of scalar formats then
/// runs in 8-wide vectors; see quantizer::run.
inline bool quantize_avx2_available() noexcept {
#if defined(QNAS_QUANTIZE_AVX2)
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return avx2;
#else
  return false;
#endif
}
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

  friend bool operator==(const quantizer& a, const quantizer& b) noexcept { return a.fn_ == b.fn_; }

 private:
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
};

}  // namespace qnas
