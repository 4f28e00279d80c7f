// expect-error: clause cost_table_memory failed
// A cost table without dram_pj_per_bit: the entry point names the failed concept clause.
#include <array>

#include "qnas/energy.hpp"

struct no_dram_table {
  static constexpr std::string_view name = "no_dram";
  static constexpr double add_pj(double b) { return 0.01 * b; }
  static constexpr double mul_pj(double b) { return 0.02 * b * b; }
  static constexpr double float_add_pj(int) { return 0.5; }
  static constexpr double float_mul_pj(int) { return 1.0; }
  static constexpr int sram_word_bits = 64;
  static constexpr double sram_access_pj(double) { return 5.0; }
  // missing: static constexpr double dram_pj_per_bit
};

constexpr std::array<qnas::energy::layer_desc, 1> net{qnas::energy::dense("fc", {1, 1, 16}, 4)};
auto e = qnas::energy::price_model<no_dram_table>(net);
