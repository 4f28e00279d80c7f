// m-quant: fixed-point formats (sign + integer mantissa with a fixed power-of-two step).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "qnas/formats/concept.hpp"

namespace qnas {

/// Fixed point with `Bits` bits of which `Integer` are integer bits (QKeras `quantized_bits`
/// with alpha = 1). Values are k * step with step = 2^(Integer - Bits + KeepNegative) and code
/// k in [lo, hi]:
///   KeepNegative: lo = -2^(Bits-1) (+1 when Symmetric), hi = 2^(Bits-1) - 1
///   otherwise (the relu flavour): lo = 0, hi = 2^Bits - 1; negative inputs become 0.
/// Inputs are divided by the step, rounded by `Rounding` and clipped to [lo, hi] (saturation:
/// the format has no Inf; +-Inf saturate). NaN propagates through quantize; encode refuses it.
/// Codes are the two's complement of k in `Bits` bits (plain binary for the relu flavour); the
/// code -2^(Bits-1) of a Symmetric format is never produced and decodes to lo - 1 steps.
///
/// Above 24 bits (int32 accumulators and biases; QKeras `quantized_bits(32, ...)`): k no longer
/// fits a float exactly. The code is still the exact k (x / step is exact in float, and so is
/// rounding it to an integer; the clamp to [lo, hi] is done in double), but a code's *value*
/// is the float nearest to k * step: decode(c) == quantize(x) bit for bit, q is idempotent and
/// monotone, and codes with |k| > 2^24 share their float value with neighbouring codes (there
/// the values are simply float's grid). max_value / min_value are those floats:
/// fixed_point<32, 0>::max_value == 1.0 although code 2^31 - 1 means 1 - 2^-31, and
/// fixed_relu<32, 32>::max_value == 2^32. QKeras computes in float32 and clips the rounded
/// x / step to float32(-2^(Bits-1) + Symmetric) and float32(2^(Bits-1) - 1) (relu: 2^Bits - 1),
/// bounds that float32 rounds to +-2^(Bits-1) from 26 bits on (relu: to 2^Bits from 25 bits
/// on): the same floats qnas's rounding of lo * step and hi * step gives, so every value
/// QKeras returns is the float qnas returns; qnas differs only in also having the exact
/// integer code. values<F>() refuses formats above 16 bits.
template <int Bits, int Integer = 0, bool KeepNegative = true, bool Symmetric = false,
          rounding_policy Rounding = nearest_even>
struct fixed_point {
  // one rule for all widths; codes above 24 bits take another path (see above), not another rule
  static_assert(Bits >= 1 && Bits <= 32, "fixed_point<Bits, Integer, ...>: Bits must be in [1, 32]");
  static_assert(!KeepNegative || Bits >= 2,
                "fixed_point<Bits, Integer, KeepNegative>: a signed format (KeepNegative) needs Bits >= 2");
  static_assert(Integer <= Bits - static_cast<int>(KeepNegative),
                "fixed_point<Bits, Integer, ...>: Integer must be <= Bits - KeepNegative (integer bits above total)");
  static_assert(Integer >= -24, "fixed_point<Bits, Integer, ...>: Integer must be >= -24");
  static_assert(!Symmetric || KeepNegative,
                "fixed_point<..., KeepNegative, Symmetric>: Symmetric requires KeepNegative");

  using rounding = Rounding;
  static constexpr format_family family = format_family::fixed_point;
  static constexpr bit_tuple tuple = KeepNegative ? bit_tuple{1, 0, Bits - 1} : bit_tuple{0, 0, Bits};
  static constexpr int bits = Bits;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr int integer_bits = Integer;
  static constexpr bool keep_negative = KeepNegative;
  static constexpr bool symmetric = Symmetric;
  /// log2 of the step: values are multiples of 2^step_exponent.
  static constexpr int step_exponent = Integer - Bits + static_cast<int>(KeepNegative);
  static constexpr float step = detail::exp2i(step_exponent);
  /// The code range [lo_code, hi_code] (std::int64_t: fixed_relu<32> reaches 2^32 - 1).
  static constexpr std::int64_t hi_code =
      KeepNegative ? (std::int64_t{1} << (Bits - 1)) - 1 : (std::int64_t{1} << Bits) - 1;
  static constexpr std::int64_t lo_code =
      KeepNegative ? -(std::int64_t{1} << (Bits - 1)) + static_cast<int>(Symmetric) : 0;
  /// The values of hi_code and lo_code: exact up to 24 bits, the nearest float above.
  static constexpr double max_value = static_cast<double>(static_cast<float>(hi_code)) * step;
  static constexpr double min_value = static_cast<double>(static_cast<float>(lo_code)) * step;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;

  static std::string name() {
    std::string s = KeepNegative ? "fixed_point<" : "fixed_relu<";
    s += std::to_string(Bits) + "," + std::to_string(Integer);
    if (Symmetric) s += ",symmetric";
    if (!std::is_same_v<Rounding, nearest_even>) s += std::string(",") + Rounding::name;
    return s + ">";
  }

  /// The clipped, rounded code k as a float: exact up to 24 bits; above, the float nearest to
  /// k (x * 2^-step_exponent and its rounding are exact floats, and clamping a float to the
  /// nearest floats of lo and hi is the nearest float of clamping it to lo and hi).
  template <class R>
  QNAS_ALWAYS_INLINE static float code_value(float x, R& round) noexcept {
    const float v = round(x * detail::exp2i(-step_exponent));
    return detail::clamp(v, static_cast<float>(lo_code), static_cast<float>(hi_code));
  }

  template <class R>
  QNAS_ALWAYS_INLINE static float quantize_one(float x, R& round) noexcept {
    // + 0.0f turns a -0 code (a small negative input) into +0, the value decode gives: the
    // integer codes have no negative zero, and quantize must equal decode(encode(x)) bit for bit
    return code_value(x, round) * step + 0.0f;
  }

  template <class R>
  static std::uint32_t encode_one(float x, R& round) noexcept {
    if constexpr (Bits <= 24) {
      const auto k = static_cast<std::int32_t>(code_value(x, round));
      return static_cast<std::uint32_t>(k) & mask;
    } else {
      // Clamp in double, where lo_code and hi_code are exact (their floats may lie outside the
      // int32 / uint32 range). encode<F>() refuses NaN before calling this; called directly,
      // NaN gives code 0 rather than an undefined conversion.
      const float r = round(x * detail::exp2i(-step_exponent));
      if (detail::is_nan(r)) return 0u;
      const double v = r;
      const double k = v < static_cast<double>(lo_code) ? static_cast<double>(lo_code)
                                                         : (v > static_cast<double>(hi_code) ? static_cast<double>(hi_code) : v);
      return static_cast<std::uint32_t>(static_cast<std::int64_t>(k)) & mask;
    }
  }

  static float decode_one(std::uint32_t code) noexcept {
    if constexpr (Bits <= 24) {
      std::int32_t k = static_cast<std::int32_t>(code & mask);
      if constexpr (KeepNegative)
        if (k & (1 << (Bits - 1))) k -= (1 << Bits);  // sign-extend
      return static_cast<float>(k) * step;
    } else {
      auto k = static_cast<std::int64_t>(code & mask);
      if constexpr (KeepNegative)
        if ((k >> (Bits - 1)) & 1) k -= std::int64_t{1} << Bits;  // sign-extend
      // the nearest float to k, then an exact power-of-two scaling: the nearest float to k * step
      return static_cast<float>(k) * step;
    }
  }

 private:
  static constexpr std::uint32_t mask = Bits == 32 ? 0xFFFFFFFFu : ((1u << (Bits == 32 ? 0 : Bits)) - 1u);
};

/// The relu flavour (QKeras `quantized_relu(Bits, Integer)`): unsigned, negatives clip to 0.
template <int Bits, int Integer = 0, rounding_policy Rounding = nearest_even>
using fixed_relu = fixed_point<Bits, Integer, false, false, Rounding>;

/// Integer-valued two's-complement formats.
using int8 = fixed_point<8, 7>;
using int4 = fixed_point<4, 3>;
using uint8 = fixed_relu<8, 8>;

}  // namespace qnas
