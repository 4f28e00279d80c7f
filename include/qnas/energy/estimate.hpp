// Per-layer and per-model energy: input read, parameter read, MAC cost and output write under
// a cost table, the memory kinds of parameters and activations, and an accounting rule.
//
// The same constexpr functions price a fixed network in a static_assert and a run-time
// search candidate (formats chosen at run time are just different format_info values).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/detail/math.hpp"
#include "qnas/energy/layer.hpp"
#include "qnas/energy/operators.hpp"

namespace qnas::energy {

/// qtools' two-decimal rounding of a reported energy (ties away from zero).
constexpr double round2(double pj) noexcept { return detail::round2(pj); }

/// The energy components of a layer.
enum class component : std::uint8_t { inputs = 1, outputs = 2, parameters = 4, op = 8 };

/// Which components of which layer kinds enter the model total. The default, qtools(), is
/// qtools' include_energy: a tensor is charged once, where it is read by a MAC layer
/// (inputs) or written by an activation (outputs); conv/dense outputs stay in the
/// accumulators of a fused conv+activation and are not charged.
struct accounting {
  std::array<std::uint8_t, layer_kind_count> mask{};

  [[nodiscard]] constexpr bool counts(layer_kind k, component c) const noexcept {
    return (mask[static_cast<int>(k)] & static_cast<std::uint8_t>(c)) != 0;
  }
  constexpr accounting& set(layer_kind k, std::initializer_list<component> cs) noexcept {
    std::uint8_t m = 0;
    for (component c : cs) m = static_cast<std::uint8_t>(m | static_cast<std::uint8_t>(c));
    mask[static_cast<int>(k)] = m;
    return *this;
  }

  /// qtools include_energy (config_public.py): Activation -> outputs; Add, MaxPooling2D ->
  /// op cost; every other layer -> inputs, parameters, op cost.
  static constexpr accounting qtools() noexcept {
    accounting a;
    for (auto& m : a.mask) m = 1 | 4 | 8;
    a.set(layer_kind::activation, {component::outputs});
    a.set(layer_kind::add, {component::op});
    a.set(layer_kind::max_pool, {component::op});
    return a;
  }
  /// Every component of every layer (qtools' "total_cost").
  static constexpr accounting everything() noexcept {
    accounting a;
    for (auto& m : a.mask) m = 1 | 2 | 4 | 8;
    return a;
  }
};

/// Where tensors live and how the model's input and output reach the chip (qtools' pe()
/// arguments; the defaults are qtools').
struct energy_options {
  memory_kind parameters = memory_kind::dram;
  memory_kind activations = memory_kind::dram;
  double min_sram_size = 0;  ///< bits; an SRAM is at least this large
  bool rd_wr_on_io = true;   ///< model input/output move through DRAM and are staged in SRAM
  accounting counted = accounting::qtools();
};

/// The energy of one layer, pJ per sample.
struct layer_energy {
  double inputs = 0, outputs = 0, parameters = 0, op = 0;
  long long macs = 0;
  long long rescales = 0;  ///< float multiplies rescaling outputs (float group scales), in `op`
  int accumulator_bits = 0;
  mac_operator mac{};
  std::uint8_t counted = 0;  ///< components that enter the total (bit mask of `component`)

  [[nodiscard]] constexpr bool counts(component c) const noexcept {
    return (counted & static_cast<std::uint8_t>(c)) != 0;
  }
  /// Sum of the counted components.
  [[nodiscard]] constexpr double total() const noexcept {
    return (counts(component::inputs) ? inputs : 0) + (counts(component::outputs) ? outputs : 0) +
           (counts(component::parameters) ? parameters : 0) + (counts(component::op) ? op : 0);
  }
  /// qtools' per-layer figure: counted components each rounded to two decimals.
  [[nodiscard]] constexpr double total_rounded() const noexcept {
    return (counts(component::inputs) ? detail::round2(inputs) : 0) +
           (counts(component::outputs) ? detail::round2(outputs) : 0) +
           (counts(component::parameters) ? detail::round2(parameters) : 0) +
           (counts(component::op) ? detail::round2(op) : 0);
  }
  [[nodiscard]] constexpr double all() const noexcept { return inputs + outputs + parameters + op; }
};

/// Storage bits of `n` elements of format f, shared block data included.
constexpr double tensor_bits(long long n, const format_info& f) noexcept {
  const long long blocks = f.block_size > 1 ? (n + f.block_size - 1) / f.block_size : 0;
  return static_cast<double>(n) * f.bits + static_cast<double>(blocks) * f.scale_bits;
}

/// SRAM traffic: ceil(bits / word) accesses of an array of max(bits, min_sram_size) bits.
template <class T>
constexpr double sram_pj(double bits, double min_sram_size) {
  if (!(bits > 0)) return 0.0;
  const double words = detail::ceil(bits / T::sram_word_bits);
  return words * T::sram_access_pj(bits > min_sram_size ? bits : min_sram_size);
}

/// Reading a tensor of `bits` bits kept in memory `m`; `io`: it is the model input.
template <class T>
constexpr double read_pj(double bits, memory_kind m, bool io, const energy_options& o) {
  if (io) m = o.rd_wr_on_io ? memory_kind::dram : memory_kind::sram;
  switch (m) {
    case memory_kind::dram:  // load from DRAM; with rd_wr_on_io also stage it in SRAM
      return T::dram_pj_per_bit * bits + (o.rd_wr_on_io ? sram_pj<T>(bits, o.min_sram_size) : 0.0);
    case memory_kind::sram: return sram_pj<T>(bits, o.min_sram_size);
    case memory_kind::fixed: return 0.0;
  }
  return 0.0;
}

/// Writing a tensor of `bits` bits to memory `m`; `io`: it is the model output.
template <class T>
constexpr double write_pj(double bits, memory_kind m, bool io, const energy_options& o) {
  if (io) m = o.rd_wr_on_io ? memory_kind::dram : memory_kind::sram;
  switch (m) {
    case memory_kind::dram:  // with rd_wr_on_io it is read back from SRAM first
      return (o.rd_wr_on_io ? sram_pj<T>(bits, o.min_sram_size) : 0.0) + T::dram_pj_per_bit * bits;
    case memory_kind::sram: return sram_pj<T>(bits, o.min_sram_size);
    case memory_kind::fixed: return 0.0;
  }
  return 0.0;
}

/// Position of a layer in the model: the first reads the model input, the last writes the
/// model output (rd_wr_on_io applies to them).
struct layer_role {
  bool model_input = false;
  bool model_output = false;
};

/// The energy of one layer under cost table T.
template <class T>
constexpr layer_energy price_layer(const layer_desc& l, const energy_options& o = {}, layer_role role = {}) {
  static_assert(check_cost_table<T>());
  validate(l);
  constexpr bool quirks = detail::qtools_quirks<T>();
  layer_energy e;
  e.counted = o.counted.mask[static_cast<int>(l.kind)];

  const double in_bits = tensor_bits(elements(l.in), l.input);
  e.inputs = read_pj<T>(in_bits, o.activations, role.model_input, o) * (l.kind == layer_kind::add ? l.inputs : 1);
  e.outputs = write_pj<T>(tensor_bits(elements(l.out), l.output), o.activations, role.model_output, o);

  switch (l.kind) {
    case layer_kind::conv2d:
    case layer_kind::depthwise_conv2d:
    case layer_kind::dense: {
      e.parameters = read_pj<T>(tensor_bits(l.weight_count(), l.weights), o.parameters, false, o);
      if (l.use_bias) {
        // qtools reads kernel.shape[-1] biases: depth_multiplier for a depthwise kernel.
        const long long nb = (quirks && l.kind == layer_kind::depthwise_conv2d) ? l.depth_multiplier : l.bias_count();
        e.parameters += read_pj<T>(tensor_bits(nb, l.bias), o.parameters, false, o);
      }
      e.mac = select_operator(l.weights, l.input);
      // qtools sizes the accumulator from kernel.shape[:-1]: kh*kw*channels for depthwise.
      const long long fan = (quirks && l.kind == layer_kind::depthwise_conv2d) ? l.fan_in() * static_cast<long long>(l.in.c) : l.fan_in();
      e.accumulator_bits = l.accumulator_bits > 0 ? l.accumulator_bits : accumulator_bits(e.mac, fan, l.use_bias);
      e.macs = l.macs();
      const double acc = accumulate_pj<T>(e.accumulator_bits, e.mac.float_product);
      e.op = static_cast<double>(e.macs) * (multiply_pj<T>(e.mac) + acc);
      if (l.use_bias && detail::charges_bias_add<T>()) e.op += static_cast<double>(elements(l.out)) * acc;
      // A float weight or input scale: one float32 multiply per output (po2 scales: shifts, free).
      if (detail::charges_rescale<T>() && needs_float_rescale(l.weights, l.input)) {
        e.rescales = elements(l.out);
        e.op += static_cast<double>(e.rescales) * rescale_pj<T>();
      }
      break;
    }
    case layer_kind::avg_pool: {
      const bool flt = l.input.family == format_family::floating;
      const long long window = l.fan_in();
      e.accumulator_bits = l.accumulator_bits > 0 ? l.accumulator_bits
                           : flt                 ? l.input.bits
                                                 : l.input.bits + detail::ceil_log2(window);
      // qtools counts channels * pool area adds (a single output position).
      const long long count = quirks ? static_cast<long long>(l.out.c) * window : elements(l.out) * window;
      e.op = static_cast<double>(count) * accumulate_pj<T>(e.accumulator_bits, flt);
      break;
    }
    case layer_kind::max_pool: {
      // (window - 1) comparisons per output, each an input-wide subtract; qtools: free.
      if (!quirks) {
        const bool flt = l.input.family == format_family::floating;
        e.op = static_cast<double>(elements(l.out) * (l.fan_in() - 1)) * accumulate_pj<T>(l.input.bits, flt);
      }
      break;
    }
    case layer_kind::add: {
      // qtools merge Add: (inputs - 1) adds per element, max(input bits) + 1 wide.
      const bool flt = l.input.family == format_family::floating;
      int bits = l.input.bits;
      if (l.input.family == format_family::po2)
        bits = detail::po2_as_fixed_bits(l.input.bits, l.input.is_signed(), l.input.max_value);
      e.accumulator_bits = flt ? bits : bits + 1;
      e.op = static_cast<double>((l.inputs - 1) * elements(l.in)) * accumulate_pj<T>(e.accumulator_bits, flt);
      break;
    }
    case layer_kind::activation:
    case layer_kind::flatten: break;
  }
  return e;
}

/// Totals of a model, pJ per sample.
struct model_energy {
  double inputs = 0, outputs = 0, parameters = 0, op = 0;  ///< counted components only
  double total_pj = 0;        ///< sum of the counted components
  double all_pj = 0;          ///< every component of every layer (qtools "total_cost")
  double rounded_sum = 0;     ///< counted components rounded to 2 decimals, summed
  long long macs = 0;

  /// The number qtools / AutoQKeras report: rounded_sum truncated to an integer.
  [[nodiscard]] constexpr long long qtools_total() const noexcept { return static_cast<long long>(rounded_sum); }

  constexpr void accumulate(const layer_energy& e) noexcept {
    if (e.counts(component::inputs)) inputs += e.inputs;
    if (e.counts(component::outputs)) outputs += e.outputs;
    if (e.counts(component::parameters)) parameters += e.parameters;
    if (e.counts(component::op)) op += e.op;
    total_pj += e.total();
    all_pj += e.all();
    rounded_sum += e.total_rounded();
    macs += e.macs;
  }
};

/// The role of layer i of n.
constexpr layer_role role_of(std::size_t i, std::size_t n) noexcept { return {i == 0, i + 1 == n}; }

/// The energy of a model (layers in execution order) under cost table T. No allocation:
/// this is the function a search loop calls per candidate.
template <class T>
constexpr model_energy price_model(model_view layers, const energy_options& o = {}) {
  static_assert(check_cost_table<T>());
  model_energy m;
  for (std::size_t i = 0; i < layers.size(); ++i) m.accumulate(price_layer<T>(layers[i], o, role_of(i, layers.size())));
  return m;
}

}  // namespace qnas::energy
