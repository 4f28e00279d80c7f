// Binary formats {-s, +s} and modified binary {0, s} (QKeras `binary`, fixed alpha).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

/// Binary: values {-s, +s}, s = 2^ScaleExp (QKeras `binary(use_01=False, alpha=s)`).
///
/// Rule: q(x) = +s for x >= 0, -s for x < 0. QKeras computes sign(x) and then replaces
/// sign(0) = 0 by +1, so 0 and -0 both give +s; that is the one tie of "nearest" (0 is as far
/// from -s as from +s), and it goes to code 0: `rounding` is nearest_even (ties to the even
/// code). +-Inf give +-s. NaN propagates through quantize; encode throws (has_nan is false).
/// No stochastic variant: QKeras's stochastic binary draws from the data's statistics, not a
/// fixed format.
///
/// Code (1 bit): the sign bit, 0 = +s, 1 = -s.
template <int ScaleExp = 0>
struct binary {
  static_assert(ScaleExp >= -126 && ScaleExp <= 126, "binary<ScaleExp>: ScaleExp must be in [-126, 126]");

  static constexpr float scale = detail::exp2i(ScaleExp);
  using rounding = nearest_even;
  static constexpr format_family family = format_family::binary;
  static constexpr bit_tuple tuple{1, 0, 0};
  static constexpr int bits = 1;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = scale;
  static constexpr double min_value = -static_cast<double>(scale);
  static constexpr bool has_zero = false;
  static constexpr bool has_nan = false;

  static std::string name() { return "binary<" + std::to_string(ScaleExp) + ">"; }

  template <class R>
  static float quantize_one(float x, R&) noexcept {
    if (detail::is_nan(x)) return x;
    return x < 0.0f ? -scale : scale;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R&) {
    if (detail::is_nan(x))
      throw invalid_argument("qnas::binary::encode_one", name() + " has no NaN code; the input is NaN");
    return x < 0.0f ? 1u : 0u;
  }

  static float decode_one(std::uint32_t code) noexcept { return (code & 1u) ? -scale : scale; }
};

/// The rounding rule of a binary01 format whose threshold is not s/2: x > Threshold gives s,
/// anything else 0 (a step). The result is one of the two grid values around x, not
/// necessarily the nearer one.
struct step_threshold {
  static constexpr bool needs_engine = false;
  static constexpr const char* name = "step_threshold";
};

/// Modified binary: values {0, s}, s = 2^ScaleExp (QKeras `binary(use_01=True, alpha=s)`).
///
/// Two rules, side by side:
///  - qnas's (ZeroToScale = false, the default): q(x) = s if x > Threshold, else 0. QKeras's
///    rule is x >= 0 -> s (Threshold 0, the default here), with one documented deviation:
///    x = 0 (and -0) gives 0, not s, because 0 is a value of the format and must quantize to
///    itself (QKeras's q(q(-1)) = q(0) = 1 is not idempotent). Threshold = s/2 gives the
///    nearest value with the tie going to 0 (code 0, even): `rounding` is then nearest_even;
///    otherwise it is `step_threshold`. Threshold must lie in [0, s). Every law holds.
///  - QKeras's exactly (ZeroToScale = true, alias `binary_use01<ScaleExp>`): q(x) = s if x >= 0
///    (0 and -0 included: QKeras takes sign(x), replaces sign(0) by +1, then maps {-1, +1} to
///    {0, 1}), 0 if x < 0. Threshold must be 0. Not idempotent: q(0) = s although 0 is a value
///    (reached from every x < 0). Consequences: check_format reports idempotence, the
///    neighbour rule at x = 0 and the code-0 round trip; values<F>() lists only the codes c
///    with encode(decode(c)) == c, so it gives {s}, while has_zero and min_value say 0 (code 0
///    decodes to 0). Monotonicity and decode(encode(x)) == q(x) hold.
/// Both: +Inf gives s, -Inf gives 0. NaN propagates through quantize; encode throws.
///
/// Code (1 bit): 0 = 0, 1 = s.
template <int ScaleExp = 0, double Threshold = 0.0, bool ZeroToScale = false>
struct binary01 {
  static_assert(ScaleExp >= -126 && ScaleExp <= 126, "binary01<ScaleExp, ...>: ScaleExp must be in [-126, 126]");
  static_assert(Threshold >= 0.0 && Threshold < static_cast<double>(detail::exp2i(ScaleExp)),
                "binary01<ScaleExp, Threshold>: Threshold must be in [0, 2^ScaleExp)");
  static_assert(!ZeroToScale || Threshold == 0.0,
                "binary01<ScaleExp, Threshold, ZeroToScale>: ZeroToScale (QKeras use_01: x >= 0 -> 2^ScaleExp) "
                "needs Threshold == 0");

  static constexpr float scale = detail::exp2i(ScaleExp);
  static constexpr float threshold = static_cast<float>(Threshold);
  /// QKeras's rule: 0 (and -0) give s.
  static constexpr bool zero_to_scale = ZeroToScale;
  using rounding = std::conditional_t<!ZeroToScale && static_cast<double>(scale) / 2 == Threshold, nearest_even,
                                      step_threshold>;
  static constexpr format_family family = format_family::binary01;
  static constexpr bit_tuple tuple{0, 0, 1};
  static constexpr int bits = 1;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = scale;
  static constexpr double min_value = 0.0;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;

  static std::string name() {
    if constexpr (ZeroToScale) return "binary_use01<" + std::to_string(ScaleExp) + ">";
    std::string s = "binary01<" + std::to_string(ScaleExp);
    if (Threshold != 0.0) s += detail::cat(",threshold=", Threshold);
    return s + ">";
  }

  template <class R>
  static float quantize_one(float x, R&) noexcept {
    if (detail::is_nan(x)) return x;
    return up(x) ? scale : 0.0f;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R&) {
    if (detail::is_nan(x))
      throw invalid_argument("qnas::binary01::encode_one", name() + " has no NaN code; the input is NaN");
    return up(x) ? 1u : 0u;
  }

  static float decode_one(std::uint32_t code) noexcept { return (code & 1u) ? scale : 0.0f; }

 private:
  static bool up(float x) noexcept {
    if constexpr (ZeroToScale) return x >= 0.0f;
    else return x > threshold;
  }
};

/// QKeras `binary(use_01=True, alpha=2^ScaleExp)` exactly: x >= 0 (0 included) -> 2^ScaleExp,
/// x < 0 -> 0. Not idempotent (see binary01); binary01<ScaleExp> is the idempotent variant.
template <int ScaleExp = 0>
using binary_use01 = binary01<ScaleExp, 0.0, true>;

}  // namespace qnas
