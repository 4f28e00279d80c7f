// Generic operations on any number_format: quantize (fake quantization), encode/decode to
// packed codes, and the list of representable values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/concept.hpp"

namespace qnas {

/// Axis argument meaning "the last axis" (the default blocking axis of block formats).
inline constexpr std::ptrdiff_t last_axis = -1;

namespace detail {

/// Row-major view of a tensor as (outer, len, inner) around the blocking axis: element
/// (o, k, i) sits at (o * len + k) * inner + i.
struct line_layout {
  std::size_t outer = 1, len = 1, inner = 1;
  std::size_t rank = 1;  ///< rank of the tensor (a tensor-scaled format gives rank <= 1 one scale)
  [[nodiscard]] std::size_t size() const noexcept { return outer * len * inner; }
};

template <class Shape>
line_layout layout_of(const Shape& shape, std::ptrdiff_t axis, const char* where) {
  const auto rank = static_cast<std::ptrdiff_t>(shape.size());
  if (rank == 0) return {1, 1, 1, 0};
  const std::ptrdiff_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw invalid_argument(where, cat("axis ", axis, " is out of range for a tensor of rank ", rank));
  line_layout l;
  l.rank = static_cast<std::size_t>(rank);
  for (std::ptrdiff_t d = 0; d < a; ++d) l.outer *= shape[static_cast<std::size_t>(d)];
  l.len = shape[static_cast<std::size_t>(a)];
  for (std::ptrdiff_t d = a + 1; d < rank; ++d) l.inner *= shape[static_cast<std::size_t>(d)];
  return l;
}

template <number_format F>
auto make_rounder() {
  static_assert(!F::rounding::needs_engine,
                "qnas::quantize<F>: F uses stochastic rounding; pass a seeded engine: "
                "quantize<F>(x, axis, engine)");
  return typename F::rounding{};
}

template <number_format F, class Engine>
auto make_rounder(Engine& engine) {
  if constexpr (F::rounding::needs_engine)
    return stochastic_rounder<Engine>(engine);
  else
    return typename F::rounding{};
}

/// Applies `fn(in_block, out_block, n)` to every block along the axis. Blocks on the last axis
/// are contiguous; otherwise they are gathered into a scratch buffer and scattered back.
template <std::size_t Block, class Fn>
void for_each_block(const float* in, float* out, const line_layout& l, Fn&& fn) {
  if (l.inner == 1) {
    for (std::size_t o = 0; o < l.outer; ++o) {
      const float* src = in + o * l.len;
      float* dst = out + o * l.len;
      for (std::size_t k = 0; k < l.len; k += Block) fn(src + k, dst + k, std::min(Block, l.len - k));
    }
    return;
  }
  float gather[Block];
  float scatter[Block];
  for (std::size_t o = 0; o < l.outer; ++o)
    for (std::size_t k = 0; k < l.len; k += Block) {
      const std::size_t n = std::min(Block, l.len - k);
      for (std::size_t i = 0; i < l.inner; ++i) {
        const std::size_t base = (o * l.len + k) * l.inner + i;
        for (std::size_t j = 0; j < n; ++j) gather[j] = in[base + j * l.inner];
        fn(static_cast<const float*>(gather), static_cast<float*>(scatter), n);
        for (std::size_t j = 0; j < n; ++j) out[base + j * l.inner] = scatter[j];
      }
    }
}

/// Copies (outer, len, inner)-ordered values into (outer, inner, len) order (the blocking axis
/// last), and back.
template <class T>
void to_axis_last(const T* in, T* out, const line_layout& l) {
  for (std::size_t o = 0; o < l.outer; ++o)
    for (std::size_t k = 0; k < l.len; ++k)
      for (std::size_t i = 0; i < l.inner; ++i) out[(o * l.inner + i) * l.len + k] = in[(o * l.len + k) * l.inner + i];
}
template <class T>
void from_axis_last(const T* in, T* out, const line_layout& l) {
  for (std::size_t o = 0; o < l.outer; ++o)
    for (std::size_t k = 0; k < l.len; ++k)
      for (std::size_t i = 0; i < l.inner; ++i) out[(o * l.len + k) * l.inner + i] = in[(o * l.inner + i) * l.len + k];
}

/// Scale groups of a tensor-scaled format over a tensor laid out as `l`: one per index of the
/// axis (per-channel scales, rank >= 2), else one.
template <tensor_scaled_format F>
std::size_t scale_groups(const line_layout& l) noexcept {
  return (F::per_channel_scales && l.rank >= 2) ? l.len : 1;
}

/// Runs fn(in, out, rows, groups) of a tensor-scaled format on the tensor laid out as `l`,
/// moving the channel axis last first when it is not (values of type T in, U out).
template <tensor_scaled_format F, class T, class U, class Fn>
void with_scale_groups(const T* in, U* out, const line_layout& l, Fn&& fn) {
  const std::size_t n = l.size();
  if (n == 0) return;
  const std::size_t groups = scale_groups<F>(l);
  if (groups == 1) return fn(in, out, n, std::size_t{1});
  if (l.inner == 1) return fn(in, out, l.outer, l.len);
  std::vector<T> t(n);
  std::vector<U> u(n);
  to_axis_last(in, t.data(), l);
  fn(static_cast<const T*>(t.data()), u.data(), l.outer * l.inner, l.len);
  from_axis_last(static_cast<const U*>(u.data()), out, l);
}

template <number_format F, class R>
void quantize_raw(const float* in, float* out, const line_layout& l, R& round) {
  if constexpr (tensor_scaled_format<F>) {
    with_scale_groups<F>(in, out, l, [](const float* i, float* o, std::size_t rows, std::size_t groups) {
      F::quantize_rows(i, o, rows, groups);
    });
  } else if constexpr (scalar_format<F>) {
    const std::size_t n = l.size();
    if constexpr (R::needs_engine) {
      // a stochastic rounder's engine carries state from one element to the next
      for (std::size_t i = 0; i < n; ++i) out[i] = F::quantize_one(in[i], round);
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) out[i] = F::quantize_one(in[i], round);
    }
  } else {
    for_each_block<static_cast<std::size_t>(F::block_size)>(
        in, out, l, [&](const float* b, float* q, std::size_t n) { F::quantize_block(b, q, n, round); });
  }
}

/// Appends fixed-width fields to a byte vector, least significant bit first.
class bit_writer {
 public:
  explicit bit_writer(std::vector<std::uint8_t>& bytes) : bytes_(bytes) {}
  void put(std::uint64_t value, int nbits) {
    for (int b = 0; b < nbits; ++b, ++pos_) {
      if ((pos_ & 7u) == 0) bytes_.push_back(0);
      bytes_.back() |= static_cast<std::uint8_t>(((value >> b) & 1u) << (pos_ & 7u));
    }
  }

 private:
  std::vector<std::uint8_t>& bytes_;
  std::size_t pos_ = 0;
};

/// Reads fields written by bit_writer.
class bit_reader {
 public:
  explicit bit_reader(const std::vector<std::uint8_t>& bytes) : bytes_(bytes) {}
  std::uint64_t get(int nbits) {
    if (pos_ + static_cast<std::size_t>(nbits) > bytes_.size() * 8)
      throw invalid_argument("qnas::decode", "packed data is shorter than its shape requires");
    std::uint64_t v = 0;
    for (int b = 0; b < nbits; ++b, ++pos_)
      v |= static_cast<std::uint64_t>((bytes_[pos_ >> 3] >> (pos_ & 7u)) & 1u) << b;
    return v;
  }

 private:
  const std::vector<std::uint8_t>& bytes_;
  std::size_t pos_ = 0;
};

template <class E>
xt::xarray<float> to_float_array(const xt::xexpression<E>& x) {
  return xt::xarray<float, xt::layout_type::row_major>(x.derived_cast());
}

}  // namespace detail

/// A tensor encoded in format F: element codes (F::bits each) and per-block headers
/// (F::scale_bits each), both packed least-significant-bit first. Element codes are stored
/// in row-major order; block headers in (outer, block along the axis, inner) order. For a
/// tensor-scaled format the headers are its per-group scales (F::header_bits each), one per
/// index of the axis (per-channel scales) or one for the tensor.
template <number_format F>
struct encoded {
  std::vector<std::size_t> shape;
  std::size_t axis = 0;
  std::vector<std::uint8_t> codes;
  std::vector<std::uint8_t> headers;

  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  /// Bytes of packed storage (codes plus block headers).
  [[nodiscard]] std::size_t bytes() const noexcept { return codes.size() + headers.size(); }
};

/// Fake-quantizes x (any xtensor expression) in format F: returns the dequantized values, the
/// form quantization-aware training uses. Block formats block along `axis` (default: last);
/// per-channel scaled formats take one scale per index of `axis`.
template <number_format F, class E>
xt::xarray<float> quantize(const xt::xexpression<E>& x, std::ptrdiff_t axis = last_axis) {
  auto in = detail::to_float_array(x);
  xt::xarray<float> out = xt::empty<float>(in.shape());
  auto round = detail::make_rounder<F>();
  detail::quantize_raw<F>(in.data(), out.data(), detail::layout_of(in.shape(), axis, "qnas::quantize"), round);
  return out;
}

/// As above, for formats with stochastic rounding: random draws come from `engine`.
template <number_format F, class E, std::uniform_random_bit_generator Engine>
xt::xarray<float> quantize(const xt::xexpression<E>& x, std::ptrdiff_t axis, Engine& engine) {
  auto in = detail::to_float_array(x);
  xt::xarray<float> out = xt::empty<float>(in.shape());
  auto round = detail::make_rounder<F>(engine);
  detail::quantize_raw<F>(in.data(), out.data(), detail::layout_of(in.shape(), axis, "qnas::quantize"), round);
  return out;
}

/// Quantizes a contiguous row-major buffer of the given shape into `out` (may alias `in` for
/// scalar and tensor-scaled formats). The allocation-free form used on hot paths (a
/// tensor-scaled format allocates its per-group scales).
template <number_format F>
void quantize_into(std::span<const float> in, std::span<float> out, std::span<const std::size_t> shape,
                   std::ptrdiff_t axis = last_axis) {
  const auto l = detail::layout_of(shape, axis, "qnas::quantize_into");
  if (in.size() != l.size() || out.size() != l.size())
    throw invalid_argument("qnas::quantize_into",
                           detail::cat("buffer sizes (", in.size(), ", ", out.size(),
                                       ") do not match the shape's ", l.size(), " elements"));
  auto round = detail::make_rounder<F>();
  detail::quantize_raw<F>(in.data(), out.data(), l, round);
}

/// Quantizes one value with a scalar format.
template <scalar_format F>
float quantize_value(float x) {
  auto round = detail::make_rounder<F>();
  return F::quantize_one(x, round);
}

namespace detail {
template <number_format F, class R>
encoded<F> encode_impl(const xt::xarray<float>& in, std::ptrdiff_t axis, R& round) {
  encoded<F> e;
  e.shape.assign(in.shape().begin(), in.shape().end());
  const auto l = layout_of(in.shape(), axis, "qnas::encode");
  e.axis = e.shape.empty() ? 0 : static_cast<std::size_t>(axis < 0 ? axis + static_cast<std::ptrdiff_t>(e.shape.size()) : axis);
  const float* p = in.data();
  if constexpr (!F::has_nan) {
    for (std::size_t i = 0; i < l.size(); ++i)
      if (is_nan(p[i]))
        throw invalid_argument("qnas::encode", cat(F::name(), " has no NaN code; input element ", i, " is NaN"));
  }
  bit_writer codes(e.codes);
  if constexpr (tensor_scaled_format<F>) {
    // element codes row-major, then one header (the group's scale) per group in group order
    std::vector<std::uint32_t> all(l.size()), heads(scale_groups<F>(l));
    with_scale_groups<F>(p, all.data(), l, [&](const float* i, std::uint32_t* c, std::size_t rows, std::size_t groups) {
      F::encode_rows(i, c, heads.data(), rows, groups);
    });
    for (auto c : all) codes.put(c, F::bits);
    if constexpr (F::header_bits > 0) {
      bit_writer headers(e.headers);
      for (auto h : heads) headers.put(h, F::header_bits);
    }
  } else if constexpr (scalar_format<F>) {
    for (std::size_t i = 0; i < l.size(); ++i) codes.put(F::encode_one(p[i], round), F::bits);
  } else {
    constexpr auto B = static_cast<std::size_t>(F::block_size);
    std::vector<std::uint32_t> all(l.size());
    bit_writer headers(e.headers);
    std::uint32_t block_codes[B];
    for (std::size_t o = 0; o < l.outer; ++o)
      for (std::size_t k = 0; k < l.len; k += B) {
        const std::size_t n = std::min(B, l.len - k);
        for (std::size_t i = 0; i < l.inner; ++i) {
          float gather[B];
          const std::size_t base = (o * l.len + k) * l.inner + i;
          for (std::size_t j = 0; j < n; ++j) gather[j] = p[base + j * l.inner];
          headers.put(F::encode_block(gather, block_codes, n, round), F::scale_bits);
          for (std::size_t j = 0; j < n; ++j) all[base + j * l.inner] = block_codes[j];
        }
      }
    for (auto c : all) codes.put(c, F::bits);
  }
  return e;
}
}  // namespace detail

/// Encodes x in format F: packed element codes plus block headers. decode(encode(x)) equals
/// quantize(x) bit for bit. Throws qnas::invalid_argument for NaN when F has no NaN code.
template <number_format F, class E>
encoded<F> encode(const xt::xexpression<E>& x, std::ptrdiff_t axis = last_axis) {
  auto round = detail::make_rounder<F>();
  return detail::encode_impl<F>(detail::to_float_array(x), axis, round);
}

template <number_format F, class E, std::uniform_random_bit_generator Engine>
encoded<F> encode(const xt::xexpression<E>& x, std::ptrdiff_t axis, Engine& engine) {
  auto round = detail::make_rounder<F>(engine);
  return detail::encode_impl<F>(detail::to_float_array(x), axis, round);
}

/// Decodes packed codes back to float values. Throws if the packed data is too short.
template <number_format F>
xt::xarray<float> decode(const encoded<F>& e) {
  xt::xarray<float> out = xt::empty<float>(e.shape);
  float* q = out.data();
  const auto l = detail::layout_of(e.shape, static_cast<std::ptrdiff_t>(e.axis), "qnas::decode");
  detail::bit_reader codes(e.codes);
  if constexpr (tensor_scaled_format<F>) {
    std::vector<std::uint32_t> all(l.size()), heads(detail::scale_groups<F>(l), 0u);
    for (auto& c : all) c = static_cast<std::uint32_t>(codes.get(F::bits));
    if constexpr (F::header_bits > 0) {
      detail::bit_reader headers(e.headers);
      for (auto& h : heads) h = static_cast<std::uint32_t>(headers.get(F::header_bits));
    }
    detail::with_scale_groups<F>(all.data(), q, l, [&](const std::uint32_t* c, float* o, std::size_t rows,
                                                        std::size_t groups) { F::decode_rows(c, heads.data(), o, rows, groups); });
  } else if constexpr (scalar_format<F>) {
    for (std::size_t i = 0; i < l.size(); ++i) q[i] = F::decode_one(static_cast<std::uint32_t>(codes.get(F::bits)));
  } else {
    constexpr auto B = static_cast<std::size_t>(F::block_size);
    std::vector<std::uint32_t> all(l.size());
    for (auto& c : all) c = static_cast<std::uint32_t>(codes.get(F::bits));
    detail::bit_reader headers(e.headers);
    std::uint32_t block_codes[B];
    float block_out[B];
    for (std::size_t o = 0; o < l.outer; ++o)
      for (std::size_t k = 0; k < l.len; k += B) {
        const std::size_t n = std::min(B, l.len - k);
        for (std::size_t i = 0; i < l.inner; ++i) {
          const std::size_t base = (o * l.len + k) * l.inner + i;
          for (std::size_t j = 0; j < n; ++j) block_codes[j] = all[base + j * l.inner];
          F::decode_block(headers.get(F::scale_bits), block_codes, block_out, n);
          for (std::size_t j = 0; j < n; ++j) q[base + j * l.inner] = block_out[j];
        }
      }
  }
  return out;
}

/// Every finite value a scalar format can represent, ascending, each once: the decoded values
/// of the codes that encode maps back to themselves (so unused codes are left out).
template <scalar_format F>
std::vector<float> values() {
  static_assert(F::bits <= 16, "qnas::values<F>(): F has more than 16 bits per element; its value set is too large to list");
  std::vector<float> v;
  nearest_even round;  // the value set does not depend on the rounding policy
  for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
    const float x = F::decode_one(c);
    if (!detail::is_finite(x)) continue;
    if (F::encode_one(x, round) != c) continue;
    v.push_back(x);
  }
  std::sort(v.begin(), v.end());
  // -0 and +0 are one value
  v.erase(std::unique(v.begin(), v.end(), [](float a, float b) { return a == b; }), v.end());
  return v;
}

}  // namespace qnas
