// expect-error: qnas: a scalar number format \(block_size == 1\) needs `static float decode_one
// expect-error-is-first
// A user format without decode_one: quantize<F> stops at the missing member, not with "no
// matching function for call to quantize".
#include <cstdint>
#include <string>

#include <xtensor/xarray.hpp>

#include "qnas/formats/ops.hpp"

struct no_decode {
  using rounding = qnas::nearest_even;
  static constexpr qnas::format_family family = qnas::format_family::ternary;
  static constexpr qnas::bit_tuple tuple{1, 0, 1};
  static constexpr int bits = 2;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 1.0;
  static constexpr double min_value = -1.0;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;
  static std::string name() { return "no_decode"; }
  template <class R>
  static std::uint32_t encode_one(float x, R&) { return x > 0.5f ? 1u : x < -0.5f ? 2u : 0u; }
  template <class R>
  static float quantize_one(float x, R&) { return x > 0.5f ? 1.0f : x < -0.5f ? -1.0f : 0.0f; }
  // missing: static float decode_one(std::uint32_t code)
};

int main() {
  const xt::xarray<float> x = {0.2f, -0.9f};
  return static_cast<int>(qnas::quantize<no_decode>(x)(0));
}
