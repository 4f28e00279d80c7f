// How qnas number formats map to ONNX: the integer grid of a format, exact int8/uint8 weight codes, and the proof that QuantizeLinear/DequantizeLinear reproduce an activation quantizer.
//
// ONNX has one standard way to say "these values lie on an integer grid": an integer tensor
// (int8 or uint8) with a float scale and an integer zero point, read by DequantizeLinear as
// (q - zero_point) * scale, and produced from floats by QuantizeLinear as
// saturate(round_half_even(x / scale) + zero_point). A qnas format maps onto that only when it is
// such a grid and rounds the same way; everything here decides that from the format's typed
// traits (format_info) and checks it on the values, never from names.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "qnas/formats/concept.hpp"
#include "qnas/formats/quantizer.hpp"

namespace qnas {

/// The ONNX integer element types a format's codes can be stored in.
enum class onnx_integer_type : std::uint8_t { none, int8, uint8 };

constexpr const char* to_string(onnx_integer_type t) noexcept {
  switch (t) {
    case onnx_integer_type::none: return "none";
    case onnx_integer_type::int8: return "int8";
    case onnx_integer_type::uint8: return "uint8";
  }
  return "?";
}

/// A format as a uniform integer grid: every value is k * step for an integer code k in
/// [lo, hi], stored as `type` with zero point 0. `type` is none (and `why` says why) for formats
/// that are not such a grid of at most 8 bits with a fixed step.
struct onnx_integer_grid {
  onnx_integer_type type = onnx_integer_type::none;
  float step = 0.0f;
  std::int64_t lo = 0, hi = 0;
  std::string why;
  [[nodiscard]] bool ok() const noexcept { return type != onnx_integer_type::none; }
  /// The saturation range of `type`: [-128, 127] or [0, 255].
  [[nodiscard]] std::int64_t type_min() const noexcept { return type == onnx_integer_type::int8 ? -128 : 0; }
  [[nodiscard]] std::int64_t type_max() const noexcept { return type == onnx_integer_type::int8 ? 127 : 255; }
};

/// A format as a uniform grid of any width: every value is k * step for an integer code k in
/// [lo, hi] (`ok()`), or `why` says why not. QONNX's Quant takes any bit width, so this is the
/// part of integer_grid_of that does not depend on ONNX's 8-bit integer types. Formats whose
/// scale follows the data (scaled<...>, lsq<...>) get the grid of their unit format.
struct uniform_grid {
  float step = 0.0f;
  std::int64_t lo = 0, hi = 0;
  int bits = 0;  ///< the format's element bits
  std::string why;
  [[nodiscard]] bool ok() const noexcept { return why.empty() && step > 0.0f; }
};

/// The uniform grid of a format, from its traits: fixed point (signed: codes
/// [-2^(bits-1) (+1 symmetric), 2^(bits-1) - 1], unsigned: [0, 2^bits - 1], step = max_value /
/// hi), ternary ({-1, 0, 1} x scale), binary ({-1, 1} x scale) and binary01 ({0, 1} x scale), one
/// element per block and no scale bits beside the codes. Other families (floating, po2, block_fp,
/// codebook) are not grids.
inline uniform_grid uniform_grid_of(const format_info& f) {
  uniform_grid g;
  g.bits = f.bits;
  if (f.block_size != 1 || f.scale_bits != 0) {
    g.why = detail::cat("its elements share a scale per block of ", f.block_size,
                        " (a blocked DequantizeLinear needs opset 21)");
    return g;
  }
  switch (f.family) {
    case format_family::fixed_point:
      if (f.bits > 62) {
        g.why = detail::cat("it has ", f.bits, " bits");
        return g;
      }
      if (f.min_value < 0) {
        g.hi = (std::int64_t{1} << (f.bits - 1)) - 1;
      } else {
        g.hi = (std::int64_t{1} << f.bits) - 1;
      }
      g.step = static_cast<float>(f.max_value / static_cast<double>(g.hi));
      g.lo = static_cast<std::int64_t>(std::llround(f.min_value / static_cast<double>(g.step)));
      break;
    case format_family::ternary:
      g.step = static_cast<float>(f.max_value), g.lo = -1, g.hi = 1;
      break;
    case format_family::binary:
      g.step = static_cast<float>(f.max_value), g.lo = -1, g.hi = 1;
      break;
    case format_family::binary01:
      g.step = static_cast<float>(f.max_value), g.lo = 0, g.hi = 1;
      break;
    default:
      g.why = detail::cat("the ", to_string(f.family), " family is not a uniform integer grid");
      return g;
  }
  if (!(g.step > 0.0f) || !std::isfinite(g.step) ||
      static_cast<double>(g.lo) * g.step != f.min_value || static_cast<double>(g.hi) * g.step != f.max_value)
    g.why = "its range is not a whole number of steps";
  return g;
}

/// The integer grid of a format for ONNX's int8/uint8: uniform_grid_of with at most 8 bits and
/// no scale outside the codes (formats whose scale follows the data fix no step).
inline onnx_integer_grid integer_grid_of(const format_info& f) {
  onnx_integer_grid g;
  if (f.block_size != 1 || f.scale_bits != 0) {
    g.why = detail::cat("its elements share a scale per block of ", f.block_size,
                        " (a blocked DequantizeLinear needs opset 21)");
    return g;
  }
  if (f.group_scale != scale_kind::none) {
    g.why = "its scales follow the data (per tensor or channel), so the format fixes no step";
    return g;
  }
  const uniform_grid u = uniform_grid_of(f);
  if (u.step == 0.0f && f.bits <= 62) {  // not a grid family
    g.why = u.why;
    return g;
  }
  g.step = u.step, g.lo = u.lo, g.hi = u.hi;
  if (f.bits > 8) {
    g.why = detail::cat("it has ", f.bits, " bits; ONNX's integer types here hold at most 8");
    return g;
  }
  if (!u.ok()) {
    g.why = u.why;
    return g;
  }
  if (g.lo >= 0 && g.hi <= 255)  // unsigned formats (fixed_relu, binary01) as uint8
    g.type = onnx_integer_type::uint8;
  else if (g.lo >= -128 && g.hi <= 127)
    g.type = onnx_integer_type::int8;
  else
    g.why = "its codes do not fit int8 or uint8";
  return g;
}

/// Codes k of `values` on grid `g` such that float(k) * g.step equals each value bit for bit,
/// which is what DequantizeLinear computes; empty when a value is not such a multiple (NaN, -0,
/// a value off the grid or beyond the type's range).
inline std::vector<std::int32_t> exact_codes(std::span<const float> values, const onnx_integer_grid& g) {
  std::vector<std::int32_t> codes;
  if (!g.ok()) return codes;
  codes.reserve(values.size());
  for (const float v : values) {
    const float k = v / g.step;
    if (!(k >= static_cast<float>(g.type_min()) && k <= static_cast<float>(g.type_max())) || k != std::nearbyint(k))
      return {};
    const auto c = static_cast<std::int32_t>(k);
    if (std::bit_cast<std::uint32_t>(static_cast<float>(c) * g.step) != std::bit_cast<std::uint32_t>(v)) return {};
    codes.push_back(c);
  }
  return codes;
}

/// Per-channel scales and codes for values whose scale follows the data (scaled<...>
/// formats): channel c of `values` (row-major; element i is in channel (i / inner) % channels)
/// gets a scale s_c and codes k with float(k) * s_c equal to each value bit for bit, which is
/// what a per-axis DequantizeLinear computes. s_c is searched as m_c / j for j = 1, ..., max_code
/// (m_c the smallest non-zero magnitude of the channel: some code j * s_c holds it), and the first
/// that gives every value of the channel back is taken; codes lie in [-max_code - 1, max_code]
/// (signed) or [0, max_code]. Returns false (and leaves the outputs unspecified) when a channel
/// has none: NaN, -0, infinities, or values that are not multiples of one scale.
inline bool channel_grid(std::span<const float> values, std::size_t channels, std::size_t inner, bool is_signed,
                         std::int32_t max_code, std::vector<float>& scales, std::vector<std::int32_t>& codes) {
  if (channels == 0 || inner == 0) return false;
  scales.assign(channels, 1.0f);
  codes.assign(values.size(), 0);
  std::vector<float> smallest(channels, std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float a = std::fabs(values[i]);
    if (!std::isfinite(a) || (a == 0.0f && std::signbit(values[i])) || (!is_signed && values[i] < 0.0f)) return false;
    float& m = smallest[(i / inner) % channels];
    if (a != 0.0f && a < m) m = a;
  }
  const auto lo = static_cast<float>(is_signed ? -max_code - 1 : 0), hi = static_cast<float>(max_code);
  for (std::size_t c = 0; c < channels; ++c) {
    if (!std::isfinite(smallest[c])) continue;  // all zeros: scale 1, codes 0
    bool found = false;
    for (std::int32_t j = 1; j <= max_code && !found; ++j) {
      const float s = smallest[c] / static_cast<float>(j);
      if (!(s > 0.0f)) break;
      found = true;
      for (std::size_t i = c * inner; i < values.size() && found; i += (i % inner + 1 == inner) ? (channels - 1) * inner + 1 : 1) {
        const float k = std::nearbyint(values[i] / s);
        found = k >= lo && k <= hi &&
                std::bit_cast<std::uint32_t>(k * s + 0.0f) == std::bit_cast<std::uint32_t>(values[i]);
        if (found) codes[i] = static_cast<std::int32_t>(k);
      }
      if (found) scales[c] = s;
    }
    if (!found) return false;
  }
  return true;
}

/// How an activation (output) quantizer becomes standard ONNX operators: an optional
/// Clip(clip_min, clip_max), then QuantizeLinear / DequantizeLinear with `grid`'s step and type,
/// zero point 0. `ok()` only when qnas's quantizer and that chain agree on every probed input.
struct onnx_activation_qdq {
  onnx_integer_grid grid;
  bool clip = false;
  float clip_min = 0.0f, clip_max = 0.0f;
  std::size_t probed = 0;  ///< inputs compared with qnas's quantizer
  std::string why;         ///< why it is not expressible (empty when ok)
  [[nodiscard]] bool ok() const noexcept { return grid.ok() && why.empty(); }
};

namespace detail {

/// What Clip (optional) -> QuantizeLinear -> DequantizeLinear compute for one input, as the
/// ONNX specification defines them: x / scale rounded half to even, saturated to the type.
inline float onnx_qdq_reference(float x, const onnx_activation_qdq& a) {
  if (a.clip) x = std::min(std::max(x, a.clip_min), a.clip_max);
  const float r = std::nearbyint(x / a.grid.step);  // the default rounding mode: half to even
  const float lo = static_cast<float>(a.grid.type_min()), hi = static_cast<float>(a.grid.type_max());
  const auto k = static_cast<std::int32_t>(std::min(std::max(r, lo), hi));
  return static_cast<float>(k) * a.grid.step;
}

/// The probe inputs: every code of the type's range and four beyond on each side, each exactly,
/// at the half-way points above and below, one float either side of every half-way point, at the
/// quarter points; signed zeros, the smallest and largest floats, infinities; and 4096 values
/// spread over the float exponents. NaN is not probed (see docs/onnx.md).
inline std::vector<float> grid_probe_inputs(float step, std::int64_t kmin, std::int64_t kmax);

inline std::vector<float> activation_probe_inputs(const onnx_integer_grid& g) {
  return grid_probe_inputs(g.step, g.type_min(), g.type_max());
}

/// activation_probe_inputs for codes [kmin, kmax] of `step`: every code from kmin - 4 to kmax + 4
/// when there are at most 2^17 of them, else the 4096 codes at each end and 8192 spread between.
inline std::vector<float> grid_probe_inputs(float step, std::int64_t kmin, std::int64_t kmax) {
  std::vector<float> xs;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::int64_t> ks;
  if (kmax - kmin <= (std::int64_t{1} << 17)) {
    for (std::int64_t k = kmin - 4; k <= kmax + 4; ++k) ks.push_back(k);
  } else {
    for (std::int64_t k = kmin - 4; k < kmin + 4096; ++k) ks.push_back(k);
    for (std::int64_t k = kmax - 4096; k <= kmax + 4; ++k) ks.push_back(k);
    for (std::int64_t i = 1; i < 8192; ++i) ks.push_back(kmin + (kmax - kmin) / 8192 * i);
  }
  for (const std::int64_t k : ks) {
    const auto kf = static_cast<float>(k);
    for (const float f : {0.0f, 0.25f, 0.5f, 0.75f, -0.5f, -0.25f}) {
      const float x = (kf + f) * step;
      xs.insert(xs.end(), {x, -x, std::nextafter(x, inf), std::nextafter(x, -inf)});
    }
  }
  for (const float x : {0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                        std::numeric_limits<float>::max(), inf}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  std::uint64_t s = 0x9E3779B97F4A7C15ull;  // a fixed LCG: the same probe on every run
  for (int i = 0; i < 4096; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const auto bits = static_cast<std::uint32_t>(s >> 32);
    const float x = std::bit_cast<float>(bits & 0xFF7FFFFFu);  // any sign and exponent but NaN/Inf's
    if (std::isfinite(x)) xs.push_back(x);
  }
  return xs;
}

}  // namespace detail

/// Whether QuantizeLinear/DequantizeLinear (after a Clip when the format's range is narrower
/// than its integer type's) reproduce quantizer `q` exactly, and with which constants. The format
/// must be a fixed-point grid (integer_grid_of) with a power-of-two step, elementwise with a
/// deterministic rounding; the chain is then compared with `q` on activation_probe_inputs (every
/// code, every half-way point and its neighbours, both saturation sides, infinities): a format
/// that rounds half away from zero, toward zero or stochastically fails there and is refused.
inline onnx_activation_qdq activation_qdq_of(const quantizer& q) {
  onnx_activation_qdq a;
  const format_info& f = q.info();
  if (q.is_identity()) {
    a.why = "float32 needs no quantizer";
    return a;
  }
  if (q.needs_engine()) {
    a.why = "it rounds stochastically; QuantizeLinear rounds half to even";
    return a;
  }
  if (q.whole_tensor() || q.learned()) {
    a.why = "its scale follows the data; QuantizeLinear takes a constant scale";
    return a;
  }
  if (f.family != format_family::fixed_point) {
    a.why = detail::cat("no standard ONNX operator computes the ", to_string(f.family), " family");
    return a;
  }
  a.grid = integer_grid_of(f);
  if (!a.grid.ok()) {
    a.why = a.grid.why;
    return a;
  }
  int e = 0;
  if (std::frexp(a.grid.step, &e) != 0.5f) {
    a.why = "its step is not a power of two";
    return a;
  }
  if (a.grid.lo > a.grid.type_min() || a.grid.hi < a.grid.type_max()) {
    a.clip = true;
    a.clip_min = static_cast<float>(a.grid.lo) * a.grid.step;
    a.clip_max = static_cast<float>(a.grid.hi) * a.grid.step;
  }
  const std::vector<float> xs = detail::activation_probe_inputs(a.grid);
  std::vector<float> ys(xs.size());
  const std::size_t shape[1] = {xs.size()};
  q(xs, ys, shape);
  a.probed = xs.size();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const float want = detail::onnx_qdq_reference(xs[i], a);
    if (std::bit_cast<std::uint32_t>(ys[i]) != std::bit_cast<std::uint32_t>(want)) {
      std::ostringstream os;
      os.precision(9);  // every float distinct
      os << "QuantizeLinear/DequantizeLinear give " << want << " for the input " << xs[i] << " where " << q.name()
         << " gives " << ys[i] << " (it rounds otherwise than half to even)";
      a.why = os.str();
      return a;
    }
  }
  return a;
}

/// Rounding rules of a uniform grid, as the exporters name them: QONNX's Quant rounding_mode
/// (ROUND, HALF_UP, HALF_DOWN, UP, DOWN, CEIL, FLOOR) and Vivado/Vitis HLS's ap_fixed
/// quantization modes (AP_RND_CONV, AP_RND_INF, AP_RND_ZERO, AP_RND, AP_RND_MIN_INF, AP_TRN,
/// AP_TRN_ZERO) each name some of them.
enum class grid_rounding : std::uint8_t {
  half_even,         ///< to nearest, ties to even (QONNX ROUND, AP_RND_CONV, ONNX QuantizeLinear)
  half_away,         ///< to nearest, ties away from zero (QONNX HALF_UP, AP_RND_INF)
  half_toward_zero,  ///< to nearest, ties toward zero (QONNX HALF_DOWN, AP_RND_ZERO)
  half_up,           ///< to nearest, ties toward +infinity (AP_RND)
  half_down,         ///< to nearest, ties toward -infinity (AP_RND_MIN_INF)
  away,              ///< away from zero (QONNX UP)
  toward_zero,       ///< toward zero (QONNX DOWN, AP_TRN_ZERO)
  ceil,              ///< toward +infinity (QONNX CEIL)
  floor              ///< toward -infinity (QONNX FLOOR, AP_TRN)
};

constexpr const char* to_string(grid_rounding r) noexcept {
  switch (r) {
    case grid_rounding::half_even: return "half to even";
    case grid_rounding::half_away: return "half away from zero";
    case grid_rounding::half_toward_zero: return "half toward zero";
    case grid_rounding::half_up: return "half toward +infinity";
    case grid_rounding::half_down: return "half toward -infinity";
    case grid_rounding::away: return "away from zero";
    case grid_rounding::toward_zero: return "toward zero";
    case grid_rounding::ceil: return "toward +infinity";
    case grid_rounding::floor: return "toward -infinity";
  }
  return "?";
}

/// `y` rounded to an integer by rule `r` (a float in, a float out: |y| < 2^23 is where it matters).
inline float round_by(float y, grid_rounding r) noexcept {
  const float f = std::floor(y), c = std::ceil(y);
  // y - floor(y) in double: exact, where float would round -0.49999997 + 1 to a tie
  const bool tie = static_cast<double>(y) - static_cast<double>(f) == 0.5;
  switch (r) {
    case grid_rounding::half_even: return std::nearbyint(y);
    case grid_rounding::half_away: return std::round(y);
    case grid_rounding::half_toward_zero: return tie ? std::trunc(y) : std::round(y);
    case grid_rounding::half_up: return tie ? c : std::round(y);
    case grid_rounding::half_down: return tie ? f : std::round(y);
    case grid_rounding::away: return y < 0 ? f : c;
    case grid_rounding::toward_zero: return std::trunc(y);
    case grid_rounding::ceil: return c;
    case grid_rounding::floor: return f;
  }
  return y;
}

/// What a grid quantizer computes with rounding `r`, as QONNX's Quant defines it: x / step,
/// clamped to [lo, hi], rounded by `r`, times step (clamping before rounding gives the same as
/// after, the bounds being integers).
inline float grid_reference(float x, float step, std::int64_t lo, std::int64_t hi, grid_rounding r) noexcept {
  float y = x / step;
  y = std::min(std::max(y, static_cast<float>(lo)), static_cast<float>(hi));
  return round_by(y, r) * step;
}

/// The first rule of `candidates` under which grid_reference equals quantizer `q` (as values:
/// -0 equals +0) on every input of grid_probe_inputs(step, lo, hi), or none; `why` then names an
/// input where the first candidate differs.
struct grid_rounding_match {
  bool found = false;
  grid_rounding rounding = grid_rounding::half_even;
  std::size_t probed = 0;
  std::string why;
};
inline grid_rounding_match rounding_of(const quantizer& q, float step, std::int64_t lo, std::int64_t hi,
                                       std::span<const grid_rounding> candidates) {
  grid_rounding_match m;
  const std::vector<float> xs = detail::grid_probe_inputs(step, lo, hi);
  std::vector<float> ys(xs.size());
  const std::size_t shape[1] = {xs.size()};
  q(xs, ys, shape);
  m.probed = xs.size();
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    std::size_t bad = xs.size();
    for (std::size_t i = 0; i < xs.size() && bad == xs.size(); ++i)
      if (!(grid_reference(xs[i], step, lo, hi, candidates[c]) == ys[i])) bad = i;
    if (bad == xs.size()) {
      m.found = true;
      m.rounding = candidates[c];
      m.why.clear();
      return m;
    }
    if (c == 0) {
      std::ostringstream os;
      os.precision(9);  // every float distinct
      os << "the input " << xs[bad] << " gives " << ys[bad] << " in " << q.name() << " but "
         << grid_reference(xs[bad], step, lo, hi, candidates[c]) << " when rounded " << to_string(candidates[c]);
      m.why = os.str();
    }
  }
  return m;
}

}  // namespace qnas
