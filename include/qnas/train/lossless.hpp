// Lossless second stage for stored activations: zero-value masking and zlib entropy coding.
//
// After a narrow format, ReLU activations are mostly code 0 (about half the elements of a
// typical layer). The stage removes that redundancy without changing a single bit of the
// decoded values:
//   1. zero mask (optional): one presence bit per field, then only the non-zero fields. With a
//      fraction z of zeros a w-bit field costs 1 + (1 - z) * w bits instead of w.
//   2. entropy coder (optional): zlib deflate of the result, with the strategy chosen by
//      `entropy_coder` (Huffman only; run-length + Huffman; full LZ77 + Huffman).
// Everything it needs is kept between calls (zlib streams and buffers are reset, not
// reallocated), so a training step allocates nothing once buffers have reached their size.
//
// Stream layout (all integers little-endian):
//   [0..1]  magic "QZ"          [2] flags: bit 0 zero mask, bits 1-2 entropy coder
//   [3]     field width (bits)  [4..11] field count      [12..19] size of the stage-1 bytes
//   [20..23] adler32 of the stage-1 bytes
//   then the stage-1 bytes, deflated when an entropy coder is on.
// Stage-1 bytes are the packed fields, or with the zero mask: ceil(count / 8) bytes of
// presence bits followed by the non-zero fields packed at `width` bits.
// Decoding checks every one of these against what the caller expects and throws
// qnas::io_error on any mismatch: corrupt data is reported, never read out of bounds.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <zlib.h>

#include "qnas/core/diagnostics.hpp"
#include "qnas/train/compression/bit_stream.hpp"

namespace qnas::train {

/// The zlib strategy of the entropy-coding step (none: skip it).
enum class entropy_coder : std::uint8_t {
  none = 0,
  huffman = 1,     ///< Huffman codes only (Z_HUFFMAN_ONLY): fastest, no match search
  run_length = 2,  ///< runs of a repeated byte + Huffman (Z_RLE): catches long zero runs cheaply
  deflate = 3      ///< full LZ77 + Huffman (Z_DEFAULT_STRATEGY) at `level`
};

constexpr const char* to_string(entropy_coder e) noexcept {
  switch (e) {
    case entropy_coder::none: return "none";
    case entropy_coder::huffman: return "huffman";
    case entropy_coder::run_length: return "run_length";
    case entropy_coder::deflate: return "deflate";
  }
  return "?";
}

/// What the lossless stage does. `off()` stores the format's packed codes as they are.
struct lossless_options {
  bool zero_mask = true;
  entropy_coder entropy = entropy_coder::run_length;
  int level = 1;  ///< zlib level 1..9 (used by every entropy coder but none)

  static constexpr lossless_options off() noexcept { return {false, entropy_coder::none, 1}; }
  [[nodiscard]] constexpr bool enabled() const noexcept { return zero_mask || entropy != entropy_coder::none; }
  constexpr bool operator==(const lossless_options&) const = default;
};

inline std::string to_string(const lossless_options& o) {
  if (!o.enabled()) return "none";
  std::string s = o.zero_mask ? "zero_mask" : "";
  if (o.entropy != entropy_coder::none) s += std::string(o.zero_mask ? "+" : "") + to_string(o.entropy);
  return s;
}

namespace detail {

inline constexpr std::size_t stream_header_bytes = 24;

inline void put_le(std::uint8_t* p, std::uint64_t v, int bytes) noexcept {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint64_t get_le(const std::uint8_t* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

inline std::uint32_t adler32_of(const std::uint8_t* p, std::size_t n) noexcept {
  uLong a = ::adler32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const auto k = static_cast<uInt>(std::min<std::size_t>(n, std::size_t{1} << 30));
    a = ::adler32(a, p, k);
    p += k;
    n -= k;
  }
  return static_cast<std::uint32_t>(a);
}

constexpr int zlib_strategy(entropy_coder e) noexcept {
  switch (e) {
    case entropy_coder::huffman: return Z_HUFFMAN_ONLY;
    case entropy_coder::run_length: return Z_RLE;
    default: return Z_DEFAULT_STRATEGY;
  }
}

}  // namespace detail

/// Compresses and decompresses streams of fixed-width fields (the packed element codes of an
/// encoded tensor). Holds the zlib streams and a scratch buffer; not thread-safe: give each
/// thread its own. Move-only.
class lossless_codec {
 public:
  lossless_codec() = default;
  lossless_codec(lossless_codec&&) noexcept = default;
  lossless_codec& operator=(lossless_codec&&) noexcept = default;
  ~lossless_codec() = default;

  /// Compresses `count` fields of `width` bits (1..32) packed LSB-first in `packed` into `out`
  /// (replacing its content; its capacity is reused). Bits past the last field are ignored.
  void compress(std::span<const std::uint8_t> packed, std::size_t count, int width, const lossless_options& opt,
                std::vector<std::uint8_t>& out) {
    static constexpr const char* where = "qnas::train::lossless_codec::compress";
    check_width(width, where);
    if (packed.size() < detail::packed_bytes(count, width))
      throw invalid_argument(where, qnas::detail::cat(count, " fields of ", width, " bits need ",
                                                      detail::packed_bytes(count, width), " bytes; got ", packed.size()));
    if (opt.entropy != entropy_coder::none && (opt.level < 1 || opt.level > 9))
      throw invalid_argument(where, qnas::detail::cat("zlib level ", opt.level, " is outside [1, 9]"));

    // Stage 1 goes straight into `out` when there is no entropy coder, else into scratch.
    const bool entropy = opt.entropy != entropy_coder::none;
    std::vector<std::uint8_t>& s1 = entropy ? scratch_ : out;
    const std::size_t s1_offset = entropy ? 0 : detail::stream_header_bytes;
    std::size_t s1_size = 0;
    if (opt.zero_mask) {
      const std::size_t mask_bytes = (count + 7) / 8;
      // Worst case (no zero) plus the 8 bytes of slack slack_packer writes into.
      s1.resize(s1_offset + mask_bytes + detail::packed_bytes(count, width) + 8);
      std::uint8_t* mask = s1.data() + s1_offset;
      detail::position_reader in(packed.data(), packed.data() + packed.size());
      detail::slack_packer nz(mask + mask_bytes);
      // Branch-free: ReLU zeros are scattered at random, so a branch per field would be
      // mispredicted half the time. A zero field is "written" with width 0.
      for (std::size_t i = 0; i < count; i += 8) {
        const std::size_t m = std::min<std::size_t>(8, count - i);
        unsigned byte = 0;
        for (std::size_t j = 0; j < m; ++j) {
          const std::uint32_t v = in.get(width);
          const unsigned present = v != 0 ? 1u : 0u;
          byte |= present << j;
          nz.put(v, width * static_cast<int>(present));
        }
        mask[i >> 3] = static_cast<std::uint8_t>(byte);
      }
      s1_size = static_cast<std::size_t>(nz.finish() - (s1.data() + s1_offset));
      s1.resize(s1_offset + s1_size);
    } else {
      s1_size = detail::packed_bytes(count, width);
      s1.resize(s1_offset + s1_size);
      if (s1_size > 0) std::memcpy(s1.data() + s1_offset, packed.data(), s1_size);
      if (const int tail = static_cast<int>((count * static_cast<std::size_t>(width)) % 8); tail != 0)
        s1[s1_offset + s1_size - 1] &= static_cast<std::uint8_t>((1u << tail) - 1);  // padding is zero
    }
    const std::uint32_t check = detail::adler32_of(s1.data() + s1_offset, s1_size);

    std::size_t total = detail::stream_header_bytes + s1_size;
    if (entropy) total = detail::stream_header_bytes + deflate_into(s1.data(), s1_size, opt, out);
    out.resize(total);
    std::uint8_t* h = out.data();
    h[0] = 'Q';
    h[1] = 'Z';
    h[2] = static_cast<std::uint8_t>((opt.zero_mask ? 1u : 0u) | (static_cast<unsigned>(opt.entropy) << 1));
    h[3] = static_cast<std::uint8_t>(width);
    detail::put_le(h + 4, count, 8);
    detail::put_le(h + 12, s1_size, 8);
    detail::put_le(h + 20, check, 4);
  }

  /// Decompresses a stream made by compress() into exactly `count` fields of `width` bits,
  /// packed LSB-first into `out` (sized to packed_bytes(count, width); padding bits zero).
  /// Throws qnas::io_error when the stream is truncated, corrupt, or holds other fields.
  void decompress(std::span<const std::uint8_t> stream, std::size_t count, int width, std::vector<std::uint8_t>& out) {
    static constexpr const char* where = "qnas::train::lossless_codec::decompress";
    check_width(width, where);
    if (stream.size() < detail::stream_header_bytes)
      throw io_error(where, qnas::detail::cat("stream of ", stream.size(), " bytes is shorter than its ",
                                              detail::stream_header_bytes, "-byte header"));
    const std::uint8_t* h = stream.data();
    if (h[0] != 'Q' || h[1] != 'Z') throw io_error(where, "bad magic: not a qnas lossless stream");
    if ((h[2] & ~0x07u) != 0) throw io_error(where, qnas::detail::cat("unknown flags ", unsigned{h[2]}));
    const bool zero_mask = (h[2] & 1u) != 0;
    const auto entropy = static_cast<entropy_coder>(h[2] >> 1);
    if (h[3] != width || detail::get_le(h + 4, 8) != count)
      throw io_error(where, qnas::detail::cat("stream holds ", detail::get_le(h + 4, 8), " fields of ", unsigned{h[3]},
                                              " bits; expected ", count, " of ", width));
    const std::uint64_t s1_size = detail::get_le(h + 12, 8);
    const auto check = static_cast<std::uint32_t>(detail::get_le(h + 20, 4));
    const std::size_t mask_bytes = zero_mask ? (count + 7) / 8 : 0;
    const std::size_t field_bytes = detail::packed_bytes(count, width);
    // The largest stage-1 size these fields can have; a bigger one is corrupt (and must not
    // drive an allocation).
    if (s1_size > mask_bytes + field_bytes || (!zero_mask && s1_size != field_bytes))
      throw io_error(where, qnas::detail::cat("stage-1 size ", s1_size, " is impossible for ", count, " fields of ",
                                              width, " bits"));
    const std::span<const std::uint8_t> body = stream.subspan(detail::stream_header_bytes);

    const std::uint8_t* s1 = body.data();
    if (entropy != entropy_coder::none) {
      inflate_into(body, static_cast<std::size_t>(s1_size), scratch_);
      s1 = scratch_.data();
    } else if (body.size() != s1_size) {
      throw io_error(where, qnas::detail::cat("stream body is ", body.size(), " bytes; its header says ", s1_size));
    }
    if (detail::adler32_of(s1, static_cast<std::size_t>(s1_size)) != check)
      throw io_error(where, "checksum mismatch: the stored activation data is corrupt");

    out.resize(field_bytes);
    if (!zero_mask) {
      if (field_bytes > 0) std::memcpy(out.data(), s1, field_bytes);
      return;
    }
    std::size_t nonzero = 0;
    for (std::size_t b = 0; b < mask_bytes; ++b) nonzero += static_cast<std::size_t>(std::popcount(s1[b]));
    if (count % 8 != 0 && (s1[mask_bytes - 1] >> (count % 8)) != 0)
      throw io_error(where, "presence bits set past the last field");
    if (s1_size != mask_bytes + detail::packed_bytes(nonzero, width))
      throw io_error(where, qnas::detail::cat(nonzero, " non-zero fields of ", width, " bits do not fill the ",
                                              s1_size - mask_bytes, " bytes stored"));
    // The sizes match, so the non-zero fields are all there: a branch-free reader will do.
    detail::position_reader nz(s1 + mask_bytes, s1 + s1_size);
    detail::bit_packer o(out.data());
    for (std::size_t i = 0; i < count; ++i) {
      const int present = (s1[i >> 3] >> (i & 7)) & 1;
      o.put(nz.get(width * present), width);  // get(0) reads nothing and gives 0: no branch
    }
    o.finish();
  }

 private:
  struct deflate_stream {
    z_stream z{};
    int level = 0;
    entropy_coder coder = entropy_coder::none;
    ~deflate_stream() { deflateEnd(&z); }
  };
  struct inflate_stream {
    z_stream z{};
    ~inflate_stream() { inflateEnd(&z); }
  };

  static void check_width(int width, const char* where) {
    if (width < 1 || width > 32)
      throw invalid_argument(where, qnas::detail::cat("field width ", width, " is outside [1, 32]"));
  }

  /// Deflates [in, in + n) into out after the stream header; returns the deflated size.
  std::size_t deflate_into(const std::uint8_t* in, std::size_t n, const lossless_options& opt,
                           std::vector<std::uint8_t>& out) {
    static constexpr const char* where = "qnas::train::lossless_codec::compress";
    if (!def_ || def_->level != opt.level || def_->coder != opt.entropy) {
      def_.reset();  // parameters changed (rare: a policy switched coders): start a fresh stream
      auto d = std::make_unique<deflate_stream>();
      if (deflateInit2(&d->z, opt.level, Z_DEFLATED, 15, 8, detail::zlib_strategy(opt.entropy)) != Z_OK)
        throw invalid_argument(where, "zlib deflateInit2 failed (out of memory?)");
      d->level = opt.level;
      d->coder = opt.entropy;
      def_ = std::move(d);
    } else {
      deflateReset(&def_->z);
    }
    z_stream& z = def_->z;
    const std::size_t bound = deflateBound(&z, static_cast<uLong>(n));
    out.resize(detail::stream_header_bytes + bound);
    z.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
    z.next_out = out.data() + detail::stream_header_bytes;
    std::size_t in_left = n, out_left = bound;
    for (;;) {
      z.avail_in = static_cast<uInt>(std::min<std::size_t>(in_left, std::size_t{1} << 30));
      z.avail_out = static_cast<uInt>(std::min<std::size_t>(out_left, std::size_t{1} << 30));
      const uInt ai = z.avail_in, ao = z.avail_out;
      const bool last = in_left == ai;
      const int rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      in_left -= ai - z.avail_in;
      out_left -= ao - z.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        throw invalid_argument(where, qnas::detail::cat("zlib deflate failed with code ", rc));
    }
    return bound - out_left;
  }

  /// Inflates `body` into exactly `n` bytes of out; the stream must end exactly there.
  void inflate_into(std::span<const std::uint8_t> body, std::size_t n, std::vector<std::uint8_t>& out) {
    static constexpr const char* where = "qnas::train::lossless_codec::decompress";
    if (!inf_) {
      auto s = std::make_unique<inflate_stream>();
      if (inflateInit(&s->z) != Z_OK) throw io_error(where, "zlib inflateInit failed (out of memory?)");
      inf_ = std::move(s);
    } else {
      inflateReset(&inf_->z);
    }
    z_stream& z = inf_->z;
    out.resize(n + 1);  // one spare byte: output beyond n means the stream is longer than stated
    z.next_in = const_cast<Bytef*>(body.data());
    z.next_out = out.data();
    std::size_t in_left = body.size(), out_left = n + 1;
    for (;;) {
      z.avail_in = static_cast<uInt>(std::min<std::size_t>(in_left, std::size_t{1} << 30));
      z.avail_out = static_cast<uInt>(std::min<std::size_t>(out_left, std::size_t{1} << 30));
      const uInt ai = z.avail_in, ao = z.avail_out;
      const int rc = inflate(&z, Z_NO_FLUSH);
      in_left -= ai - z.avail_in;
      out_left -= ao - z.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR)  // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR
        throw io_error(where, qnas::detail::cat("deflate data is corrupt (zlib: ", z.msg ? z.msg : "error", ")"));
      if (out_left == 0) throw io_error(where, qnas::detail::cat("deflate data decodes to more than ", n, " bytes"));
      if (in_left == 0)
        throw io_error(where, qnas::detail::cat("deflate data is truncated after ", n + 1 - out_left, " of ", n, " bytes"));
    }
    if (out_left != 1 || in_left != 0)
      throw io_error(where, qnas::detail::cat("deflate data decodes to ", n + 1 - out_left, " bytes using ",
                                              body.size() - in_left, " of ", body.size(), " input bytes; expected ", n,
                                              " bytes using all"));
    out.resize(n);
  }

  std::unique_ptr<deflate_stream> def_;
  std::unique_ptr<inflate_stream> inf_;
  std::vector<std::uint8_t> scratch_;
};

}  // namespace qnas::train
