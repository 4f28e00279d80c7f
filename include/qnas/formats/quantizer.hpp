// quantizer: a format chosen at run time (type-erased), for networks built from search candidates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>

#include "qnas/formats/ops.hpp"

namespace qnas {

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
    return q;
  }

  [[nodiscard]] const format_info& info() const noexcept { return info_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool is_identity() const noexcept { return fn_ == nullptr; }
  [[nodiscard]] bool needs_engine() const noexcept { return stochastic_; }

  /// Quantizes `in` (row-major, `shape`) into `out` along `axis` (block formats). `out` may
  /// alias `in`. Stochastic formats draw from `engine`, which must then be non-null.
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
      auto round = detail::make_rounder<F>();
      detail::quantize_raw<F>(in, out, l, round);
    }
  }

  format_info info_ = float32_info;
  std::string name_ = "float32";
  void (*fn_)(const float*, float*, const detail::line_layout&, engine_type*) = nullptr;
  bool stochastic_ = false;
};

}  // namespace qnas
