// expect-error: qnas: number_format::bits must be > 0
// expect-error-is-first
// A user format with bits = 0, used as a layer's weight format: the first error is the broken
// rule, not the layer's "Weights must be a number_format".
#include <cstdint>
#include <string>

#include "qnas/nn.hpp"

struct zero_bits {
  using rounding = qnas::nearest_even;
  static constexpr qnas::format_family family = qnas::format_family::binary;
  static constexpr qnas::bit_tuple tuple{1, 0, 0};
  static constexpr int bits = 0;  // broken: one element needs at least one bit
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 1.0;
  static constexpr double min_value = -1.0;
  static constexpr bool has_zero = false;
  static constexpr bool has_nan = false;
  static std::string name() { return "zero_bits"; }
  template <class R>
  static std::uint32_t encode_one(float x, R&) { return x < 0 ? 1u : 0u; }
  static float decode_one(std::uint32_t code) { return code ? -1.0f : 1.0f; }
  template <class R>
  static float quantize_one(float x, R&) { return x < 0 ? -1.0f : 1.0f; }
};

using net = qnas::nn::network<qnas::nn::input<16>, qnas::nn::dense<4, zero_bits>>;
int main() { return static_cast<int>(net::param_count); }
