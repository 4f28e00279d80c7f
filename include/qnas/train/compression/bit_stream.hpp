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

/// Branch-free variant of bit_packer for variable widths (the zero mask writes a field with
/// width 0 or w at random): every put stores 8 bytes, so the destination needs 8 bytes of
/// slack past the last byte the fields occupy.
class slack_packer {
 public:
  explicit slack_packer(std::uint8_t* out) noexcept : p_(out) {}
  QNAS_ALWAYS_INLINE void put(std::uint32_t v, int width) noexcept {
    acc_ |= (static_cast<std::uint64_t>(v) & low_mask(width)) << n_;  // n_ < 8: fits in 40 bits
    n_ += width;
    store8(p_, acc_);
    const int whole = n_ >> 3;
    p_ += whole;
    acc_ >>= whole * 8;
    n_ &= 7;
  }
  /// One past the last byte that holds field bits.
  std::uint8_t* finish() noexcept {
    store8(p_, acc_);
    return p_ + (n_ > 0 ? 1 : 0);
  }

 private:
  static void store8(std::uint8_t* p, std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(p, &v, 8);
    } else {
      for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
  }
  std::uint8_t* p_;
  std::uint64_t acc_ = 0;
  int n_ = 0;
};

/// Branch-free reader of fields at a running bit position: reads 8 bytes around the position
/// (bytes past `end` read as zero, so it never reads out of bounds). Reading past the end
/// of the data is not an error here; callers check sizes before.
class position_reader {
 public:
  position_reader(const std::uint8_t* begin, const std::uint8_t* end) noexcept
      : p_(begin), size_(static_cast<std::size_t>(end - begin)) {}
  /// The next `width` bits (width in [0, 32]).
  QNAS_ALWAYS_INLINE std::uint32_t get(int width) noexcept {
    const std::size_t byte = pos_ >> 3;
    std::uint64_t w = 0;
    if (byte + 8 <= size_) {
      if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(&w, p_ + byte, 8);
      } else {
        for (int i = 0; i < 8; ++i) w |= static_cast<std::uint64_t>(p_[byte + i]) << (8 * i);
      }
    } else {
      for (std::size_t i = 0; byte + i < size_ && i < 8; ++i) w |= static_cast<std::uint64_t>(p_[byte + i]) << (8 * i);
    }
    const auto v = static_cast<std::uint32_t>((w >> (pos_ & 7)) & low_mask(width));
    pos_ += static_cast<std::size_t>(width);
    return v;
  }
  /// Bits consumed so far.
  [[nodiscard]] std::size_t position() const noexcept { return pos_; }

 private:
  const std::uint8_t* p_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace qnas::train::detail
