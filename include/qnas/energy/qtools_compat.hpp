// qtools_compat: QKeras qtools' "horowitz" process (qkeras/qtools/config_public.py,
// qenergy/qenergy.py), reproduced number for number, so energies are comparable with
// published AutoQKeras results.
//
// Facts carried over from qtools (Apache-2.0, github.com/google/qkeras):
//   - fixed-point ("fpm") add  = 0.003125*bits,  mul = 0.002994791667*bits^2 + 0.001041666667*bits
//     (Horner evaluation, clamped at 0, as numpy.poly1d does); shifters, muxes, xor and
//     and gates are priced as fpm adds scaled by gate factors (operators.hpp);
//   - fp16 add 0.4, mul 1.1; fp32 add 0.9, mul 3.7 pJ (constant in the width);
//   - SRAM: sram_rd(x) = 9.02427321e-4 x^3 - 2.68847858e-2 x^2 + 2.08900804e-1 x, with
//     x = log2(max(tensor bits, min_sram_size)), charged once per 64-bit word
//     (ceil(bits / 64) words, sram_mul_factor = 1/64); reads and writes cost the same;
//   - DRAM: 20.3125 pJ per bit, reads and writes alike;
//   - the memory kinds sram, dram and fixed (parameters hard-wired: free), min_sram_size and
//     rd_wr_on_io (model input and output go through DRAM and are staged in SRAM) are
//     options of the estimate (estimate.hpp, energy_options), used exactly as qtools does;
//   - per layer, only some energy components enter the total (qtools include_energy):
//     activations count their output write, add and max-pool their op cost, everything
//     else its input read, parameter read and op cost (accounting::qtools());
//   - the reported total truncates to an int a sum of per-component values each rounded to
//     two decimals (model_energy::qtools_total()).
//
// Where it deviates from Horowitz, and why it is still offered:
//   - The SRAM cubic fits Horowitz's per-*bit* SRAM energy (it gives 0.156, 0.31 and
//     1.56 pJ at 8 KB, 32 KB and 1 MB = 10, 20, 100 pJ / 64), but qtools charges it per
//     64-bit *word*, so SRAM traffic comes out 64x below Horowitz (horowitz_45nm charges
//     the full 64-bit access). The cubic also bends down below ~2^15 bits (and is clamped
//     at 0), so small SRAMs become almost free.
//   - Floating-point widths other than 16 and 32 do not exist in qtools (a KeyError); here
//     formats up to 16 bits are priced as fp16 and wider ones as fp32.
//   - No bias add is charged (the bias only widens the accumulator by log2(fan-in + 1)).
//   - No rescaling multiply is charged for a float weight or input scale (QKeras
//     quantized_bits(alpha='auto') or a non-po2 constant alpha, qnas scaled<..., alpha_auto>,
//     lsq): qtools reads bits, integer and sign of a quantizer and ignores its alpha, and its
//     conv/dense energy is MACs x (multiply + accumulate) only (charges_rescale = false).
//   - Counting quirks kept when qtools_quirks is true: a depthwise convolution's
//     accumulator width uses kh*kw*channels as fan-in and its bias read counts
//     depth_multiplier values (qtools reads kernel-shape dimensions); average pooling counts
//     channels * pool area adds (one output position); max pooling costs nothing.
// Use it to compare with AutoQKeras; use horowitz_45nm (or your own table) for design work.
#pragma once

#include <string_view>

#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/detail/math.hpp"

namespace qnas::energy {

struct qtools_compat {
  static constexpr std::string_view name = "qtools_compat";

  static constexpr double fpm_add[2] = {0.003125, 0.0};
  static constexpr double fpm_mul[3] = {0.002994791667, 0.001041666667, 0.0};
  static constexpr double fp16_add = 0.4, fp32_add = 0.9;
  static constexpr double fp16_mul = 1.1, fp32_mul = 3.7;
  static constexpr double sram_rd[4] = {9.02427321e-04, -2.68847858e-02, 2.08900804e-01, 0.0};
  static constexpr double dram_rd[2] = {20.3125, 0.0};

  static constexpr double add_pj(double bits) {
    const double v = fpm_add[0] * bits + fpm_add[1];
    return v > 0 ? v : 0.0;
  }
  static constexpr double mul_pj(double bits) {
    const double v = (fpm_mul[0] * bits + fpm_mul[1]) * bits + fpm_mul[2];
    return v > 0 ? v : 0.0;
  }
  static constexpr double float_add_pj(int bits) { return priced_as_fp16(bits) ? fp16_add : fp32_add; }
  static constexpr double float_mul_pj(int bits) { return priced_as_fp16(bits) ? fp16_mul : fp32_mul; }

  static constexpr int sram_word_bits = 64;
  static constexpr double dram_pj_per_bit = dram_rd[0];

  /// sram_rd(log2(array bits)), clamped at 0; charged per 64-bit word by the estimator.
  static constexpr double sram_access_pj(double array_bits) {
    if (!(array_bits > 0)) return 0.0;  // qtools: log2(0) = -inf, clamped to 0
    const double x = detail::log2(array_bits);
    const double v = ((sram_rd[0] * x + sram_rd[1]) * x + sram_rd[2]) * x + sram_rd[3];
    return v > 0 ? v : 0.0;
  }

  static constexpr bool charges_bias_add = false;
  static constexpr bool charges_rescale = false;
  static constexpr bool qtools_quirks = true;
};

}  // namespace qnas::energy
