// The number_format concept: what a type must provide to be used as a quantizer in qnas.
//
// Minimal complete definition of a format type F (see examples/02_custom_format.cpp and
// docs in README "Number formats"):
//
//   static constexpr format_family family;   // what kind of arithmetic it needs (energy model)
//   static constexpr bit_tuple      tuple;    // (sign, exponent, mantissa) bits of one element
//   static constexpr int            bits;     // bits of one element's code (1..32)
//   static constexpr int            block_size; // elements sharing a scale; 1 for scalar formats
//   static constexpr int            scale_bits; // bits of per-block shared data (0 if none)
//   static constexpr double         max_value;  // largest finite value (over all block scales)
//   static constexpr double         min_value;  // most negative finite value (over all scales)
//   static constexpr bool           has_zero;   // whether 0 is representable
//   static constexpr bool           has_nan;    // whether a NaN code exists (else encode(NaN) throws)
//   using rounding = <rounding policy>;          // nearest_even, ..., stochastic
//   static std::string name();
//
// and, for a scalar format (block_size == 1):
//
//   template <class R> static std::uint32_t encode_one(float x, R& round);  // code < 2^bits
//   static float decode_one(std::uint32_t code);
//   template <class R> static float quantize_one(float x, R& round);
//
// or, for a block format (block_size > 1), over one block of n <= block_size contiguous values:
//
//   template <class R> static void quantize_block(const float* in, float* out, std::size_t n, R& round);
//   template <class R> static std::uint64_t encode_block(const float* in, std::uint32_t* codes,
//                                                        std::size_t n, R& round); // -> block header
//   static void decode_block(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n);
//
// or, for a tensor-scaled format (scales computed per group from the whole tensor, e.g.
// scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>; see formats/scaled.hpp), over `rows`
// rows of `groups` contiguous values with one scale per column (groups == 1: one scale):
//
//   static constexpr bool per_channel_scales;  // one scale per index of the channel axis
//   static constexpr int  header_bits;         // bits of one group's stored scale (0: none)
//   static void quantize_rows(const float* in, float* out, std::size_t rows, std::size_t groups);
//   static void encode_rows(const float* in, std::uint32_t* codes, std::uint32_t* headers,
//                           std::size_t rows, std::size_t groups);
//   static void decode_rows(const std::uint32_t* codes, const std::uint32_t* headers, float* out,
//                           std::size_t rows, std::size_t groups);
//
// Optional, for any format whose values are its element codes times a scale kept outside them
// (one per tensor or channel):
//
//   static constexpr scale_kind group_scale;  // none (default), power_of_two or floating
//
// `round` is a rounding function object (the policy itself, or a stochastic_rounder).
//
// A type that declares `format_family family` or `bit_tuple tuple` is meant as a format: using
// it where a number_format is expected either works or stops with the first rule it breaks,
// named by check_number_format<F>() ("qnas: number_format::bits must be > 0"). docs/extending.md
// lists this and every other customization point.
//
// Laws (checked for every built-in format by qnas::testing::check_format<F>(); a tensor-scaled
// format obeys them given its scales, as far as its rule allows: see check_format.hpp):
//   1. quantize is idempotent: q(q(x)) == q(x) (bit for bit, NaN aside).
//   2. quantize is monotone: x <= y implies q(x) <= q(y) (scalar formats; per block with a
//      fixed scale for block formats).
//   3. q(x) == decode(encode(x)) for every x; decode(encode(decode(c))) == decode(c) for
//      every code c whose value lies in [min_value, max_value] (other codes are unused).
//   4. Within the representable range, |q(x) - x| is at most one step (half a step under a
//      nearest rounding policy), where a step is the gap between the two values around x.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "qnas/formats/policies.hpp"

namespace qnas {

/// The arithmetic family of a format; the energy model maps pairs of families to operators.
enum class format_family {
  floating,     ///< sign, exponent and mantissa per element (fp32, bf16, fp8, ...)
  fixed_point,  ///< m-quant: sign + integer mantissa with a fixed scale
  po2,          ///< e-quant: sign + exponent (power of two)
  ternary,      ///< {-s, 0, +s}
  binary,       ///< {-s, +s}
  binary01,     ///< {0, s}: modified binary
  block_fp,     ///< shared exponent per block, integer or small-float elements (BFP, MX)
  codebook      ///< arbitrary value table (non-uniform levels)
};

constexpr const char* to_string(format_family f) noexcept {
  switch (f) {
    case format_family::floating: return "floating";
    case format_family::fixed_point: return "fixed_point";
    case format_family::po2: return "po2";
    case format_family::ternary: return "ternary";
    case format_family::binary: return "binary";
    case format_family::binary01: return "binary01";
    case format_family::block_fp: return "block_fp";
    case format_family::codebook: return "codebook";
  }
  return "?";
}

/// The bits that describe one element: (sign, exponent, mantissa).
/// e-quant with e bits is (1, e-1, 0); m-quant with m bits is (1, 0, m-1).
struct bit_tuple {
  int sign = 0;
  int exponent = 0;
  int mantissa = 0;
  [[nodiscard]] constexpr int total() const noexcept { return sign + exponent + mantissa; }
  constexpr bool operator==(const bit_tuple&) const = default;
};

/// How a format's values are scaled outside its element codes (a scale per tensor or output
/// channel, as scaled<> and lsq<> keep). A layer computes integer MACs on the codes and must
/// then rescale each output: a power-of-two scale is a shift (free in the energy model, as in
/// qtools), a float one a float32 multiply per output (energy/estimate.hpp).
enum class scale_kind : std::uint8_t {
  none,          ///< the codes are the values (up to the format's own fixed step)
  power_of_two,  ///< times 2^e: a shift
  floating       ///< times a float32 scale: a multiply
};

constexpr const char* to_string(scale_kind k) noexcept {
  switch (k) {
    case scale_kind::none: return "none";
    case scale_kind::power_of_two: return "power_of_two";
    case scale_kind::floating: return "floating";
  }
  return "?";
}

namespace detail {
template <class T, class V>
concept constant_of = std::convertible_to<std::remove_cvref_t<T>, V>;

struct identity_rounder {  // a stand-in rounding object to check signatures
  float operator()(float v) const noexcept { return v; }
};
}  // namespace detail

// One named concept per member, so the entry-point check (check_number_format) can say which
// member is missing; the concepts below are their conjunctions.
namespace detail {
template <class F>
concept declares_family = requires { { F::family } -> constant_of<format_family>; };
template <class F>
concept declares_tuple = requires { { F::tuple } -> constant_of<bit_tuple>; };
template <class F>
concept declares_bits = requires { { F::bits } -> constant_of<int>; };
template <class F>
concept declares_block_size = requires { { F::block_size } -> constant_of<int>; };
template <class F>
concept declares_scale_bits = requires { { F::scale_bits } -> constant_of<int>; };
template <class F>
concept declares_max_value = requires { { F::max_value } -> constant_of<double>; };
template <class F>
concept declares_min_value = requires { { F::min_value } -> constant_of<double>; };
template <class F>
concept declares_has_zero = requires { { F::has_zero } -> constant_of<bool>; };
template <class F>
concept declares_has_nan = requires { { F::has_nan } -> constant_of<bool>; };
template <class F>
concept declares_name = requires { { F::name() } -> std::convertible_to<std::string>; };
template <class F>
concept declares_rounding = requires { typename F::rounding; };

template <class F>
concept declares_encode_one = requires(float x, identity_rounder& r) {
  { F::encode_one(x, r) } -> std::same_as<std::uint32_t>;
};
template <class F>
concept declares_decode_one = requires(std::uint32_t code) {
  { F::decode_one(code) } -> std::same_as<float>;
};
template <class F>
concept declares_quantize_one = requires(float x, identity_rounder& r) {
  { F::quantize_one(x, r) } -> std::same_as<float>;
};

template <class F>
concept declares_quantize_block = requires(const float* in, float* out, std::size_t n, identity_rounder& r) {
  { F::quantize_block(in, out, n, r) };
};
template <class F>
concept declares_encode_block = requires(const float* in, std::uint32_t* codes, std::size_t n, identity_rounder& r) {
  { F::encode_block(in, codes, n, r) } -> std::same_as<std::uint64_t>;
};
template <class F>
concept declares_decode_block = requires(std::uint64_t header, const std::uint32_t* codes, float* out, std::size_t n) {
  { F::decode_block(header, codes, out, n) };
};

template <class F>
concept declares_per_channel_scales = requires { { F::per_channel_scales } -> constant_of<bool>; };
template <class F>
concept declares_header_bits = requires { { F::header_bits } -> constant_of<int>; };
template <class F>
concept declares_quantize_rows = requires(const float* in, float* out, std::size_t n) {
  { F::quantize_rows(in, out, n, n) };
};
template <class F>
concept declares_encode_rows = requires(const float* in, std::uint32_t* codes, std::uint32_t* headers, std::size_t n) {
  { F::encode_rows(in, codes, headers, n, n) };
};
template <class F>
concept declares_decode_rows = requires(const std::uint32_t* codes, const std::uint32_t* headers, float* out,
                                        std::size_t n) {
  { F::decode_rows(codes, headers, out, n, n) };
};
}  // namespace detail

/// Compile-time description every format provides (sub-concept: error messages name it).
template <class F>
concept format_description =
    detail::declares_family<F> && detail::declares_tuple<F> && detail::declares_bits<F> &&
    detail::declares_block_size<F> && detail::declares_scale_bits<F> && detail::declares_max_value<F> &&
    detail::declares_min_value<F> && detail::declares_has_zero<F> && detail::declares_has_nan<F> &&
    detail::declares_name<F> && detail::declares_rounding<F> && (F::bits >= 1 && F::bits <= 32) &&
    (F::block_size >= 1);

namespace detail {
// The three kinds of format as plain predicates; the public concepts below add the diagnosis
// of a type that is meant as a format but is none.
template <class F>
concept scalar_format_kind = format_description<F> && F::block_size == 1 && declares_encode_one<F> &&
                             declares_decode_one<F> && declares_quantize_one<F>;

template <class F>
concept block_format_kind = format_description<F> && (F::block_size > 1) && declares_quantize_block<F> &&
                            declares_encode_block<F> && declares_decode_block<F> &&
                            (F::scale_bits >= 0 && F::scale_bits <= 64);

template <class F>
concept tensor_scaled_format_kind = format_description<F> && F::block_size == 1 && declares_per_channel_scales<F> &&
                                    declares_header_bits<F> && declares_quantize_rows<F> && declares_encode_rows<F> &&
                                    declares_decode_rows<F> && (F::header_bits >= 0 && F::header_bits <= 32) &&
                                    !scalar_format_kind<F>;

template <class F>
concept any_format_kind = scalar_format_kind<F> || block_format_kind<F> || tensor_scaled_format_kind<F>;

/// A type that declares `static constexpr format_family family` (or `bit_tuple tuple`) is meant
/// as a number format: nothing else has such a member of a qnas type.
template <class F>
concept claims_format = requires { { &F::family } -> std::convertible_to<const format_family*>; } ||
                        requires { { &F::tuple } -> std::convertible_to<const bit_tuple*>; };

/// A type that declares one of the per-group members of a tensor-scaled format.
template <class F>
concept looks_tensor_scaled = declares_per_channel_scales<F> || declares_header_bits<F> ||
                              declares_quantize_rows<F> || declares_encode_rows<F> || declares_decode_rows<F>;
}  // namespace detail

/// The entry-point check of a number format: one static_assert per member and rule, so the
/// first error names what F lacks or breaks ("qnas: a number format needs `static float
/// decode_one(std::uint32_t code)`", "qnas: number_format::bits must be > 0"). True when F is a
/// number_format. The number_format concept runs it for a type that claims to be a format (it
/// declares `format_family family` or `bit_tuple tuple`) but is none, so every use of such a
/// type (quantize<F>, a layer's format argument, check_format<F>) stops at the broken rule.
template <class F>
consteval bool check_number_format() {
  using namespace detail;
  static_assert(declares_family<F>, "qnas: a number format needs `static constexpr qnas::format_family family`");
  static_assert(declares_tuple<F>,
                "qnas: a number format needs `static constexpr qnas::bit_tuple tuple` (sign, exponent, mantissa bits)");
  static_assert(declares_bits<F>, "qnas: a number format needs `static constexpr int bits` (bits of one element's code)");
  static_assert(declares_block_size<F>,
                "qnas: a number format needs `static constexpr int block_size` (1 for a scalar format)");
  static_assert(declares_scale_bits<F>,
                "qnas: a number format needs `static constexpr int scale_bits` (bits of per-block shared data, 0 if none)");
  static_assert(declares_max_value<F>, "qnas: a number format needs `static constexpr double max_value`");
  static_assert(declares_min_value<F>, "qnas: a number format needs `static constexpr double min_value`");
  static_assert(declares_has_zero<F>, "qnas: a number format needs `static constexpr bool has_zero`");
  static_assert(declares_has_nan<F>, "qnas: a number format needs `static constexpr bool has_nan`");
  static_assert(declares_name<F>, "qnas: a number format needs `static std::string name()`");
  static_assert(declares_rounding<F>,
                "qnas: a number format needs `using rounding = ...` (qnas::nearest_even, nearest_away, toward_zero "
                "or stochastic)");
  if constexpr (declares_bits<F>) {
    static_assert(F::bits > 0, "qnas: number_format::bits must be > 0");
    static_assert(F::bits <= 32, "qnas: number_format::bits must be <= 32 (a code is a std::uint32_t)");
  }
  if constexpr (declares_block_size<F>)
    static_assert(F::block_size >= 1, "qnas: number_format::block_size must be >= 1 (1 for a scalar format)");
  if constexpr (format_description<F>) {
    if constexpr (F::block_size > 1) {
      static_assert(declares_quantize_block<F>,
                    "qnas: a block number format (block_size > 1) needs `template <class R> static void "
                    "quantize_block(const float* in, float* out, std::size_t n, R& round)`");
      static_assert(declares_encode_block<F>,
                    "qnas: a block number format (block_size > 1) needs `template <class R> static std::uint64_t "
                    "encode_block(const float* in, std::uint32_t* codes, std::size_t n, R& round)`");
      static_assert(declares_decode_block<F>,
                    "qnas: a block number format (block_size > 1) needs `static void decode_block(std::uint64_t "
                    "header, const std::uint32_t* codes, float* out, std::size_t n)`");
      static_assert(F::scale_bits >= 0 && F::scale_bits <= 64,
                    "qnas: number_format::scale_bits must be in [0, 64] (a block header is a std::uint64_t)");
    } else if constexpr (looks_tensor_scaled<F> && !scalar_format_kind<F>) {
      static_assert(declares_per_channel_scales<F>,
                    "qnas: a tensor-scaled number format needs `static constexpr bool per_channel_scales`");
      static_assert(declares_header_bits<F>,
                    "qnas: a tensor-scaled number format needs `static constexpr int header_bits`");
      static_assert(declares_quantize_rows<F>,
                    "qnas: a tensor-scaled number format needs `static void quantize_rows(const float* in, float* "
                    "out, std::size_t rows, std::size_t groups)`");
      static_assert(declares_encode_rows<F>,
                    "qnas: a tensor-scaled number format needs `static void encode_rows(const float* in, "
                    "std::uint32_t* codes, std::uint32_t* headers, std::size_t rows, std::size_t groups)`");
      static_assert(declares_decode_rows<F>,
                    "qnas: a tensor-scaled number format needs `static void decode_rows(const std::uint32_t* codes, "
                    "const std::uint32_t* headers, float* out, std::size_t rows, std::size_t groups)`");
      if constexpr (declares_header_bits<F>)
        static_assert(F::header_bits >= 0 && F::header_bits <= 32,
                      "qnas: number_format::header_bits must be in [0, 32]");
    } else {
      static_assert(declares_encode_one<F>,
                    "qnas: a scalar number format (block_size == 1) needs `template <class R> static std::uint32_t "
                    "encode_one(float x, R& round)`");
      static_assert(declares_decode_one<F>,
                    "qnas: a scalar number format (block_size == 1) needs `static float decode_one(std::uint32_t "
                    "code)`");
      static_assert(declares_quantize_one<F>,
                    "qnas: a scalar number format (block_size == 1) needs `template <class R> static float "
                    "quantize_one(float x, R& round)`");
    }
  }
  return true;
}

namespace detail {
/// Always false; evaluating it for a type runs check_number_format, whose static_asserts stop
/// compilation at the first rule the type breaks.
template <class F>
constexpr bool report_broken_format() {
  (void)check_number_format<F>();
  return false;
}
/// A type that claims to be a format but is none: a constraint on it is a hard error naming the
/// member or rule (never satisfied: report_broken_format is false when it returns).
template <class F>
concept broken_format = claims_format<F> && !any_format_kind<F> && report_broken_format<F>();
}  // namespace detail

/// A format quantized one element at a time.
template <class F>
concept scalar_format = detail::scalar_format_kind<F> || detail::broken_format<F>;

/// A format quantized a block at a time with shared per-block data (a scale, outlier slots...).
template <class F>
concept block_format = detail::block_format_kind<F> || detail::broken_format<F>;

/// A format whose scales are computed per group (tensor or output channel) from the whole
/// tensor being quantized: it cannot be applied to a part of a tensor at a time.
template <class F>
concept tensor_scaled_format = detail::tensor_scaled_format_kind<F> || detail::broken_format<F>;

/// Anything qnas can use to quantize weights, biases or activations. A type that claims to be
/// a format (see check_number_format) and breaks a rule stops compilation with that rule.
template <class F>
concept number_format = scalar_format<F> || block_format<F> || tensor_scaled_format<F>;

/// Derived traits of a format, uniform for scalar and block formats.
template <number_format F>
struct format_traits {
  static constexpr int bits = F::bits;
  static constexpr int block_size = F::block_size;
  static constexpr int scale_bits = F::scale_bits;
  /// Storage cost per element including the amortized shared scale.
  static constexpr double amortized_bits =
      static_cast<double>(F::bits) + static_cast<double>(F::scale_bits) / F::block_size;
  static constexpr bit_tuple tuple = F::tuple;
  static constexpr format_family family = F::family;
  static constexpr double max_value = F::max_value;
  static constexpr double min_value = F::min_value;
  static constexpr bool has_zero = F::has_zero;
  static constexpr bool is_signed = F::min_value < 0;
  static constexpr bool needs_engine = F::rounding::needs_engine;
};

template <number_format F>
inline constexpr double amortized_bits_v = format_traits<F>::amortized_bits;

/// A format's compile-time description as a plain value, so run-time code (energy pricing of
/// a search candidate, logs, summaries) can handle formats chosen at run time without
/// instantiating anything per combination. `float32_info` describes unquantized float.
struct format_info {
  const char* label = "float32";  ///< short, stable label (not the full name())
  format_family family = format_family::floating;
  bit_tuple tuple{1, 8, 23};
  int bits = 32;
  int block_size = 1;
  int scale_bits = 0;
  double max_value = 3.4028234663852886e38;
  double min_value = -3.4028234663852886e38;
  bool has_zero = true;
  scale_kind group_scale = scale_kind::none;  ///< scale outside the element codes (F::group_scale)

  [[nodiscard]] constexpr double amortized_bits() const noexcept {
    return static_cast<double>(bits) + static_cast<double>(scale_bits) / block_size;
  }
  [[nodiscard]] constexpr bool is_signed() const noexcept { return min_value < 0; }
  /// Equal traits, the labels compared by their text: two copies of one string literal need not
  /// share an address (AddressSanitizer, for one, keeps them apart).
  friend constexpr bool operator==(const format_info& a, const format_info& b) noexcept {
    return std::string_view(a.label) == std::string_view(b.label) && a.family == b.family && a.tuple == b.tuple &&
           a.bits == b.bits && a.block_size == b.block_size && a.scale_bits == b.scale_bits &&
           a.max_value == b.max_value && a.min_value == b.min_value && a.has_zero == b.has_zero &&
           a.group_scale == b.group_scale;
  }
};

inline constexpr format_info float32_info{};

/// The format_info of a format type (constexpr). `label` is the family name; use F::name()
/// for the full, parameterised name.
template <number_format F>
constexpr format_info info_of() noexcept {
  scale_kind s = scale_kind::none;
  if constexpr (requires { { F::group_scale } -> detail::constant_of<scale_kind>; }) s = F::group_scale;
  return {to_string(F::family), F::family, F::tuple, F::bits, F::block_size, F::scale_bits,
          F::max_value, F::min_value, F::has_zero, s};
}

}  // namespace qnas
