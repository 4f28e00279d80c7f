// The cost_table concept: what a type must provide to price arithmetic and memory in pJ.
//
// A cost table is a type with constexpr static members (see horowitz_45nm.hpp for a complete
// one and examples/03_custom_cost_table.cpp for a user-written 7 nm table):
//
//   static constexpr std::string_view name;           // printed in summaries
//   static constexpr double add_pj(double bits);      // fixed-point adder of `bits` bits
//   static constexpr double mul_pj(double bits);      // fixed-point multiplier, `bits` = gate
//                                                     //   bits (sqrt of the operand widths)
//   static constexpr double float_add_pj(int bits);   // floating-point adder of a `bits` format
//   static constexpr double float_mul_pj(int bits);   // floating-point multiplier
//   static constexpr int    sram_word_bits;           // bits moved by one SRAM access
//   static constexpr double sram_access_pj(double array_bits); // one word access from an SRAM
//                                                     //   array holding `array_bits` bits
//   static constexpr double dram_pj_per_bit;          // DRAM read or write, per bit
//
// Optional members (defaults in parentheses):
//
//   static constexpr bool charges_bias_add;  // (true) one accumulator-wide add per output for
//                                            //   the bias; qtools folds the bias into the
//                                            //   accumulator width only
//   static constexpr bool qtools_quirks;     // (false) reproduce qtools' counting quirks
//                                            //   (see qtools_compat.hpp)
//   static constexpr bool charges_rescale;   // (true) one float32 multiply per output of a
//                                            //   conv/dense layer whose weights or input carry
//                                            //   a float scale (scaled<..., alpha_auto>, lsq);
//                                            //   qtools prices none
//
// `bits` arguments are double because gate-level pricing (qtools' rules, which qnas follows)
// uses fractional "gate bits" such as sqrt(8 * 4).
#pragma once

#include <concepts>
#include <random>  // formats/policies.hpp uses std::uniform_random_bit_generator without it
#include <string_view>
#include <type_traits>

#include "qnas/formats/concept.hpp"

namespace qnas::energy {

/// Where a tensor lives: on-chip SRAM, off-chip DRAM, or hard-wired ("fixed": parameters
/// baked into logic cost nothing to read, as in qtools).
enum class memory_kind { sram, dram, fixed };

constexpr const char* to_string(memory_kind m) noexcept {
  switch (m) {
    case memory_kind::sram: return "sram";
    case memory_kind::dram: return "dram";
    case memory_kind::fixed: return "fixed";
  }
  return "?";
}

/// Clause 1: the table has a printable name.
template <class T>
concept cost_table_name = requires {
  { T::name } -> std::convertible_to<std::string_view>;
};

/// Clause 2: the table prices fixed- and floating-point adds and multiplies.
template <class T>
concept cost_table_arithmetic = requires(double bits, int float_bits) {
  { T::add_pj(bits) } -> std::same_as<double>;
  { T::mul_pj(bits) } -> std::same_as<double>;
  { T::float_add_pj(float_bits) } -> std::same_as<double>;
  { T::float_mul_pj(float_bits) } -> std::same_as<double>;
};

/// Clause 3: the table prices SRAM and DRAM traffic.
template <class T>
concept cost_table_memory = requires(double array_bits) {
  { T::sram_word_bits } -> qnas::detail::constant_of<int>;
  { T::sram_access_pj(array_bits) } -> std::same_as<double>;
  { T::dram_pj_per_bit } -> qnas::detail::constant_of<double>;
};

namespace detail {
template <bool B>
struct constant_bool : std::bool_constant<B> {};
}  // namespace detail

/// Clause 4: every price is a constant expression (so a fixed network is priced in a
/// static_assert). Checked by evaluating each function once at compile time.
template <class T>
concept cost_table_constexpr = cost_table_arithmetic<T> && cost_table_memory<T> && requires {
  typename detail::constant_bool<(T::add_pj(8.0) >= 0.0) || true>;
  typename detail::constant_bool<(T::mul_pj(8.0) >= 0.0) || true>;
  typename detail::constant_bool<(T::float_add_pj(16) >= 0.0) || true>;
  typename detail::constant_bool<(T::float_mul_pj(16) >= 0.0) || true>;
  typename detail::constant_bool<(T::sram_access_pj(65536.0) >= 0.0) || true>;
  typename detail::constant_bool<(T::sram_word_bits > 0) || true>;
  typename detail::constant_bool<(T::dram_pj_per_bit >= 0.0) || true>;
};

/// A complete cost table.
template <class T>
concept cost_table =
    cost_table_name<T> && cost_table_arithmetic<T> && cost_table_memory<T> && cost_table_constexpr<T>;

/// Entry-point check: one static_assert per clause, so the error names what is missing.
template <class T>
consteval bool check_cost_table() {
  static_assert(cost_table_name<T>,
                "cost_table<Table>: clause cost_table_name failed: Table needs "
                "`static constexpr std::string_view name`");
  static_assert(cost_table_arithmetic<T>,
                "cost_table<Table>: clause cost_table_arithmetic failed: Table needs static "
                "add_pj(double), mul_pj(double), float_add_pj(int), float_mul_pj(int) returning double");
  static_assert(cost_table_memory<T>,
                "cost_table<Table>: clause cost_table_memory failed: Table needs "
                "`static constexpr int sram_word_bits`, static sram_access_pj(double) returning "
                "double and `static constexpr double dram_pj_per_bit`");
  static_assert(!cost_table_arithmetic<T> || !cost_table_memory<T> || cost_table_constexpr<T>,
                "cost_table<Table>: clause cost_table_constexpr failed: every Table price "
                "function must be constexpr");
  return true;
}

namespace detail {
template <class T>
constexpr bool charges_bias_add() {
  if constexpr (requires { { T::charges_bias_add } -> qnas::detail::constant_of<bool>; })
    return T::charges_bias_add;
  else
    return true;
}
template <class T>
constexpr bool charges_rescale() {
  if constexpr (requires { { T::charges_rescale } -> qnas::detail::constant_of<bool>; })
    return T::charges_rescale;
  else
    return true;
}
template <class T>
constexpr bool qtools_quirks() {
  if constexpr (requires { { T::qtools_quirks } -> qnas::detail::constant_of<bool>; })
    return T::qtools_quirks;
  else
    return false;
}
}  // namespace detail

/// Floating-point width as priced by the two-point (fp16, fp32) Horowitz data: formats up
/// to 16 bits (fp16, bf16, fp8) are priced as fp16, wider ones as fp32. Horowitz gives no
/// narrower float; pricing fp8 as fp16 over-estimates it rather than inventing a number.
constexpr bool priced_as_fp16(int bits) noexcept { return bits <= 16; }

}  // namespace qnas::energy
