// lossless_codec: round trips for every option on random, all-zero, ReLU-like, empty and
// one-element field streams of several widths; real shrinkage on ReLU-like codes; corrupt,
// truncated or mismatched streams throw qnas::io_error (a fuzz loop: never a crash).
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "qnas/train/lossless.hpp"

using namespace qnas;
using namespace qnas::train;

namespace {

const std::vector<lossless_options> all_options = {
    {true, entropy_coder::none, 1},      {false, entropy_coder::huffman, 1},   {false, entropy_coder::run_length, 1},
    {false, entropy_coder::deflate, 9},  {true, entropy_coder::huffman, 1},    {true, entropy_coder::run_length, 1},
    {true, entropy_coder::deflate, 1},   {true, entropy_coder::deflate, 6},    lossless_options::off()};

/// `count` fields of `width` bits packed LSB-first; each field is zero with probability
/// `zeros`, else uniform in [1, 2^width - 1].
std::vector<std::uint8_t> fields(std::size_t count, int width, double zeros, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::bernoulli_distribution zero(zeros);
  const std::uint32_t hi = width == 32 ? 0xFFFFFFFFu : (1u << width) - 1;
  std::uniform_int_distribution<std::uint32_t> value(1, hi);
  std::vector<std::uint8_t> out(train::detail::packed_bytes(count, width));
  train::detail::bit_packer p(out.data());
  for (std::size_t i = 0; i < count; ++i) p.put(zero(g) ? 0u : value(g), width);
  p.finish();
  return out;
}

std::vector<std::uint8_t> round_trip(lossless_codec& c, const std::vector<std::uint8_t>& in, std::size_t count, int width,
                                     const lossless_options& o) {
  std::vector<std::uint8_t> stream, back;
  c.compress(in, count, width, o, stream);
  c.decompress(stream, count, width, back);
  return back;
}

}  // namespace

TEST_CASE("round trip: random, all zeros, ReLU-like, empty, one element; widths 1..32") {
  lossless_codec c;
  for (const int width : {1, 2, 3, 4, 5, 8, 13, 16, 32}) {
    for (const std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4099}}) {
      for (const double zeros : {0.0, 0.5, 1.0}) {
        const auto in = fields(count, width, zeros, static_cast<std::uint32_t>(width * 7919 + count));
        for (const auto& o : all_options) {
          CAPTURE(width);
          CAPTURE(count);
          CAPTURE(zeros);
          CAPTURE(to_string(o));
          CHECK(round_trip(c, in, count, width, o) == in);
        }
      }
    }
  }
}

TEST_CASE("padding bits after the last field are not stored (decoded as zero)") {
  lossless_codec c;
  const std::vector<std::uint8_t> in{0xFF, 0xFF};  // 3 fields of 5 bits = 15 bits; bit 15 is padding
  for (const auto& o : all_options) {
    CAPTURE(to_string(o));
    CHECK(round_trip(c, in, 3, 5, o) == std::vector<std::uint8_t>{0xFF, 0x7F});
  }
}

TEST_CASE("the stage shrinks ReLU-like codes and all-zero streams") {
  lossless_codec c;
  std::vector<std::uint8_t> s;
  const std::size_t n = 1 << 16;
  // 4-bit codes, half zero: the zero mask costs 1 + 0.5 * 4 = 3 bits per field (+ 24 header
  // bytes), 75% of the packed 4 bits.
  const auto relu = fields(n, 4, 0.5, 3);
  c.compress(relu, n, 4, {true, entropy_coder::none, 1}, s);
  CHECK(s.size() == doctest::Approx(0.75 * static_cast<double>(relu.size())).epsilon(0.01));
  c.compress(relu, n, 4, {true, entropy_coder::huffman, 1}, s);
  CHECK(s.size() < relu.size() * 3 / 4);
  // Random data (no zeros, uniform codes) cannot shrink; the stored stream stays within the
  // header plus zlib's few bytes of framing over the raw size.
  const auto random = fields(n, 8, 0.0, 4);
  c.compress(random, n, 8, {false, entropy_coder::deflate, 6}, s);
  CHECK(s.size() <= random.size() + 24 + 64);
  // All zeros: run-length coding leaves almost nothing.
  const std::vector<std::uint8_t> zeros(n, 0);
  c.compress(zeros, n, 8, {true, entropy_coder::run_length, 1}, s);
  CHECK(s.size() < 200);
}

TEST_CASE("invalid arguments") {
  lossless_codec c;
  std::vector<std::uint8_t> s;
  const std::vector<std::uint8_t> in(4, 1);
  CHECK_THROWS_AS(c.compress(in, 4, 0, {}, s), qnas::invalid_argument);
  CHECK_THROWS_AS(c.compress(in, 4, 33, {}, s), qnas::invalid_argument);
  CHECK_THROWS_AS(c.compress(in, 5, 8, {}, s), qnas::invalid_argument);  // 5 bytes needed
  CHECK_THROWS_AS(c.compress(in, 4, 8, {true, entropy_coder::deflate, 0}, s), qnas::invalid_argument);
}

TEST_CASE("corrupt, truncated or mismatched streams throw io_error") {
  lossless_codec c;
  std::vector<std::uint8_t> out;
  const std::size_t n = 3000;
  const auto in = fields(n, 4, 0.5, 8);
  for (const auto& o : all_options) {
    if (!o.enabled()) continue;
    CAPTURE(to_string(o));
    std::vector<std::uint8_t> s;
    c.compress(in, n, 4, o, s);
    // Wrong expectations.
    CHECK_THROWS_AS(c.decompress(s, n + 1, 4, out), qnas::io_error);
    CHECK_THROWS_AS(c.decompress(s, n, 5, out), qnas::io_error);
    // Header damage.
    auto bad = s;
    bad[0] = 'X';
    CHECK_THROWS_WITH_AS(c.decompress(bad, n, 4, out), doctest::Contains("magic"), qnas::io_error);
    bad = s;
    bad[2] |= 0x40;
    CHECK_THROWS_AS(c.decompress(bad, n, 4, out), qnas::io_error);
    bad = s;
    bad[19] = 0x7F;  // absurd stage-1 size: rejected before any allocation
    CHECK_THROWS_AS(c.decompress(bad, n, 4, out), qnas::io_error);
    // Truncation at every length.
    for (std::size_t len = 0; len < s.size(); len += 1 + len / 8) {
      const std::vector<std::uint8_t> cut(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(len));
      CHECK_THROWS_AS(c.decompress(cut, n, 4, out), qnas::io_error);
    }
    // Trailing garbage.
    bad = s;
    bad.push_back(0);
    CHECK_THROWS_AS(c.decompress(bad, n, 4, out), qnas::io_error);
    // Random single-byte corruption of the body: reported by zlib or by the checksum, or
    // (only when it hits bits no decoder reads, like the padding of deflate's last byte)
    // harmless. Never wrong data, never a crash.
    std::mt19937 g(99);
    int detected = 0;
    const int trials = 200;
    for (int trial = 0; trial < trials; ++trial) {
      bad = s;
      std::uniform_int_distribution<std::size_t> pos(train::detail::stream_header_bytes, s.size() - 1);
      std::uniform_int_distribution<int> flip(1, 255);
      bad[pos(g)] ^= static_cast<std::uint8_t>(flip(g));
      try {
        c.decompress(bad, n, 4, out);
        CHECK(out == in);
      } catch (const qnas::io_error&) {
        ++detected;
      }
    }
    CHECK(detected >= trials * 95 / 100);
    // The codec is still usable after errors.
    c.decompress(s, n, 4, out);
    CHECK(out == in);
  }
}
