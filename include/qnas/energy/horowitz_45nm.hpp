// horowitz_45nm: the 45 nm, 0.9 V energy table of M. Horowitz, "Computing's energy problem
// (and what we can do about it)", IEEE ISSCC 2014, pp. 10-14, as a constexpr cost table.
//
// Source numbers (ISSCC 2014, figure "Rough energy costs for various operations in 45nm"):
//   integer add   8 bit 0.03 pJ, 32 bit 0.1 pJ      integer mult  8 bit 0.2 pJ, 32 bit 3.1 pJ
//   fp add       16 bit 0.4 pJ,  32 bit 0.9 pJ      fp mult      16 bit 1.1 pJ, 32 bit 3.7 pJ
//   64-bit SRAM access: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ;   DRAM 1.3-2.6 nJ per 64 bits
//
// Fixed-point arithmetic is the polynomial energy(bits) = a*bits^2 + b*bits + c fitted to
// the two points of each operator (the AutoQKeras patent's model):
//   add: a = 0, b = 0.1/32 = 0.003125, c = 0 (linear through 32 bit; gives 0.025 pJ at 8 bit)
//   mul: a*64 + 8b = 0.2 and a*1024 + 32b = 3.1  =>  a = 2.3/768 = 0.0029947916..,
//        b = 1/960 = 0.0010416666.., c = 0 (exact at 8 and 32 bit)
// DRAM is the low end, 1.3 nJ / 64 bit = 20.3125 pJ per bit.
//
// SRAM scaling with size. The three Horowitz points lie on E = 10 pJ * (S / 8 KB)^k with
// k = 0.5 between 8 and 32 KB and k = log(5)/log(32) = 0.464 between 32 KB and 1 MB: an
// access costs about the square root of the array size, because it is dominated by driving
// word and bit lines whose length grows with the side of the array. sram_access_pj(S)
// interpolates linearly in log(S)-log(E) between the points (exact at them: a power law per
// segment) and extends with the square-root law below 8 KB and above 1 MB. The array size is the size of the
// buffer that holds the tensor: max(tensor bits, energy_options::min_sram_size).
#pragma once

#include <string_view>

#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/detail/math.hpp"

namespace qnas::energy {

struct horowitz_45nm {
  static constexpr std::string_view name = "horowitz_45nm";

  /// energy(bits) = a*bits^2 + b*bits + c, pJ.
  static constexpr double add_a = 0.0, add_b = 0.1 / 32.0, add_c = 0.0;
  static constexpr double mul_a = 2.3 / 768.0, mul_b = 1.0 / 960.0, mul_c = 0.0;

  static constexpr double fp16_add = 0.4, fp32_add = 0.9;
  static constexpr double fp16_mul = 1.1, fp32_mul = 3.7;

  /// 64-bit accesses at 8 KB, 32 KB and 1 MB arrays (bits), pJ.
  static constexpr double sram_size_bits[3] = {8.0 * 1024 * 8, 32.0 * 1024 * 8, 1024.0 * 1024 * 8};
  static constexpr double sram_word_pj[3] = {10.0, 20.0, 100.0};

  static constexpr double add_pj(double bits) { return (add_a * bits + add_b) * bits + add_c; }
  static constexpr double mul_pj(double bits) { return (mul_a * bits + mul_b) * bits + mul_c; }
  static constexpr double float_add_pj(int bits) { return priced_as_fp16(bits) ? fp16_add : fp32_add; }
  static constexpr double float_mul_pj(int bits) { return priced_as_fp16(bits) ? fp16_mul : fp32_mul; }

  static constexpr int sram_word_bits = 64;
  static constexpr double dram_pj_per_bit = 1300.0 / 64.0;  // 20.3125

  /// One 64-bit access from an SRAM array of `array_bits` bits (see the header comment).
  /// Below 32 KB and above 1 MB the law is exactly the square root (one sqrt); between 32 KB
  /// and 1 MB the exponent is log2(5)/5, evaluated as exp2(k log2(S / 32 KB)).
  static constexpr double sram_access_pj(double array_bits) {
    if (!(array_bits > 0)) return 0.0;
    if (array_bits <= sram_size_bits[1]) return sram_word_pj[0] * detail::sqrt(array_bits / sram_size_bits[0]);
    if (array_bits >= sram_size_bits[2]) return sram_word_pj[2] * detail::sqrt(array_bits / sram_size_bits[2]);
    constexpr double k = detail::log2(sram_word_pj[2] / sram_word_pj[1]) /
                         detail::log2(sram_size_bits[2] / sram_size_bits[1]);  // log2(5) / 5
    return sram_word_pj[1] * detail::exp2(k * detail::log2(array_bits / sram_size_bits[1]));
  }

  static constexpr bool charges_bias_add = true;
  static constexpr bool qtools_quirks = false;
};

}  // namespace qnas::energy
