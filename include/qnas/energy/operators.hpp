// Operator mapping: which hardware operator a MAC needs for a pair of operand formats, its
// gate factor and gate bits, the product width and the accumulator width.
//
// The rules are qtools' (qkeras/qtools/quantized_operators: multiplier_factory,
// multiplier_impl, accumulator_impl), expressed on format_info values so that a format
// chosen at run time is priced by the same constexpr code as a fixed one:
//
//   weights \ inputs   fixed       po2        ternary   binary±1  binary{0,1}  float
//   fixed              multiplier  shifter    mux       mux       and          float mul
//   po2                shifter     adder      mux       mux       and          float mul
//   ternary            mux         mux        mux       mux       and          float mul
//   binary±1           mux         mux        mux       xor       and          float mul
//   binary{0,1}        and         and        and       and       and          float mul
//   float              float mul   ...
//
//   multiplier  gate factor 1,   gate bits sqrt(bw*bx),  priced mul_pj;  product bw + bx
//   shifter     gate factor 1,   gate bits b*log10(b), b = sqrt(2^po2_bits * fixed_bits),
//               priced add_pj;   product fixed_bits + max_exp + min_exp (+1 sign, below)
//   adder       gate factor 1,   gate bits max(bw,bx)+1, priced add_pj; product is a po2
//   mux         gate factor 0.3 (binary select) or 0.6 (ternary), gate bits = the other
//               operand's bits, priced add_pj; product = the other operand's bits
//               (+1 when it is unsigned and the selecting operand signed)
//   xor         gate factor 0.3, gate bits 1, priced add_pj; product 1 bit
//   and         gate factor 0.1, gate bits = product bits = max(bw,bx) (2 when the product
//               is ternary: ternary or binary±1 against {0,1}), priced add_pj
//   float mul   gate factor 1, gate bits = widest float operand, priced float_mul_pj; the
//               accumulator is a float adder of the same width
//
// A po2 operand of b bits (s sign bits) spans exponents [-2^(b-s-1), 2^(b-s-1)-1], capped
// above by ceil(log2(max_value)) and below at 0 (qtools get_exp). A po2 product feeds the
// accumulator as a fixed-point number of s + |min_exp| + max_exp bits.
//
// Fixed-point accumulators are product bits + ceil(log2(fan_in + bias)) wide (the bias is
// one more term of the sum); float accumulators keep the float width.
//
// Block formats (BFP, MX; family block_fp): each element is an integer significand of
// sign + mantissa (+1 implicit bit when the element has exponent bits) bits; the pair is
// mapped with the table above as if that operand were fixed point (so BFP x int8 is a
// multiplier, BFP x ternary a mux). Per reduction block (the smaller block size of the
// block operands) one add of the shared exponents (scale_bits wide) is charged, amortised
// per MAC; elements with their own exponent (MX fp8/fp6/fp4) add one element-exponent add
// per MAC. A product of small-float elements is accumulated in fixed point after alignment,
// so its width grows by the exponent span (2^e - 1 per operand with e exponent bits).
// Codebook operands are priced as fixed point of their code width (the level table is
// assumed to hold integer levels of that width).
//
// Group scales (format_info::group_scale: scaled<>, lsq<>): the MACs run on the element codes,
// so the operator above is the unit format's. Each output is then rescaled once: a
// power-of-two scale is a shift, priced at nothing (qtools treats alpha='auto_po2' weights as
// their quantized_bits and adds no operator); a float scale is one multiply of the
// accumulator by a float32, priced as qtools prices a fixed x float32 multiply
// (FloatingPointMultiplier: gate bits = the float's 32 bits, the float multiplier's price).
// qtools itself never adds this multiply; tables opt out with charges_rescale = false.
#pragma once

#include <cstdint>

#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/detail/math.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas::energy {

/// The hardware operator realising one multiply of a MAC.
enum class op_kind : std::uint8_t {
  multiplier,        ///< fixed x fixed: an integer multiplier
  shifter,           ///< po2 x fixed: a barrel shifter
  adder,             ///< po2 x po2: exponents add
  mux,               ///< ternary / binary±1 x other: select (+/- x, 0)
  xor_gate,          ///< binary±1 x binary±1
  and_gate,          ///< binary{0,1} x any
  float_multiplier   ///< any float operand
};

constexpr const char* to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::multiplier: return "multiplier";
    case op_kind::shifter: return "shifter";
    case op_kind::adder: return "adder";
    case op_kind::mux: return "mux";
    case op_kind::xor_gate: return "xor";
    case op_kind::and_gate: return "and";
    case op_kind::float_multiplier: return "float_multiplier";
  }
  return "?";
}

/// The operand classes of qtools' multiplier table.
enum class operand_class : std::uint8_t { fixed, po2, ternary, binary, binary01, floating };

/// The class an operand of format f takes in the table (block formats: their elements).
constexpr operand_class classify(const format_info& f) noexcept {
  switch (f.family) {
    case format_family::floating: return operand_class::floating;
    case format_family::po2: return operand_class::po2;
    case format_family::ternary: return operand_class::ternary;
    case format_family::binary: return operand_class::binary;
    case format_family::binary01: return operand_class::binary01;
    case format_family::fixed_point:
      // A 1-bit unsigned fixed point is {0, s}: qtools maps quantized_relu(1, 1) to binary01.
      return (f.bits == 1 && !f.is_signed()) ? operand_class::binary01 : operand_class::fixed;
    case format_family::block_fp:
    case format_family::codebook: return operand_class::fixed;
  }
  return operand_class::fixed;
}

/// One MAC's multiply, as priced.
struct mac_operator {
  op_kind kind = op_kind::multiplier;
  double gate_factor = 1.0;  ///< energy relative to the priced primitive (add or mul)
  double gate_bits = 0.0;    ///< width the primitive is priced at
  int product_bits = 0;      ///< width of the product entering the accumulator
  bool float_product = false;
  // Block formats:
  int block = 1;                 ///< MACs per shared-exponent add (1: none)
  int shared_exponent_bits = 0;  ///< width of the shared-exponent adder
  int element_exponent_bits = 0; ///< width of the per-MAC element-exponent adder (MX floats)
  constexpr bool operator==(const mac_operator&) const = default;
};

namespace detail {

/// An operand as the table sees it.
struct operand {
  operand_class cls;
  int bits;
  bool is_signed;
  double max_value;
  int exponent_span = 0;  ///< product-width growth of small-float block elements
};

constexpr operand as_operand(const format_info& f) noexcept {
  if (f.family == format_family::block_fp) {
    const bool has_exp = f.tuple.exponent > 0;
    const int sig = f.tuple.sign + f.tuple.mantissa + (has_exp ? 1 : 0);
    const int span = has_exp ? (1 << f.tuple.exponent) - 1 : 0;
    return {operand_class::fixed, sig > 0 ? sig : f.bits, f.is_signed(), f.max_value, span};
  }
  return {classify(f), f.bits, f.is_signed(), f.max_value, 0};
}

/// qtools get_exp: (|min_exp|, max_exp) of a po2 value of `bits` bits.
struct exp_range {
  int neg;  ///< bits right of the binary point
  int pos;  ///< bits left of it
};
constexpr exp_range po2_exponents(int bits, bool is_signed, double max_value) noexcept {
  const int nsb = bits - (is_signed ? 1 : 0);
  const int half = nsb >= 1 ? (1 << (nsb - 1)) : 0;
  int max_exp = half - 1;
  if (max_value <= 0)
    max_exp = 0;
  else {
    const int c = static_cast<int>(energy::detail::ceil(energy::detail::log2(max_value)));
    if (c < max_exp) max_exp = c;
  }
  if (max_exp < 0) max_exp = 0;
  return {half, max_exp};
}

/// Fixed-point width of a po2 product (qtools po2_to_qbits).
constexpr int po2_as_fixed_bits(int bits, bool is_signed, double max_value) noexcept {
  const exp_range e = po2_exponents(bits, is_signed, max_value);
  return (is_signed ? 1 : 0) + e.neg + e.pos;
}

constexpr bool is_select(operand_class c) noexcept {
  return c == operand_class::ternary || c == operand_class::binary;
}

}  // namespace detail

/// The operator for a MAC of weights `w` and inputs `x` (see the header comment).
constexpr mac_operator select_operator(const format_info& w, const format_info& x) noexcept {
  using detail::operand;
  mac_operator m{};
  if (w.family == format_family::floating || x.family == format_family::floating) {
    const int bw = w.family == format_family::floating ? w.bits : 0;
    const int bx = x.family == format_family::floating ? x.bits : 0;
    m.kind = op_kind::float_multiplier;
    m.gate_factor = 1.0;
    m.product_bits = bw > bx ? bw : bx;
    m.gate_bits = m.product_bits;
    m.float_product = true;
    return m;
  }
  const operand a = detail::as_operand(w);
  const operand b = detail::as_operand(x);
  const bool sign_any = a.is_signed || b.is_signed;
  const int max_bits = a.bits > b.bits ? a.bits : b.bits;
  // po2-typed products (qtools output quantizer PowerOfTwo) are widened to fixed point.
  bool po2_product = false;
  double po2_max = -1;  // qtools max_val_po2 of the product (-1: none)
  int out_bits = 0;

  if (a.cls == operand_class::binary01 || b.cls == operand_class::binary01) {
    m.kind = op_kind::and_gate;
    const bool ternary_out = (detail::is_select(a.cls) && b.cls == operand_class::binary01) ||
                             (detail::is_select(b.cls) && a.cls == operand_class::binary01);
    out_bits = ternary_out ? 2 : max_bits;
    if (a.cls == operand_class::po2 || b.cls == operand_class::po2) {
      po2_product = true;
      po2_max = a.cls == operand_class::po2 ? a.max_value : b.max_value;
    }
    m.gate_factor = 0.1;
    m.gate_bits = out_bits;
  } else if (a.cls == operand_class::binary && b.cls == operand_class::binary) {
    m.kind = op_kind::xor_gate;
    out_bits = max_bits;
    m.gate_factor = 0.3;
    m.gate_bits = 1;
  } else if (detail::is_select(a.cls) || detail::is_select(b.cls)) {
    m.kind = op_kind::mux;
    if (detail::is_select(a.cls)) {  // weights select the input
      out_bits = b.bits + ((!b.is_signed && a.is_signed) ? 1 : 0);
      m.gate_factor = a.cls == operand_class::binary ? 0.3 : 0.6;
      m.gate_bits = b.bits;
    } else {  // inputs select the weight
      out_bits = a.bits + ((!a.is_signed && b.is_signed) ? 1 : 0);
      m.gate_factor = b.cls == operand_class::binary ? 0.3 : 0.6;
      m.gate_bits = a.bits;
    }
    if (a.cls == operand_class::po2 || b.cls == operand_class::po2) {
      po2_product = true;
      po2_max = a.cls == operand_class::po2 ? a.max_value : b.max_value;
    }
  } else if (a.cls == operand_class::po2 && b.cls == operand_class::po2) {
    m.kind = op_kind::adder;
    out_bits = max_bits + 1;
    m.gate_factor = 1.0;
    m.gate_bits = out_bits;
    po2_product = true;
    po2_max = a.max_value * b.max_value;
  } else if (a.cls == operand_class::po2 || b.cls == operand_class::po2) {
    m.kind = op_kind::shifter;
    const operand& p = a.cls == operand_class::po2 ? a : b;
    const operand& q = a.cls == operand_class::po2 ? b : a;
    const detail::exp_range e = detail::po2_exponents(p.bits, p.is_signed, p.max_value);
    out_bits = q.bits + e.pos + e.neg + ((!q.is_signed && p.is_signed) ? 1 : 0);
    m.gate_factor = 1.0;
    const double g = detail::sqrt(detail::exp2i(p.bits) * q.bits);
    m.gate_bits = g * detail::log10(g);
  } else {
    m.kind = op_kind::multiplier;
    out_bits = a.bits + b.bits;
    m.gate_factor = 1.0;
    m.gate_bits = detail::sqrt(static_cast<double>(a.bits) * b.bits);
  }

  if (po2_product) {
    // po2 magnitudes of the product: qtools keeps max_val_po2 = -1 ("unbounded") unless set.
    const double cap = po2_max > 0 ? po2_max : 1e300;
    out_bits = detail::po2_as_fixed_bits(out_bits, sign_any, cap);
  }
  m.product_bits = out_bits + a.exponent_span + b.exponent_span;

  // Block formats: shared-exponent adds per block, element-exponent adds per MAC.
  const bool wb = w.family == format_family::block_fp, xb = x.family == format_family::block_fp;
  if (wb || xb) {
    int blk = wb ? w.block_size : x.block_size;
    if (wb && xb && x.block_size < blk) blk = x.block_size;
    int sb = wb ? w.scale_bits : 0;
    if (xb && x.scale_bits > sb) sb = x.scale_bits;
    m.block = blk;
    m.shared_exponent_bits = sb;
    int eb = wb ? w.tuple.exponent : 0;
    if (xb && x.tuple.exponent > eb) eb = x.tuple.exponent;
    m.element_exponent_bits = eb;
  }
  return m;
}

/// Accumulator width for a MAC operator summing `fan_in` products (plus the bias).
constexpr int accumulator_bits(const mac_operator& m, long long fan_in, bool use_bias) noexcept {
  if (m.float_product) return m.product_bits;
  return m.product_bits + detail::ceil_log2(fan_in + (use_bias ? 1 : 0));
}

/// Energy of one multiply (pJ) under table T, block-format extras included.
template <class T>
constexpr double multiply_pj(const mac_operator& m) {
  double e = 0;
  switch (m.kind) {
    case op_kind::multiplier: e = m.gate_factor * T::mul_pj(m.gate_bits); break;
    case op_kind::float_multiplier: e = m.gate_factor * T::float_mul_pj(m.product_bits); break;
    default: e = m.gate_factor * T::add_pj(m.gate_bits); break;
  }
  if (m.element_exponent_bits > 0) e += T::add_pj(m.element_exponent_bits);
  if (m.shared_exponent_bits > 0) e += T::add_pj(m.shared_exponent_bits) / m.block;
  return e;
}

/// Width of the float scale a layer multiplies its outputs by (scaled<..., alpha_auto> and lsq
/// store it as float32; a constant alpha is a float32 too).
inline constexpr int float_scale_bits = 32;

/// Whether a MAC layer with weights `w` reading inputs `x` rescales each output by a float:
/// one multiply per output applies the product of the weights' (per channel) and the input's
/// (per tensor) float scales. Power-of-two scales are shifts and need none.
constexpr bool needs_float_rescale(const format_info& w, const format_info& x) noexcept {
  return w.group_scale == scale_kind::floating || x.group_scale == scale_kind::floating;
}

/// Energy of one rescale (pJ) under table T: accumulator x float32 scale, a float multiply.
template <class T>
constexpr double rescale_pj() {
  return T::float_mul_pj(float_scale_bits);
}

/// Energy of one accumulation (pJ) into an accumulator of `bits` bits.
template <class T>
constexpr double accumulate_pj(int bits, bool float_accumulator) {
  return float_accumulator ? T::float_add_pj(bits) : T::add_pj(bits);
}

}  // namespace qnas::energy
