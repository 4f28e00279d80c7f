// expect-error: qnas: a block number format \(block_size > 1\) needs `static void decode_block
// expect-error-is-first
// A block format without decode_block, given to the conformance kit: check_format<F> names the
// missing member.
#include <cstddef>
#include <cstdint>
#include <string>

#include "qnas/testing/check_format.hpp"

struct sign_block {  // the sign of each element, one block of 4 with no shared data
  using rounding = qnas::nearest_even;
  static constexpr qnas::format_family family = qnas::format_family::block_fp;
  static constexpr qnas::bit_tuple tuple{1, 0, 0};
  static constexpr int bits = 1;
  static constexpr int block_size = 4;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 1.0;
  static constexpr double min_value = -1.0;
  static constexpr bool has_zero = false;
  static constexpr bool has_nan = false;
  static std::string name() { return "sign_block"; }
  template <class R>
  static void quantize_block(const float* in, float* out, std::size_t n, R&) {
    for (std::size_t i = 0; i < n; ++i) out[i] = in[i] < 0 ? -1.0f : 1.0f;
  }
  template <class R>
  static std::uint64_t encode_block(const float* in, std::uint32_t* codes, std::size_t n, R&) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = in[i] < 0 ? 1u : 0u;
    return 0;
  }
  // missing: static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n)
};

int main() { return qnas::testing::check_format<sign_block>() ? 0 : 1; }
