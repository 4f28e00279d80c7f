// Latency model for hardware-parameter decisions: a roofline of a parametric accelerator
// (PE array, clock, on-chip buffer, DRAM bandwidth, supported precisions), constexpr.
//
// Model. A layer takes max(compute cycles, memory cycles): compute and DRAM transfers are
// double-buffered, so the slower one bounds the layer (the roofline). A network takes the
// sum over its layers (layers run one after the other).
//
//   compute, MAC layers: ceil(MACs / (PEs * pack)). A PE holds one native_bits x
//     native_bits multiplier; operands are executed at the narrowest supported width
//     >= their width (block formats: their element significand; floats need float support)
//     and narrower widths pack native_bits / width MACs into a PE per cycle (bit-fusion
//     style). An operand wider than every supported width makes the layer unsupported.
//   compute, other layers: a vector unit of pe_cols lanes does one element operation per
//     lane per cycle (activation: 1 per element; pooling: the window; add: inputs - 1).
//   memory: weights and biases are loaded from DRAM once per sample. Activations stay on
//     chip when the layer's input, output and parameters fit in the buffer; otherwise the
//     input and output stream through DRAM once. The model input and output always cross
//     DRAM. Cycles = ceil(DRAM bits / dram_bits_per_cycle).
#pragma once

#include <cstdint>

#include "qnas/core/diagnostics.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/layer.hpp"

namespace qnas::energy {

/// Supported operand widths as a bit mask: bit (w - 1) set when width w is supported.
constexpr std::uint64_t widths(std::initializer_list<int> ws) noexcept {
  std::uint64_t m = 0;
  for (int w : ws)
    if (w >= 1 && w <= 64) m |= std::uint64_t{1} << (w - 1);
  return m;
}

/// A parametric accelerator (the hardware half of a search space's decisions).
struct accelerator {
  int pe_rows = 16, pe_cols = 16;       ///< MAC array
  double clock_hz = 1.0e9;
  double buffer_bits = 8.0 * 1024 * 1024;  ///< on-chip buffer (1 MiB)
  double dram_bits_per_cycle = 128;     ///< DRAM bandwidth per clock
  int native_bits = 8;                  ///< one PE multiplies native_bits x native_bits
  std::uint64_t int_widths = widths({1, 2, 4, 8});  ///< supported integer operand widths
  int float_bits = 0;                   ///< widest float a PE multiplies (0: no float)

  [[nodiscard]] constexpr long long pes() const noexcept { return static_cast<long long>(pe_rows) * pe_cols; }
};

/// Latency of one layer.
struct layer_latency {
  long long compute_cycles = 0;
  long long memory_cycles = 0;
  long long cycles = 0;   ///< max of the two
  int exec_bits = 0;      ///< width the MACs run at (0: no MACs)
  double dram_bits = 0;
  bool supported = true;  ///< false when an operand is wider than every supported width
  [[nodiscard]] constexpr bool compute_bound() const noexcept { return compute_cycles >= memory_cycles; }
};

namespace detail {
/// Not constexpr on purpose: reaching it at compile time is the error the compiler names.
inline void accelerator_is_impossible() {}

constexpr long long ceil_div(double a, double b) noexcept { return static_cast<long long>(detail::ceil(a / b)); }

/// Width of an operand as the PE sees it.
constexpr int operand_width(const format_info& f) noexcept {
  if (f.family == format_family::block_fp) {
    const int sig = f.tuple.sign + f.tuple.mantissa + (f.tuple.exponent > 0 ? 1 : 0);
    return sig > 0 ? sig : f.bits;
  }
  return f.bits;
}
}  // namespace detail

/// Cycles of one layer on accelerator `a`.
constexpr layer_latency layer_cycles(const layer_desc& l, const accelerator& a, layer_role role = {}) {
  validate(l);
  if (a.pe_rows < 1 || a.pe_cols < 1 || !(a.clock_hz > 0) || !(a.dram_bits_per_cycle > 0) || a.native_bits < 1 ||
      !(a.buffer_bits >= 0)) {
    if (std::is_constant_evaluated()) detail::accelerator_is_impossible();
    throw invalid_argument("energy::layer_cycles",
                           qnas::detail::cat("impossible accelerator: ", a.pe_rows, "x", a.pe_cols, " PEs, clock ",
                                             a.clock_hz, " Hz, ", a.dram_bits_per_cycle,
                                             " DRAM bits/cycle, native_bits ", a.native_bits,
                                             " (all must be > 0)"));
  }
  layer_latency r;
  const double in_bits = tensor_bits(elements(l.in), l.input) * (l.kind == layer_kind::add ? l.inputs : 1);
  const double out_bits = tensor_bits(elements(l.out), l.output);
  double par_bits = 0;
  if (l.has_weights()) {
    par_bits = tensor_bits(l.weight_count(), l.weights) + (l.use_bias ? tensor_bits(l.bias_count(), l.bias) : 0);
    const bool flt = l.weights.family == format_family::floating || l.input.family == format_family::floating;
    const int w = detail::operand_width(l.weights) > detail::operand_width(l.input) ? detail::operand_width(l.weights)
                                                                                      : detail::operand_width(l.input);
    long long pack = 1;
    if (flt) {
      r.supported = a.float_bits > 0 && w <= a.float_bits;
      r.exec_bits = a.float_bits > 0 ? a.float_bits : w;
    } else {
      int e = 0;
      for (int k = w; k <= 64 && k <= a.native_bits; ++k)
        if (a.int_widths & (std::uint64_t{1} << (k - 1))) {
          e = k;
          break;
        }
      r.supported = e > 0;
      r.exec_bits = e > 0 ? e : w;
      if (e > 0) pack = a.native_bits / e;
    }
    // An unsupported layer is still given a figure: bit-sliced over native multipliers.
    const long long passes = r.supported ? 1
                                         : static_cast<long long>(detail::ceil(static_cast<double>(w) / a.native_bits)) *
                                               static_cast<long long>(detail::ceil(static_cast<double>(w) / a.native_bits));
    r.compute_cycles = detail::ceil_div(static_cast<double>(l.macs()) * passes, static_cast<double>(a.pes() * pack));
  } else {
    long long ops = 0;
    switch (l.kind) {
      case layer_kind::activation: ops = elements(l.out); break;
      case layer_kind::max_pool:
      case layer_kind::avg_pool: ops = elements(l.out) * l.fan_in(); break;
      case layer_kind::add: ops = elements(l.out) * (l.inputs - 1); break;
      default: break;
    }
    r.compute_cycles = detail::ceil_div(static_cast<double>(ops), a.pe_cols);
  }
  double dram = par_bits;
  if (in_bits + out_bits + par_bits > a.buffer_bits) {
    dram += in_bits + out_bits;
  } else {
    if (role.model_input) dram += in_bits;
    if (role.model_output) dram += out_bits;
  }
  r.dram_bits = dram;
  r.memory_cycles = detail::ceil_div(dram, a.dram_bits_per_cycle);
  r.cycles = r.compute_cycles > r.memory_cycles ? r.compute_cycles : r.memory_cycles;
  return r;
}

/// Latency of a model.
struct model_latency {
  long long cycles = 0;
  double seconds = 0;
  bool supported = true;
  int first_unsupported = -1;  ///< index of the first unsupported layer (-1: none)
};

/// Cycles and seconds of a model (layers in execution order) on accelerator `a`.
constexpr model_latency model_cycles(model_view layers, const accelerator& a) {
  model_latency m;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const layer_latency l = layer_cycles(layers[i], a, role_of(i, layers.size()));
    m.cycles += l.cycles;
    if (!l.supported && m.supported) {
      m.supported = false;
      m.first_unsupported = static_cast<int>(i);
    }
  }
  m.seconds = static_cast<double>(m.cycles) / a.clock_hz;
  return m;
}

}  // namespace qnas::energy
