// Fixed-width fields packed least-significant-bit first into raw byte buffers (no allocation).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "qnas/core/config.hpp"
#include "qnas/core/diagnostics.hpp"

namespace qnas::train::detail {

/// Bytes needed for `count` fields of `width` bits.
constexpr std::size_t packed_bytes(std::size_t count, int width) noexcept {
  return (count * static_cast<std::size_t>(width) + 7) / 8;
}

constexpr std::uint64_t low_mask(int width) noexcept {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

/// Writes fields into memory the caller sized with packed_bytes(): the same layout as
/// qnas::detail::bit_writer (what qnas::encode produces), a 64-bit register at a time instead
/// of a bit at a time. Unused high bits of the last byte are zero.
class bit_packer {
 public:
  explicit bit_packer(std::uint8_t* out) noexcept : p_(out) {}

  /// Appends the low `width` bits of v (width in [0, 32]).
  QNAS_ALWAYS_INLINE void put(std::uint32_t v, int width) noexcept {
    acc_ |= (static_cast<std::uint64_t>(v) & low_mask(width)) << n_;
    n_ += width;
    if (n_ >= 32) {  // flush four whole bytes at once (n_ < 32 + 32 keeps acc_ in 64 bits)
      if constexpr (std::endian::native == std::endian::little) {
        const auto w = static_cast<std::uint32_t>(acc_);
        std::memcpy(p_, &w, 4);
      } else {
        for (int i = 0; i < 4; ++i) p_[i] = static_cast<std::uint8_t>(acc_ >> (8 * i));
      }
      p_ += 4;
      acc_ >>= 32;
      n_ -= 32;
    }
  }
  /// Appends the low `width` bits of v (width in [0, 64]).
  void put64(std::uint64_t v, int width) noexcept {
    if (width <= 32) return put(static_cast<std::uint32_t>(v), width);
    put(static_cast<std::uint32_t>(v), 32);
    put(static_cast<std::uint32_t>(v >> 32), width - 32);
  }
  /// Flushes a partial last byte; returns one past the last byte written.
  std::uint8_t* finish() noexcept {
    while (n_ >= 8) {
      *p_++ = static_cast<std::uint8_t>(acc_);
      acc_ >>= 8;
      n_ -= 8;
    }
    if (n_ > 0) *p_++ = static_cast<std::uint8_t>(acc_);
    acc_ = 0;
    n_ = 0;
    return p_;
  }

 private:
  std::uint8_t* p_;
  std::uint64_t acc_ = 0;
  int n_ = 0;
};

/// Reads fields written by bit_packer from [begin, end); reading past `end` throws
/// qnas::io_error naming `where` (stored data never drives a read out of bounds).
class bit_unpacker {
 public:
  bit_unpacker(const std::uint8_t* begin, const std::uint8_t* end, const char* where) noexcept
      : p_(begin), end_(end), where_(where) {}

  /// The next `width` bits (width in [0, 32]; 0 reads nothing and gives 0).
  QNAS_ALWAYS_INLINE std::uint32_t get(int width) {
    if (n_ < width && end_ - p_ >= 4) {  // refill four bytes at once (n_ + 32 < 64)
      std::uint32_t w;
      if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(&w, p_, 4);
      } else {
        w = static_cast<std::uint32_t>(p_[0]) | static_cast<std::uint32_t>(p_[1]) << 8 |
            static_cast<std::uint32_t>(p_[2]) << 16 | static_cast<std::uint32_t>(p_[3]) << 24;
      }
      acc_ |= static_cast<std::uint64_t>(w) << n_;
      p_ += 4;
      n_ += 32;
    }
    while (n_ < width) {
      if (p_ == end_) short_data();
      acc_ |= static_cast<std::uint64_t>(*p_++) << n_;
      n_ += 8;
    }
    const auto v = static_cast<std::uint32_t>(acc_ & low_mask(width));
    acc_ >>= width;
    n_ -= width;
    return v;
  }
  std::uint64_t get64(int width) {
    if (width <= 32) return get(width);
    const std::uint64_t lo = get(32);
    return lo | (static_cast<std::uint64_t>(get(width - 32)) << 32);
  }

 private:
  [[noreturn]] void short_data() const {
    throw io_error(where_, "packed data ends before the fields its shape requires");
  }
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const char* where_;
  std::uint64_t acc_ = 0;
  int n_ = 0;
};

}  // namespace qnas::train::detail
