// activation_codec: a number format as a run-time value that encodes float buffers to packed codes and back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/ops.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/train/compression/bit_stream.hpp"

namespace qnas::train {

namespace detail {

using qnas::detail::line_layout;

/// Number of blocks (= block headers) of a tensor laid out as `l` for block size B.
constexpr std::size_t block_count(const line_layout& l, std::size_t block) noexcept {
  return l.outer * ((l.len + block - 1) / block) * l.inner;
}

/// Index of the first NaN in [p, p + n), or n. The common no-NaN case is one vectorized pass.
inline std::size_t find_nan(const float* p, std::size_t n) noexcept {
  std::uint32_t any = 0;
#pragma omp simd reduction(| : any)
  for (std::size_t i = 0; i < n; ++i) any |= (qnas::detail::to_bits(p[i]) & 0x7FFFFFFFu) > 0x7F800000u ? 1u : 0u;
  if (any == 0) return n;
  std::size_t i = 0;
  while (!qnas::detail::is_nan(p[i])) ++i;
  return i;
}

/// Scratch for blocks that do not lie along the last axis (their codes are strided); one per
/// thread, grown once.
inline std::vector<std::uint32_t>& strided_scratch(std::size_t n) {
  thread_local std::vector<std::uint32_t> s;
  if (s.size() < n) s.resize(n);
  return s;
}

/// Encodes in the exact layout of qnas::encode<F>: element codes row-major, block headers in
/// (outer, block, inner) order, both packed LSB-first.
template <number_format F, class R>
void encode_raw(const float* p, const line_layout& l, std::uint8_t* codes, std::uint8_t* headers, R& round) {
  bit_packer cp(codes);
  if constexpr (scalar_format<F>) {
    // Codes first into a small buffer (a loop the compiler can vectorize), then packed.
    constexpr std::size_t chunk = 256;
    std::uint32_t buf[chunk];
    const std::size_t n = l.size();
    for (std::size_t i = 0; i < n; i += chunk) {
      const std::size_t m = std::min(chunk, n - i);
      for (std::size_t j = 0; j < m; ++j) buf[j] = F::encode_one(p[i + j], round);
      for (std::size_t j = 0; j < m; ++j) cp.put(buf[j], F::bits);
    }
  } else {
    constexpr auto B = static_cast<std::size_t>(F::block_size);
    bit_packer hp(headers);
    std::uint32_t bc[B];
    if (l.inner == 1) {  // blocks are contiguous runs of a row
      for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t k = 0; k < l.len; k += B) {
          const std::size_t n = std::min(B, l.len - k);
          hp.put64(F::encode_block(p + o * l.len + k, bc, n, round), F::scale_bits);
          for (std::size_t j = 0; j < n; ++j) cp.put(bc[j], F::bits);
        }
    } else {  // rows k..k+n of a slice are contiguous; each inner index is one strided block
      auto& sc = strided_scratch(B * l.inner);
      float gather[B];
      for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t k = 0; k < l.len; k += B) {
          const std::size_t n = std::min(B, l.len - k);
          const float* base = p + (o * l.len + k) * l.inner;
          for (std::size_t i = 0; i < l.inner; ++i) {
            for (std::size_t j = 0; j < n; ++j) gather[j] = base[j * l.inner + i];
            hp.put64(F::encode_block(gather, bc, n, round), F::scale_bits);
            for (std::size_t j = 0; j < n; ++j) sc[j * l.inner + i] = bc[j];
          }
          for (std::size_t j = 0; j < n * l.inner; ++j) cp.put(sc[j], F::bits);
        }
    }
    hp.finish();
  }
  cp.finish();
}

template <number_format F>
void decode_raw(const std::uint8_t* codes, const std::uint8_t* codes_end, const std::uint8_t* headers,
                const std::uint8_t* headers_end, const line_layout& l, float* q) {
  static constexpr const char* where = "qnas::train::activation_codec::decode";
  bit_unpacker cu(codes, codes_end, where);
  if constexpr (scalar_format<F>) {
    const std::size_t n = l.size();
    for (std::size_t i = 0; i < n; ++i) q[i] = F::decode_one(cu.get(F::bits));
  } else {
    constexpr auto B = static_cast<std::size_t>(F::block_size);
    bit_unpacker hu(headers, headers_end, where);
    std::uint32_t bc[B];
    if (l.inner == 1) {
      for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t k = 0; k < l.len; k += B) {
          const std::size_t n = std::min(B, l.len - k);
          const std::uint64_t h = hu.get64(F::scale_bits);
          for (std::size_t j = 0; j < n; ++j) bc[j] = cu.get(F::bits);
          F::decode_block(h, bc, q + o * l.len + k, n);
        }
    } else {
      auto& sc = strided_scratch(B * l.inner);
      float out[B];
      for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t k = 0; k < l.len; k += B) {
          const std::size_t n = std::min(B, l.len - k);
          float* base = q + (o * l.len + k) * l.inner;
          for (std::size_t j = 0; j < n * l.inner; ++j) sc[j] = cu.get(F::bits);
          for (std::size_t i = 0; i < l.inner; ++i) {
            for (std::size_t j = 0; j < n; ++j) bc[j] = sc[j * l.inner + i];
            F::decode_block(hu.get64(F::scale_bits), bc, out, n);
            for (std::size_t j = 0; j < n; ++j) base[j * l.inner + i] = out[j];
          }
        }
    }
  }
}

}  // namespace detail

/// A number format as a value that encodes activations for storage: `of<F>()` instantiates the
/// encode/decode loops of F once; the default (`float32()`) stores raw float bits. Layers of
/// run-time networks and the adaptive policy hold these, so a format chosen at run time needs
/// no template instantiation per combination (DESIGN.md section 3, rule 1).
///
/// The packed layout is exactly qnas::encode<F>'s (`encoded<F>::codes` and `::headers`), so
/// decode(encode(x)) == qnas::quantize<F>(x) bit for bit, written into caller buffers without
/// allocating.
class activation_codec {
 public:
  using engine_type = quantizer::engine_type;

  /// float32: stores the raw float bits (32 per element, no headers).
  activation_codec() = default;
  static activation_codec float32() { return {}; }

  template <number_format F>
  static activation_codec of() {
    static_assert(!tensor_scaled_format<F>,
                  "qnas::train::activation_codec::of<F>: F has scales computed from the data (formats/scaled.hpp); "
                  "stored activations cannot keep per-tensor or per-channel scales yet: use a scalar or block format");
    activation_codec c;
    c.info_ = info_of<F>();
    c.name_ = F::name();
    c.encode_ = &encode_fn<F>;
    c.decode_ = &decode_fn<F>;
    c.stochastic_ = F::rounding::needs_engine;
    return c;
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const format_info& info() const noexcept { return info_; }
  [[nodiscard]] bool is_float32() const noexcept { return encode_ == nullptr; }
  [[nodiscard]] bool needs_engine() const noexcept { return stochastic_; }
  /// Bits of one element's code (32 for float32).
  [[nodiscard]] int code_bits() const noexcept { return info_.bits; }

  /// Bytes of packed element codes for `elements` values.
  [[nodiscard]] std::size_t code_bytes(std::size_t elements) const noexcept {
    return detail::packed_bytes(elements, info_.bits);
  }
  /// Bytes of packed block headers for a tensor of `shape` blocked along `axis`.
  [[nodiscard]] std::size_t header_bytes(std::span<const std::size_t> shape, std::ptrdiff_t axis = last_axis) const {
    if (info_.block_size <= 1 || info_.scale_bits == 0) return 0;
    const auto l = qnas::detail::layout_of(shape, axis, "qnas::train::activation_codec");
    return detail::packed_bytes(detail::block_count(l, static_cast<std::size_t>(info_.block_size)), info_.scale_bits);
  }

  /// Encodes `in` (row-major, `shape`, blocks along `axis`) into `codes` and `headers`
  /// (resized to code_bytes / header_bytes; their capacity is reused). Stochastic formats draw
  /// from `engine`, which must then be non-null. Throws qnas::invalid_argument on a size
  /// mismatch or a NaN the format cannot encode.
  void encode(std::span<const float> in, std::span<const std::size_t> shape, std::ptrdiff_t axis,
              std::vector<std::uint8_t>& codes, std::vector<std::uint8_t>& headers, engine_type* engine = nullptr) const {
    static constexpr const char* where = "qnas::train::activation_codec::encode";
    const auto l = qnas::detail::layout_of(shape, axis, where);
    if (in.size() != l.size())
      throw invalid_argument(where, qnas::detail::cat(name_, ": ", in.size(), " values do not match the shape's ",
                                                      l.size(), " elements"));
    if (stochastic_ && engine == nullptr)
      throw invalid_argument(where, name_ + " uses stochastic rounding and needs an engine");
    codes.resize(code_bytes(l.size()));
    headers.resize(header_bytes(shape, axis));
    if (encode_ == nullptr) {
      if (!in.empty()) std::memcpy(codes.data(), in.data(), in.size_bytes());
      return;
    }
    encode_(in.data(), l, codes.data(), headers.data(), engine);
  }

  /// Decodes codes and headers made by encode() for the same shape and axis into `out`.
  /// Throws qnas::io_error when the data is shorter than the shape requires.
  void decode(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> headers,
              std::span<const std::size_t> shape, std::ptrdiff_t axis, std::span<float> out) const {
    static constexpr const char* where = "qnas::train::activation_codec::decode";
    const auto l = qnas::detail::layout_of(shape, axis, where);
    if (out.size() != l.size())
      throw invalid_argument(where, qnas::detail::cat(name_, ": output of ", out.size(), " values does not match the shape's ",
                                                      l.size(), " elements"));
    if (codes.size() < code_bytes(l.size()) || headers.size() < header_bytes(shape, axis))
      throw io_error(where, qnas::detail::cat(name_, ": ", codes.size(), " code bytes and ", headers.size(),
                                              " header bytes are fewer than the shape needs (", code_bytes(l.size()), " and ",
                                              header_bytes(shape, axis), ")"));
    if (decode_ == nullptr) {
      if (!out.empty()) std::memcpy(out.data(), codes.data(), out.size_bytes());
      return;
    }
    decode_(codes.data(), codes.data() + codes.size(), headers.data(), headers.data() + headers.size(), l, out.data());
  }

  /// Same format (same instantiated loops).
  friend bool operator==(const activation_codec& a, const activation_codec& b) noexcept {
    return a.encode_ == b.encode_;
  }

 private:
  using encode_ptr = void (*)(const float*, const detail::line_layout&, std::uint8_t*, std::uint8_t*, engine_type*);
  using decode_ptr = void (*)(const std::uint8_t*, const std::uint8_t*, const std::uint8_t*, const std::uint8_t*,
                              const detail::line_layout&, float*);

  template <number_format F>
  static void encode_fn(const float* in, const detail::line_layout& l, std::uint8_t* codes, std::uint8_t* headers,
                        engine_type* engine) {
    if constexpr (!F::has_nan) {
      if (const std::size_t i = detail::find_nan(in, l.size()); i != l.size())
        throw invalid_argument("qnas::train::activation_codec::encode",
                               qnas::detail::cat(F::name(), " has no NaN code; input element ", i, " is NaN"));
    }
    if constexpr (F::rounding::needs_engine) {
      auto round = qnas::detail::make_rounder<F>(*engine);
      detail::encode_raw<F>(in, l, codes, headers, round);
    } else {
      auto round = qnas::detail::make_rounder<F>();
      detail::encode_raw<F>(in, l, codes, headers, round);
    }
  }
  template <number_format F>
  static void decode_fn(const std::uint8_t* c, const std::uint8_t* ce, const std::uint8_t* h, const std::uint8_t* he,
                        const detail::line_layout& l, float* out) {
    detail::decode_raw<F>(c, ce, h, he, l, out);
  }

  format_info info_ = float32_info;
  std::string name_ = "float32";
  encode_ptr encode_ = nullptr;
  decode_ptr decode_ = nullptr;
  bool stochastic_ = false;
};

}  // namespace qnas::train
