// Learned step sizes (LSQ, Esser et al., ICLR 2020): a uniform quantizer whose step is a trainable parameter.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"
#include "qnas/formats/detail/bits.hpp"
#include "qnas/formats/policies.hpp"
#include "qnas/formats/scale_axis.hpp"

namespace qnas {

/// LSQ: v' = round(clip(v / s, -Qn, Qp)) * s, with s > 0 a step size learned by gradient
/// descent (Esser, McKinley, Bablani, Appuswamy, Modha, "Learned Step Size Quantization", ICLR
/// 2020), over the integer grid of a fixed-point Unit: Qn = -Unit::lo_code, Qp = Unit::hi_code
/// (fixed_point<B, I>: Qn = 2^(B-1), Qp = 2^(B-1) - 1; symmetric: Qn = Qp; fixed_relu<B, I>:
/// Qn = 0, Qp = 2^B - 1). Unit's Integer is irrelevant: the learned step replaces its fixed one.
/// `round` is round-half-to-even (torch.round, which the paper's code uses); v / s is the float
/// division, rounded once. Axis per_tensor: one step; per_channel: one step per index of the
/// last axis (the output channel of HWIO conv and [in, out] dense weights); a rank-0/1 tensor
/// has one.
///
/// In a layer (`nn::weighted_layer`, weights only), the steps are a parameter of the layer
/// ("<kind>.weight_step", no weight decay). They start as the paper says, s = 2 mean|v| / sqrt(Qp)
/// over the group's weights at the first forward pass, and the backward pass gives them the
/// paper's gradient
///   d v'/d s = round(v/s) - v/s   where -Qn < v/s < Qp,
///            = -Qn                where v/s <= -Qn,
///            = Qp                 where v/s >= Qp,
/// scaled by g = 1 / sqrt(N * Qp), N the number of values sharing the step, while the values
/// get the straight-through gradient 1 where -Qn < v/s < Qp and 0 elsewhere.
///
/// Without a layer's steps (`qnas::quantize<lsq<...>>`, `encode`, `check_format`), the format
/// quantizes with the paper's initial step of the tensor at hand: it is then a data-dependent
/// scale like `scaled<..., alpha_auto>`, and `encode` stores the step of each group as its
/// float32 header. Corners: a group whose mean |v| over its finite values is 0 (all zeros, or
/// no finite value) starts at s = 1; NaN stays NaN, +-Inf saturates at -Qn or Qp steps.
template <class Unit, class Axis = per_channel>
struct lsq {
  static_assert(detail::scaled_fixed_unit<Unit>,
                "lsq<Unit, Axis>: Unit must be a uniform fixed_point<B, I, KeepNegative, Symmetric> (LSQ learns the "
                "step of a uniform integer grid; po2, minifloat, ternary, binary and block formats are not one)");
  static_assert(!detail::scaled_fixed_unit<Unit> ||
                    (std::is_same_v<typename Unit::rounding, nearest_even> && Unit::bits <= 16),
                "lsq<Unit, Axis>: Unit must round to nearest even (LSQ rounds half to even) and have at most 16 bits");
  static_assert(std::is_same_v<Axis, per_channel> || std::is_same_v<Axis, per_tensor>,
                "lsq<Unit, Axis>: Axis must be per_channel or per_tensor");

 private:
  static constexpr bool ok = detail::scaled_fixed_unit<Unit>;
  static constexpr int b = [] {
    if constexpr (ok) return Unit::bits >= 1 && Unit::bits <= 16 ? Unit::bits : 8;
    else return 8;
  }();
  static constexpr bool is_signed = [] {
    if constexpr (ok) return Unit::keep_negative;
    else return true;
  }();

 public:
  using unit = Unit;
  /// Marks a format whose step is learned (learned_scale_format).
  static constexpr bool learned_scale = true;
  static constexpr int qn = [] {
    if constexpr (ok) return static_cast<int>(-Unit::lo_code);
    else return 1;
  }();
  static constexpr int qp = [] {
    if constexpr (ok) return static_cast<int>(Unit::hi_code);
    else return 1;
  }();

  using axis = Axis;
  using rounding = nearest_even;
  static constexpr format_family family = format_family::fixed_point;
  static constexpr bit_tuple tuple = is_signed ? bit_tuple{1, 0, b - 1} : bit_tuple{0, 0, b};
  static constexpr int bits = b;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 3.4028234663852886e38;
  static constexpr double min_value = is_signed ? -3.4028234663852886e38 : 0.0;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;
  static constexpr bool per_channel_scales = std::is_same_v<Axis, per_channel>;
  /// One float32 step per group in encoded<F>::headers.
  static constexpr int header_bits = 32;
  /// A layer multiplies each integer output by its float step (energy model).
  static constexpr scale_kind group_scale = scale_kind::floating;

  static std::string name() {
    return detail::cat("lsq<", Unit::name(), ",", Axis::name, ">");
  }

  /// Number of steps of a tensor of `rows` rows of `groups` values (channels last).
  static constexpr std::size_t step_count(std::size_t groups) noexcept { return per_channel_scales ? groups : 1; }

  /// The paper's initial steps, s = 2 mean|v| / sqrt(Qp), per group (see the class comment for
  /// groups without finite non-zero values). Sums in double in row order: the same steps on any
  /// thread count.
  static void init_steps(const float* in, float* steps, std::size_t rows, std::size_t groups) {
    const std::size_t k = step_count(groups);
    std::vector<double> sum(k, 0.0);
    std::vector<std::size_t> count(k, 0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g) {
        const float v = in[r * groups + g];
        if (!std::isfinite(v)) continue;
        const std::size_t j = per_channel_scales ? g : 0;
        sum[j] += std::fabs(static_cast<double>(v));
        ++count[j];
      }
    const double root = std::sqrt(static_cast<double>(qp));
    for (std::size_t j = 0; j < k; ++j) {
      const double mean = count[j] ? sum[j] / static_cast<double>(count[j]) : 0.0;
      const float s = static_cast<float>(2.0 * mean / root);
      steps[j] = (s > 0.0f && std::isfinite(s)) ? s : 1.0f;
    }
  }

  /// The integer level round(clip(v / s, -Qn, Qp)) (NaN for NaN).
  static float level(float v, float s) noexcept {
    const float t = v / s;
    if (!(t > static_cast<float>(-qn))) return t != t ? t : static_cast<float>(-qn);
    if (!(t < static_cast<float>(qp))) return static_cast<float>(qp);
    return detail::round_half_even(t);
  }

  /// Quantizes `rows` rows of `groups` values with the given steps (step_count(groups) of them,
  /// each > 0). `out` may alias `in`.
  static void quantize_rows_with(const float* in, float* out, const float* steps, std::size_t rows,
                                 std::size_t groups) {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g) {
        const float s = steps[per_channel_scales ? g : 0];
        out[r * groups + g] = level(in[r * groups + g], s) * s + 0.0f;
      }
  }

  /// The LSQ backward pass: adds the straight-through gradient of the values to `din` and the
  /// paper's (scaled) step gradient to `dsteps`, from `dout` = d loss / d v'. Step gradients
  /// are summed in double in row order.
  static void backward_rows(const float* in, const float* dout, const float* steps, float* din, float* dsteps,
                            std::size_t rows, std::size_t groups) {
    const std::size_t k = step_count(groups);
    const std::size_t per_step = per_channel_scales ? rows : rows * groups;
    const double gscale = per_step ? 1.0 / std::sqrt(static_cast<double>(per_step) * qp) : 0.0;
    std::vector<double> acc(k, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t i = r * groups + g, j = per_channel_scales ? g : 0;
        const float t = in[i] / steps[j];
        const float d = dout[i];
        if (t > static_cast<float>(-qn) && t < static_cast<float>(qp)) {
          din[i] += d;
          acc[j] += static_cast<double>(d) * (static_cast<double>(detail::round_half_even(t)) - static_cast<double>(t));
        } else if (t <= static_cast<float>(-qn)) {
          acc[j] -= static_cast<double>(d) * qn;
        } else if (t >= static_cast<float>(qp)) {
          acc[j] += static_cast<double>(d) * qp;
        }  // NaN: no gradient
      }
    for (std::size_t j = 0; j < k; ++j) dsteps[j] += static_cast<float>(acc[j] * gscale);
  }

  // --- the tensor_scaled_format interface: quantization with the initial step of the data ---

  static void quantize_rows(const float* in, float* out, std::size_t rows, std::size_t groups) {
    std::vector<float> s(step_count(groups));
    init_steps(in, s.data(), rows, groups);
    quantize_rows_with(in, out, s.data(), rows, groups);
  }

  /// Element codes: the level as a Bits-bit two's-complement (signed) or unsigned integer.
  static void encode_rows_with(const float* in, std::uint32_t* codes, const float* steps, std::size_t rows,
                               std::size_t groups) {
    constexpr std::uint32_t mask = (std::uint32_t{1} << b) - 1u;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g) {
        const float l = level(in[r * groups + g], steps[per_channel_scales ? g : 0]);
        const int k = l != l ? 0 : static_cast<int>(l);  // NaN has no code: it encodes as 0
        codes[r * groups + g] = static_cast<std::uint32_t>(k) & mask;
      }
  }

  static void encode_rows(const float* in, std::uint32_t* codes, std::uint32_t* headers, std::size_t rows,
                          std::size_t groups) {
    std::vector<float> s(step_count(groups));
    init_steps(in, s.data(), rows, groups);
    encode_rows_with(in, codes, s.data(), rows, groups);
    for (std::size_t j = 0; j < s.size(); ++j) headers[j] = detail::to_bits(s[j]);
  }

  static void decode_rows(const std::uint32_t* codes, const std::uint32_t* headers, float* out, std::size_t rows,
                          std::size_t groups) {
    const std::size_t k = step_count(groups);
    std::vector<float> s(k);
    for (std::size_t j = 0; j < k; ++j) s[j] = header_step(headers[j]);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g)
        out[r * groups + g] = static_cast<float>(code_level(codes[r * groups + g])) * s[per_channel_scales ? g : 0] + 0.0f;
  }

  /// The integer level of a code.
  static int code_level(std::uint32_t code) noexcept {
    constexpr std::uint32_t mask = (std::uint32_t{1} << b) - 1u;
    code &= mask;
    if constexpr (is_signed)
      return (code >> (b - 1)) ? static_cast<int>(code) - (1 << b) : static_cast<int>(code);
    else
      return static_cast<int>(code);
  }

  /// The step a header stands for. Throws qnas::invalid_argument for a step that is not a
  /// finite float > 0 (encode never writes one: the data is damaged).
  static float header_step(std::uint32_t h) {
    const float s = detail::from_bits(h);
    if (!(s > 0.0f) || !std::isfinite(s))
      throw invalid_argument("qnas::decode", detail::cat(name(), ": step ", s, " is not a finite number > 0"));
    return s;
  }
};

/// A format whose scale is a trainable parameter (lsq): layers keep its steps as a parameter.
template <class F>
concept learned_scale_format = tensor_scaled_format<F> && requires {
  requires F::learned_scale;
  { F::qn } -> detail::constant_of<int>;
  { F::qp } -> detail::constant_of<int>;
} && requires(const float* in, float* out, const float* steps, float* dsteps, std::uint32_t* codes, std::size_t n) {
  { F::step_count(n) } -> std::same_as<std::size_t>;
  { F::init_steps(in, out, n, n) };
  { F::quantize_rows_with(in, out, steps, n, n) };
  { F::encode_rows_with(in, codes, steps, n, n) };
  { F::backward_rows(in, in, steps, out, dsteps, n, n) };
};

}  // namespace qnas
