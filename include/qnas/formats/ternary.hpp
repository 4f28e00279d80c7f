// Ternary format {-s, 0, +s} with a fixed scale and threshold (QKeras `ternary`, fixed alpha).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

/// The rounding rule of a ternary format whose threshold is not s/2: |x| >= Threshold gives
/// +-s, anything smaller gives 0 (a dead zone). Values still go to one of the two grid values
/// around x, but not necessarily the nearer one.
struct dead_zone {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "dead_zone";
};

/// Ternary weights/activations: values {-s, 0, +s} with s = 2^ScaleExp (QKeras `ternary` with
/// a fixed alpha = s; a power of two is what hardware multiplies by with a shift).
///
/// Rule (QKeras, fixed alpha): q(x) = s * sign(x) if |x| >= Threshold, else 0. The threshold is
/// in input units and does NOT scale with alpha: QKeras's default for a fixed alpha is the
/// constant 0.33 (`default_threshold`), used here as the default. Threshold = s/2 gives the
/// nearest value with ties (|x| = s/2) going to +-s: `rounding` is then nearest_away;
/// otherwise it is `dead_zone`. The comparison is done in float, with float(Threshold), as
/// QKeras does in float32. Threshold must lie in (0, s] so that 0 and +-s quantize to
/// themselves.
///
/// Corners: -0 gives +0 (QKeras gives -0; the sign of zero is not a value). +-Inf give +-s.
/// NaN propagates through quantize; encode throws (has_nan is false). No stochastic variant:
/// QKeras refuses use_stochastic_rounding with a fixed alpha.
///
/// Codes (2 bits): the two's complement of k in {-1, 0, 1}: 00 = 0, 01 = +s, 11 = -s. Code 10
/// (k = -2) is unused; it decodes to -2s, what a two's-complement multiplier would compute.
template <int ScaleExp = 0, double Threshold = 0.33>
struct ternary {
  static_assert(ScaleExp >= -126 && ScaleExp <= 126, "ternary<ScaleExp, ...>: ScaleExp must be in [-126, 126]");
  static_assert(Threshold > 0.0 && Threshold <= static_cast<double>(detail::exp2i(ScaleExp)),
                "ternary<ScaleExp, Threshold>: Threshold must be in (0, 2^ScaleExp]");

  static constexpr float scale = detail::exp2i(ScaleExp);
  static constexpr float threshold = static_cast<float>(Threshold);
  using rounding = std::conditional_t<static_cast<double>(scale) / 2 == Threshold, nearest_away, dead_zone>;
  static constexpr format_family family = format_family::ternary;
  static constexpr bit_tuple tuple{1, 0, 1};
  static constexpr int bits = 2;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = scale;
  static constexpr double min_value = -static_cast<double>(scale);
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = "ternary<" + std::to_string(ScaleExp);
    if (Threshold != 0.33) s += detail::cat(",threshold=", Threshold);
    return s + ">";
  }

  /// k in {-1, 0, 1} for a non-NaN x.
  QNAS_ALWAYS_INLINE static int level(float x) noexcept {
    if (!(detail::fabs(x) >= threshold)) return 0;
    return x < 0.0f ? -1 : 1;
  }

  template <class R>
  static float quantize_one(float x, R&) noexcept {
    if (detail::is_nan(x)) return x;
    return static_cast<float>(level(x)) * scale;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R&) {
    if (detail::is_nan(x))
      throw invalid_argument("qnas::ternary::encode_one", name() + " has no NaN code; the input is NaN");
    return static_cast<std::uint32_t>(level(x)) & 3u;
  }

  static float decode_one(std::uint32_t code) noexcept {
    const int k = (code & 2u) ? static_cast<int>(code & 3u) - 4 : static_cast<int>(code & 3u);
    return static_cast<float>(k) * scale;
  }
};

}  // namespace qnas
