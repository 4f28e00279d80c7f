// Scales that follow the data: QKeras alpha='auto', 'auto_po2' and constant alpha over a unit format.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/concept.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/scale_axis.hpp"
#include "qnas/formats/ternary.hpp"

namespace qnas {

// ---------------------------------------------------------------------------------------------
// Alpha: how the scale is found (QKeras's `alpha` argument).
// ---------------------------------------------------------------------------------------------

/// QKeras alpha='auto': a float scale computed from the data (max-abs for fixed point,
/// least squares for ternary and binary).
struct alpha_auto {
  static std::string name() { return "auto"; }
};

/// No limit on an auto_po2 exponent (the default of alpha_auto_po2's bounds).
inline constexpr int po2_unbounded_min = std::numeric_limits<int>::min();
inline constexpr int po2_unbounded_max = std::numeric_limits<int>::max();

/// QKeras alpha='auto_po2': a power-of-two scale 2^e, e optionally clipped to [MinExp, MaxExp]
/// (QKeras's min_po2_exponent / max_po2_exponent).
template <int MinExp = po2_unbounded_min, int MaxExp = po2_unbounded_max>
struct alpha_auto_po2 {
  static_assert(MinExp == po2_unbounded_min || (MinExp >= -126 && MinExp <= 126),
                "alpha_auto_po2<MinExp, MaxExp>: MinExp must be in [-126, 126]");
  static_assert(MaxExp == po2_unbounded_max || (MaxExp >= -126 && MaxExp <= 126),
                "alpha_auto_po2<MinExp, MaxExp>: MaxExp must be in [-126, 126]");
  static_assert(MinExp == po2_unbounded_min || MaxExp == po2_unbounded_max || MinExp <= MaxExp,
                "alpha_auto_po2<MinExp, MaxExp>: MinExp must be <= MaxExp");
  static constexpr int min_exponent = MinExp;
  static constexpr int max_exponent = MaxExp;
  static std::string name() {
    if (MinExp == po2_unbounded_min && MaxExp == po2_unbounded_max) return "auto_po2";
    return detail::cat("auto_po2[", MinExp == po2_unbounded_min ? std::string("-inf") : std::to_string(MinExp), ",",
                       MaxExp == po2_unbounded_max ? std::string("inf") : std::to_string(MaxExp), "]");
  }
};

/// A constant alpha A (QKeras alpha=A): the input is quantized by the unit format as it is
/// and the result multiplied by float(A).
template <double A>
struct alpha_const {
  static_assert(A > 0.0 && A <= 3.4028234663852886e38,
                "alpha_const<A>: A must be a finite number > 0 (and at most FLT_MAX)");
  static constexpr double value = A;
  static std::string name() { return detail::cat("alpha=", A); }
};

namespace detail {

template <class T>
struct is_alpha_po2 : std::false_type {};
template <int Lo, int Hi>
struct is_alpha_po2<alpha_auto_po2<Lo, Hi>> : std::true_type {};
template <class T>
struct is_alpha_const : std::false_type {};
template <double A>
struct is_alpha_const<alpha_const<A>> : std::true_type {};

/// Whether x is a positive power of two (normal or subnormal): one significand bit set.
constexpr bool is_power_of_two(float x) noexcept {
  const std::uint32_t b = to_bits(x);
  if (b == 0u || (b >> 31) != 0u || (b >> 23) == 0xFFu) return false;
  const std::uint32_t m = b & 0x7FFFFFu;
  return (b >> 23) != 0u ? m == 0u : (m & (m - 1u)) == 0u;
}

template <class A>
inline constexpr bool is_alpha_policy_v =
    std::is_same_v<A, alpha_auto> || is_alpha_po2<A>::value || is_alpha_const<A>::value;

// The unit formats a scaled format accepts, recognised by what they declare (so that a new
// template parameter of fixed_point, ternary or binary does not break the match).
template <class U>
concept scaled_ternary_unit = scalar_format<U> && U::family == format_family::ternary && requires {
  { U::scale } -> constant_of<float>;
  { U::threshold } -> constant_of<float>;
} && U::scale == 1.0f;
template <class U>
concept scaled_binary_unit = scalar_format<U> && U::family == format_family::binary && requires {
  { U::scale } -> constant_of<float>;
} && U::scale == 1.0f && U::bits == 1;

template <class U>
inline constexpr bool is_scaled_unit_v = scaled_fixed_unit<U> || scaled_ternary_unit<U> || scaled_binary_unit<U>;

template <class U>
constexpr bool auto_fixed_unit_ok() {
  if constexpr (scaled_fixed_unit<U>)
    return U::keep_negative && U::symmetric && std::is_same_v<typename U::rounding, nearest_even> && U::bits <= 24;
  else
    return true;
}
template <class U>
constexpr bool auto_ternary_unit_ok() {
  if constexpr (scaled_ternary_unit<U>)
    return U::threshold == 0.33f;
  else
    return true;
}

namespace scaled_impl {

inline constexpr float eps = 1e-7f;  // K.epsilon(), float32 as TF adds it

/// QKeras's level v = floor(t + 0.5) clipped to hi (`v < levels/2 ? v : levels/2`), for t >= 0,
/// +inf or NaN (both give hi): t + 0.5 is rounded to float as TF does, capped at hi + 0.5 (an
/// integer select on the bits, NaN above everything), then truncated (floor, as it is >= 0).
QNAS_ALWAYS_INLINE float level_of(float t, float hi_half) noexcept {
  const std::uint32_t ub = to_bits(t + 0.5f), cb = to_bits(hi_half);
  return static_cast<float>(static_cast<std::int32_t>(from_bits(ub < cb ? ub : cb)));
}
/// x where x is NaN, else v. Masks, not a select: GCC would compute v only where it is used
/// and, under -ftrapping-math, keep that branch, leaving the loop scalar (see bits.hpp).
QNAS_ALWAYS_INLINE float nan_or(float x, float v) noexcept {
  const std::uint32_t xb = to_bits(x);
  const std::uint32_t m = 0u - static_cast<std::uint32_t>((xb & 0x7FFFFFFFu) > 0x7F800000u);
  return from_bits((xb & m) | (to_bits(v) & ~m));
}
/// sign(x) with 0 -> +1 (QKeras binary: k_sign += 1 - |k_sign|), as +-1.0f.
QNAS_ALWAYS_INLINE float binary_sign(float x) noexcept {
  return from_bits(0x3F800000u | (to_bits(x) > 0x80000000u ? 0x80000000u : 0u));
}
/// |x| for finite x, 0 for +-Inf and NaN: non-finite elements are left out of every scale.
QNAS_ALWAYS_INLINE float finite_abs(float x) noexcept {
  const std::uint32_t ab = to_bits(x) & 0x7FFFFFFFu;
  return from_bits(ab < 0x7F800000u ? ab : 0u);
}
/// t > 0.5 for t >= 0; false for NaN (round_half_even(t) >= 1: the ternary "not zero" test).
QNAS_ALWAYS_INLINE bool above_half(float t) noexcept {
  const std::uint32_t b = to_bits(t);
  return (b > 0x3F000000u) & (b <= 0x7F800000u);
}

/// round(log2(s + eps)) (half to even), clipped to [lo, hi]. The logarithm is taken in double:
/// TF's float log differs only when log2(s + eps) lies within float rounding of k + 0.5.
inline int po2_exponent(float s, int lo, int hi) noexcept {
  const double l = std::log2(static_cast<double>(s + eps));
  const double r = std::nearbyint(l);  // the default rounding mode: ties to even, as tf.math.round
  if (!(r >= lo)) return lo;
  if (r > hi) return hi;
  return static_cast<int>(r);
}

/// Least-squares scale mean(x*q) / (mean(q*q) + eps) from the group's sums over its n finite
/// elements, each mean rounded to float as TF's float32 means are.
inline float ls_scale(double sxq, double sqq, double n) noexcept {
  if (n == 0) return 0.0f / (0.0f + eps);
  const auto qx = static_cast<float>(sxq / n);
  const auto qq = static_cast<float>(sqq / n);
  return qx / (qq + eps);
}

/// Per-group statistics over finite elements: largest |x| (as bits), count, and (when Sum)
/// the sum of |x|. Rows of `groups` contiguous values; one group: the whole buffer, in 8 lanes
/// summed in a fixed order (the same result whatever the vector width).
template <bool Sum>
void group_stats(const float* in, std::size_t rows, std::size_t groups, std::uint32_t* max_bits, double* count,
                 double* sum) {
  if (groups == 1) {
    std::uint32_t m[8] = {}, c[8] = {};
    double s[8] = {};
    const std::size_t n = rows;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (std::size_t j = 0; j < 8; ++j) {
        const std::uint32_t ab = to_bits(in[i + j]) & 0x7FFFFFFFu;
        const bool fin = ab < 0x7F800000u;
        const std::uint32_t v = fin ? ab : 0u;
        m[j] = m[j] > v ? m[j] : v;
        c[j] += fin ? 1u : 0u;
        if constexpr (Sum) s[j] += static_cast<double>(from_bits(v));
      }
    for (std::size_t j = 0; i + j < n; ++j) {
      const std::uint32_t ab = to_bits(in[i + j]) & 0x7FFFFFFFu;
      const bool fin = ab < 0x7F800000u;
      const std::uint32_t v = fin ? ab : 0u;
      m[j] = m[j] > v ? m[j] : v;
      c[j] += fin ? 1u : 0u;
      if constexpr (Sum) s[j] += static_cast<double>(from_bits(v));
    }
    std::uint32_t mm = 0;
    double cc = 0, ss = 0;
    for (std::size_t j = 0; j < 8; ++j) {
      mm = std::max(mm, m[j]);
      cc += c[j];
      ss += s[j];
    }
    max_bits[0] = mm;
    count[0] = cc;
    if constexpr (Sum) sum[0] = ss;
    return;
  }
  // several groups: row r adds to lane r % 8 of its group (the order one group alone sums in)
  std::vector<std::uint32_t> c(groups, 0u);
  std::vector<double> s8(Sum ? 8 * groups : 0, 0.0);
  std::fill(max_bits, max_bits + groups, 0u);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = in + r * groups;
    std::uint32_t* cp = c.data();
    double* sp = Sum ? s8.data() + (r % 8) * groups : nullptr;
#pragma omp simd
    for (std::size_t g = 0; g < groups; ++g) {
      const std::uint32_t ab = to_bits(row[g]) & 0x7FFFFFFFu;
      const bool fin = ab < 0x7F800000u;
      const std::uint32_t v = fin ? ab : 0u;
      max_bits[g] = max_bits[g] > v ? max_bits[g] : v;
      cp[g] += fin ? 1u : 0u;
      if constexpr (Sum) sp[g] += static_cast<double>(from_bits(v));
    }
  }
  for (std::size_t g = 0; g < groups; ++g) {
    count[g] = c[g];
    if constexpr (Sum) {
      double t = 0;
      for (std::size_t j = 0; j < 8; ++j) t += s8[j * groups + g];
      sum[g] = t;
    }
  }
}

/// The two factors elem(x, g) returns for the least-squares sums: a (|x'| or |x|) and the
/// level magnitude v; the sums are sum(a * v) and sum(v * v).
struct ls_terms {
  float a, v;
};

/// Per-group sums sa = sum(a * v), sb = sum(v * v) of terms(x, g) -> ls_terms and, when Map,
/// out[i] = value(x, g) in the same pass (`out` must not alias `in`). Products and sums are
/// taken in float over runs of at most 64 elements per lane (eight lanes for one group; one
/// lane per group for several), and the run totals added in double: loops that vectorize, in a
/// fixed order (the same result for any vector width or thread count, with or without Map),
/// with the rounding of a float32 reduction such as TF's.
template <bool Map, class Terms, class Value>
void group_sums_map(const float* in, float* out, std::size_t rows, std::size_t groups, const Terms& terms,
                    const Value& value, double* sa, double* sb) {
  constexpr std::size_t run = 64;
  if (groups == 1) {
    // Terms of a run into a buffer (an elementwise loop that vectorizes like group_map), then
    // summed in eight lanes: one loop doing both is left scalar, with a branch per element.
    double a[8] = {}, b[8] = {};
    const std::size_t n = rows;
    alignas(64) float ta[8 * run], tb[8 * run];
    for (std::size_t i = 0; i < n; i += 8 * run) {
      const std::size_t m = std::min(8 * run, n - i);
      const float* src = in + i;
      if constexpr (Map) {
        float* dst = out + i;
#pragma omp simd
        for (std::size_t k = 0; k < m; ++k) {
          const float x = src[k];
          const ls_terms t = terms(x, 0);
          ta[k] = t.a * t.v;
          tb[k] = t.v * t.v;
          dst[k] = value(x, 0);
        }
      } else {
#pragma omp simd
        for (std::size_t k = 0; k < m; ++k) {
          const ls_terms t = terms(src[k], 0);
          ta[k] = t.a * t.v;
          tb[k] = t.v * t.v;
        }
      }
      for (std::size_t k = m; k < 8 * run; ++k) ta[k] = tb[k] = 0.0f;
      float fa[8] = {}, fb[8] = {};
      for (std::size_t k = 0; k < 8 * run; k += 8)
        for (std::size_t j = 0; j < 8; ++j) {
          fa[j] += ta[k + j];
          fb[j] += tb[k + j];
        }
      for (std::size_t j = 0; j < 8; ++j) {
        a[j] += fa[j];
        b[j] += fb[j];
      }
    }
    double sum_a = 0, sum_b = 0;
    for (std::size_t j = 0; j < 8; ++j) {
      sum_a += a[j];
      sum_b += b[j];
    }
    sa[0] = sum_a;
    sb[0] = sum_b;
    return;
  }
  // Several groups: row r of a run of 8 * 64 rows adds to lane r % 8 of its group, so a group
  // sums exactly as it would alone (a channel quantized by itself gets the same scale).
  std::vector<float> fa(8 * groups), fb(8 * groups);
  std::vector<double> da(8 * groups, 0.0), db(8 * groups, 0.0);
  for (std::size_t r0 = 0; r0 < rows; r0 += 8 * run) {
    std::fill(fa.begin(), fa.end(), 0.0f);
    std::fill(fb.begin(), fb.end(), 0.0f);
    for (std::size_t r = r0, r1 = std::min(rows, r0 + 8 * run); r < r1; ++r) {
      const float* row = in + r * groups;
      float* pa = fa.data() + (r % 8) * groups;
      float* pb = fb.data() + (r % 8) * groups;
      if constexpr (Map) {
        float* o = out + r * groups;
#pragma omp simd
        for (std::size_t g = 0; g < groups; ++g) {
          const float x = row[g];
          const ls_terms t = terms(x, g);
          pa[g] += t.a * t.v;
          pb[g] += t.v * t.v;
          o[g] = value(x, g);
        }
      } else {
#pragma omp simd
        for (std::size_t g = 0; g < groups; ++g) {
          const ls_terms t = terms(row[g], g);
          pa[g] += t.a * t.v;
          pb[g] += t.v * t.v;
        }
      }
    }
    for (std::size_t k = 0; k < 8 * groups; ++k) {
      da[k] += fa[k];
      db[k] += fb[k];
    }
  }
  for (std::size_t g = 0; g < groups; ++g) {
    double ta = 0, tb = 0;
    for (std::size_t j = 0; j < 8; ++j) {
      ta += da[j * groups + g];
      tb += db[j * groups + g];
    }
    sa[g] = ta;
    sb[g] = tb;
  }
}

template <class Terms>
void group_sums(const float* in, std::size_t rows, std::size_t groups, const Terms& terms, double* sa, double* sb) {
  group_sums_map<false>(in, static_cast<float*>(nullptr), rows, groups, terms, [](float, std::size_t) { return 0.0f; },
                        sa, sb);
}

/// out[r * groups + g] = elem(in[...], g). `out` may alias `in`.
template <class T, class Elem>
void group_map(const float* in, T* out, std::size_t rows, std::size_t groups, const Elem& elem) {
  if (groups == 1) {
    const std::size_t n = rows;
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) out[i] = elem(in[i], 0);
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = in + r * groups;
    T* o = out + r * groups;
#pragma omp simd
    for (std::size_t g = 0; g < groups; ++g) o[g] = elem(row[g], g);
  }
}

}  // namespace scaled_impl
}  // namespace detail

/// A unit format whose scale follows the data, as QKeras's `alpha` argument does
/// (docs/formats_scaled.md):
///
///   scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>   quantized_bits(4, 0, alpha='auto_po2')
///   scaled<ternary<>, alpha_auto>                             ternary(alpha='auto')
///   scaled<binary<>, alpha_auto_po2<>>                        binary(alpha='auto_po2')
///   scaled<ternary<>, alpha_const<10.0>>                      ternary(alpha=10)
///
/// Unit is a qnas scalar format at unit scale: fixed_point<B, I, true, true> (signed,
/// symmetric, round-to-nearest-even: QKeras forces symmetric for auto scales; a constant alpha
/// takes any deterministic fixed_point), ternary<0, T> (T the default 0.33 with auto scales,
/// whose threshold follows the scale) or binary<0>. Axis is per_channel (one scale per index of
/// the last axis; rank <= 1: one scale) or per_tensor.
///
/// A value is S * u where u is a value of Unit and S the group's scale: QKeras's
/// `quantizer.scale` (for fixed point, the max-abs or po2 scale times 2^(B-1)). The scales are
/// computed from the whole tensor every time it is quantized, so the format must see the whole
/// tensor at once (quantizer::whole_tensor()). encode stores the element codes of Unit and one
/// header per group: S as float32 bits (auto), the exponent of S as a 16-bit integer (auto_po2);
/// a constant alpha needs none (it is in the type).
///
/// Static description: family, tuple and bits of Unit; block_size 1, scale_bits 0 (the scales
/// are per group, counted in encoded<F>::headers); max_value/min_value +-FLT_MAX (the range over
/// all scales), so the straight-through estimator passes every finite input, as QKeras's does.
template <class Unit, class Alpha, class Axis = per_channel>
struct scaled {
  static_assert(detail::is_scaled_unit_v<Unit>,
                "scaled<Unit, Alpha, Axis>: Unit must be fixed_point<B, I, ...>, ternary<0, T> or binary<0> (a "
                "scalar format at unit scale); a block format (bfp, mx, ...) carries its own scales and cannot "
                "take a scale per tensor or channel");
  static_assert(detail::is_alpha_policy_v<Alpha>,
                "scaled<Unit, Alpha, Axis>: Alpha must be alpha_auto, alpha_auto_po2<...> or alpha_const<A>");
  static_assert(sizeof(Alpha) > 0, "");  // instantiates Alpha, whose own checks then run
  static_assert(std::is_same_v<Axis, per_channel> || std::is_same_v<Axis, per_tensor>,
                "scaled<Unit, Alpha, Axis>: Axis must be per_channel or per_tensor");

  static constexpr bool is_const = detail::is_alpha_const<Alpha>::value;
  static constexpr bool is_po2 = detail::is_alpha_po2<Alpha>::value;
  static constexpr bool is_fixed = detail::scaled_fixed_unit<Unit>;
  static constexpr bool is_ternary = detail::scaled_ternary_unit<Unit>;
  static constexpr bool is_binary = detail::scaled_binary_unit<Unit>;

  static_assert(!Unit::rounding::needs_engine,
                "scaled<Unit, Alpha, Axis>: Unit must round deterministically (QKeras auto scales do)");
  static_assert(is_const || detail::auto_fixed_unit_ok<Unit>(),
                "scaled<Unit, Alpha, Axis>: with an auto Alpha, a fixed_point Unit must be signed and symmetric with "
                "nearest_even rounding and at most 24 bits: fixed_point<B, I, true, true> (QKeras forces symmetric)");
  static_assert(is_const || detail::auto_ternary_unit_ok<Unit>(),
                "scaled<Unit, Alpha, Axis>: with an auto Alpha the ternary threshold follows the scale; Unit must be "
                "ternary<0> (QKeras asserts threshold is None)");

  using unit = Unit;
  using alpha = Alpha;
  using axis = Axis;
  using rounding = nearest_even;  // a tag: the rule is QKeras's, described above
  static constexpr format_family family = Unit::family;
  static constexpr bit_tuple tuple = Unit::tuple;
  static constexpr int bits = Unit::bits;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 3.4028234663852886e38;
  static constexpr double min_value = -3.4028234663852886e38;
  static constexpr bool has_zero = Unit::has_zero;
  static constexpr bool has_nan = false;
  /// Whether each channel has its own scale (false for per_tensor and constant alpha).
  static constexpr bool per_channel_scales = std::is_same_v<Axis, per_channel> && !is_const;
  /// Bits of one group's header in encoded<F>::headers.
  static constexpr int header_bits = is_const ? 0 : is_po2 ? 16 : 32;
  /// How a layer rescales its integer outputs (energy model): auto_po2 and a constant whose
  /// float32 value is a power of two are shifts, auto and any other constant a float multiply.
  static constexpr scale_kind group_scale = [] {
    if constexpr (is_po2) return scale_kind::power_of_two;
    else if constexpr (is_const)
      return detail::is_power_of_two(static_cast<float>(Alpha::value)) ? scale_kind::power_of_two
                                                                       : scale_kind::floating;
    else return scale_kind::floating;
  }();

  static std::string name() {
    std::string s = "scaled<" + Unit::name() + "," + Alpha::name();
    if (!is_const) s += std::string(",") + Axis::name;
    return s + ">";
  }

  /// Quantizes `rows` rows of `groups` contiguous values, one scale per column (groups == 1:
  /// one scale for everything). `out` may alias `in`.
  static void quantize_rows(const float* in, float* out, std::size_t rows, std::size_t groups) {
    const auto i0 = reinterpret_cast<std::uintptr_t>(in), o0 = reinterpret_cast<std::uintptr_t>(out);
    const std::uintptr_t bytes = rows * groups * sizeof(float);
    const bool apart = o0 + bytes <= i0 || i0 + bytes <= o0;
    run(in, rows, groups, [&](const auto& elem) { detail::scaled_impl::group_map(in, out, rows, groups, elem.value); },
        apart ? out : nullptr);
  }

  /// Element codes (Unit's codes, row-major) and one header per group (see header_bits).
  static void encode_rows(const float* in, std::uint32_t* codes, std::uint32_t* headers, std::size_t rows,
                          std::size_t groups) {
    run(in, rows, groups, [&](const auto& elem) {
      detail::scaled_impl::group_map(in, codes, rows, groups, elem.code);
      if constexpr (!is_const)
        for (std::size_t g = 0; g < groups; ++g) headers[g] = elem.header(g);
    });
  }

  static void decode_rows(const std::uint32_t* codes, const std::uint32_t* headers, float* out, std::size_t rows,
                          std::size_t groups) {
    std::vector<float> s(is_const ? 1 : groups);
    for (std::size_t g = 0; g < s.size(); ++g) s[g] = is_const ? const_scale : header_scale(headers[g]);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t i = r * groups + g;
        out[i] = s[is_const ? 0 : g] * Unit::decode_one(codes[i]) + 0.0f;
      }
  }

  /// The scale S a header stands for. Throws qnas::invalid_argument for a po2 exponent no
  /// float has (encode never writes one: the data is damaged).
  static float header_scale(std::uint32_t h) {
    if constexpr (is_po2) {
      const int e = static_cast<int>(static_cast<std::int16_t>(static_cast<std::uint16_t>(h & 0xFFFFu)));
      if (e < -149 || e > 127)
        throw invalid_argument("qnas::decode", detail::cat(name(), ": scale exponent ", e, " is outside [-149, 127]"));
      return detail::exp2i(e);
    } else {
      return detail::from_bits(h);
    }
  }

 private:
  static constexpr float const_scale = [] {
    if constexpr (is_const) return static_cast<float>(Alpha::value);
    else return 1.0f;
  }();

  static constexpr int fixed_bits = Unit::bits;  // B
  // exponent range of the po2 scale s = 2^e: 2^-e and S = 2^(e + shift) must be floats
  static constexpr int shift = is_fixed ? fixed_bits - 1 : 0;
  static constexpr int e_lo = [] {
    if constexpr (is_po2) return Alpha::min_exponent == po2_unbounded_min ? -126 : Alpha::min_exponent;
    else return -126;
  }();
  static constexpr int e_hi = [] {
    constexpr int top = 127 - shift;
    if constexpr (is_po2) return Alpha::max_exponent == po2_unbounded_max ? top : std::min(Alpha::max_exponent, top);
    else return top;
  }();

  static constexpr float unit_step() noexcept {
    if constexpr (is_fixed) return detail::exp2i(Unit::step_exponent);
    else return 1.0f;
  }

  /// Computes the scales of every group, then calls body(elem) with the element functions:
  /// elem.value(x, g) -> quantized value, elem.code(x, g) -> Unit code, elem.header(g).
  /// With `fused_out` (a buffer that does not overlap `in`), a fixed-point format may write the
  /// quantized values there itself instead of calling body.
  template <class Body>
  static void run(const float* in, std::size_t rows, std::size_t groups, Body&& body, float* fused_out = nullptr) {
    namespace si = detail::scaled_impl;
    if constexpr (is_const) {
      const auto value = [](float x, std::size_t) {
        typename Unit::rounding round{};
        return const_scale * Unit::quantize_one(x, round) + 0.0f;
      };
      const auto code = [](float x, std::size_t) {
        typename Unit::rounding round{};
        return Unit::encode_one(x, round);
      };
      const auto header = [](std::size_t) -> std::uint32_t { return 0u; };
      body(elem_set<decltype(value), decltype(code), decltype(header)>{value, code, header});
    } else {
      std::vector<std::uint32_t> max_bits(groups);
      std::vector<double> count(groups), sum(is_binary ? groups : 0), sa(groups), sb(groups);
      std::vector<float> s_out(groups), s_thr(groups);  // output scale S; scale the elements are coded with
      std::vector<int> e(groups);
      if constexpr (is_binary) {
        si::group_stats<true>(in, rows, groups, max_bits.data(), count.data(), sum.data());
        for (std::size_t g = 0; g < groups; ++g) {
          // k = sign(x) (0 -> +1): mean(x*k) = mean|x|, mean(k*k) = 1
          float s = si::ls_scale(sum[g], count[g], count[g]);
          if constexpr (is_po2) {
            e[g] = si::po2_exponent(s, e_lo, e_hi);
            s = detail::exp2i(e[g]);
          }
          s_out[g] = s;
        }
        const float* so = s_out.data();
        const auto value = [so](float x, std::size_t g) { return si::nan_or(x, so[g] * si::binary_sign(x) + 0.0f); };
        const auto code = [](float x, std::size_t) { return detail::to_bits(x) > 0x80000000u ? 1u : 0u; };
        body(make_elems(value, code, s_out));
      } else if constexpr (is_ternary) {
        si::group_stats<false>(in, rows, groups, max_bits.data(), count.data(), nullptr);
        for (std::size_t g = 0; g < groups; ++g) {
          float s = (2.0f * detail::from_bits(max_bits[g])) / 3.0f;
          if constexpr (is_po2) {
            e[g] = si::po2_exponent(s, e_lo, e_hi);
            s = detail::exp2i(e[g]);
          }
          s_thr[g] = s;
        }
        // number_of_unrolls = 5: q from the current scale, then the scale from q. The output is
        // the last scale times the last q (coded with the scale before it). A group whose scale
        // no longer changes has reached QKeras's result: later unrolls would repeat it.
        std::vector<unsigned char> done(groups, 0);
        for (int it = 0; it < 5; ++it) {
          ternary_sums(in, rows, groups, s_thr.data(), e.data(), sa.data(), sb.data());
          bool all = true;
          for (std::size_t g = 0; g < groups; ++g) {
            if (done[g]) continue;
            float s = si::ls_scale(sa[g], sb[g], count[g]);
            int en = 0;
            if constexpr (is_po2) {
              en = si::po2_exponent(s, e_lo, e_hi);
              s = detail::exp2i(en);
            }
            s_out[g] = s;
            if (it == 4 || detail::to_bits(s) == detail::to_bits(s_thr[g])) {
              done[g] = 1;
            } else {
              s_thr[g] = s;
              e[g] = en;
              all = false;
            }
          }
          if (all) break;
        }
        const float* st = s_thr.data();
        const float* so = s_out.data();
        std::vector<float> inv(groups);
        for (std::size_t g = 0; g < groups; ++g) inv[g] = is_po2 ? detail::exp2i(-e[g]) : 0.0f;
        const float* iv = inv.data();
        const auto level = [st, iv](float x, std::size_t g) {
          const float a = detail::fabs(x);
          const float t = is_po2 ? a * iv[g] : a / st[g];
          // +-1 where |x| / s > 0.5 (round(|x| / s) >= 1), else 0; integer selects
          return detail::from_bits(si::above_half(t) ? 0x3F800000u | (detail::to_bits(x) & 0x80000000u) : 0u);
        };
        const auto value = [level, so](float x, std::size_t g) {
          return si::nan_or(x, so[g] * level(x, g) + 0.0f);
        };
        const auto code = [level](float x, std::size_t g) {
          return static_cast<std::uint32_t>(static_cast<std::int32_t>(level(x, g))) & 3u;
        };
        body(make_elems(value, code, s_out));
      } else {  // fixed point, symmetric: levels = 2 * hi
        si::group_stats<false>(in, rows, groups, max_bits.data(), count.data(), nullptr);
        constexpr float c2 = detail::exp2i(-Unit::integer_bits);  // x' = x / 2^integer
        constexpr auto hi = static_cast<float>(Unit::hi_code);
        constexpr float hi_half = hi + 0.5f;
        constexpr float levels = 2.0f * hi;
        for (std::size_t g = 0; g < groups; ++g) {
          float s = (detail::from_bits(max_bits[g]) * c2 * 2.0f) / levels;
          if constexpr (is_po2) {
            e[g] = si::po2_exponent(s, e_lo, e_hi);
            s = detail::exp2i(e[g]);
          }
          s_thr[g] = s;
        }
        std::vector<float> inv(groups), s_div(groups);
        const auto set_scales = [&] {
          for (std::size_t g = 0; g < groups; ++g) {
            if constexpr (is_po2) {
              inv[g] = detail::exp2i(-e[g]);
              s_out[g] = detail::exp2i(e[g] + shift);
            } else {
              s_out[g] = s_thr[g] * detail::exp2i(shift);
              // a zero scale (an all-zero group): 0 / denorm_min = 0 gives level 0 as QKeras's
              // sign(0) = 0 does, and +-Inf still saturate; the output is S * level = 0
              s_div[g] = s_thr[g] == 0.0f ? std::numeric_limits<float>::denorm_min() : s_thr[g];
            }
          }
        };
        const float* iv = inv.data();
        const float* sd = s_div.data();
        const float* so = s_out.data();
        const auto level = [iv, sd](float x, std::size_t g) {
          const std::uint32_t xb = detail::to_bits(x);
          const float ap = detail::from_bits(xb & 0x7FFFFFFFu) * c2;
          const float t = is_po2 ? ap * iv[g] : ap / sd[g];
          return detail::copysign(si::level_of(t, hi_half), x);  // sign(x) * v; v = 0 for x = 0
        };
        const auto value = [level, so](float x, std::size_t g) {
          return si::nan_or(x, so[g] * (level(x, g) * unit_step()) + 0.0f);
        };
        if constexpr (is_po2) {
          // 5 unrolls of: z from the scale, scale = po2(least squares of x' on z). A group whose
          // exponent no longer changes has reached QKeras's result (later unrolls repeat it).
          // Quantizing into a separate buffer, the passes after the first also write the
          // outputs for the current exponents, so the pass that finds them unchanged is the last.
          const auto terms = [iv](float x, std::size_t g) {
            const float ap = si::finite_abs(x) * c2;
            return si::ls_terms{ap, si::level_of(ap * iv[g], hi_half)};
          };
          std::vector<unsigned char> done(groups, 0);
          for (int it = 0; it < 5; ++it) {
            set_scales();
            const bool fuse = fused_out != nullptr && it > 0;
            if (fuse)
              si::group_sums_map<true>(in, fused_out, rows, groups, terms, value, sa.data(), sb.data());
            else
              si::group_sums(in, rows, groups, terms, sa.data(), sb.data());
            bool all = true;
            for (std::size_t g = 0; g < groups; ++g) {
              if (done[g]) continue;
              const int en = si::po2_exponent(si::ls_scale(sa[g], sb[g], count[g]), e_lo, e_hi);
              if (en == e[g]) {
                done[g] = 1;
              } else {
                e[g] = en;
                all = false;
              }
            }
            if (all) {
              if (fuse) return;  // the outputs of these exponents are written
              break;
            }
          }
        }
        set_scales();
        if (fused_out != nullptr) return detail::scaled_impl::group_map(in, fused_out, rows, groups, value);
        const auto code = [level](float x, std::size_t g) {
          constexpr std::uint32_t mask = Unit::bits == 32 ? 0xFFFFFFFFu : ((1u << Unit::bits) - 1u);
          return static_cast<std::uint32_t>(static_cast<std::int32_t>(level(x, g))) & mask;
        };
        body(make_elems(value, code, s_out));
      }
    }
  }

  template <class V, class C, class H>
  struct elem_set {
    V value;
    C code;
    H header;
  };

  template <class V, class C>
  static auto make_elems(const V& value, const C& code, const std::vector<float>& s_out) {
    const float* so = s_out.data();
    const auto header = [so](std::size_t g) -> std::uint32_t {
      if constexpr (is_po2)  // S is an exact power of two: its exponent, 16-bit two's complement
        return static_cast<std::uint32_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(detail::ilog2(so[g]))));
      else
        return detail::to_bits(so[g]);
    };
    return elem_set<V, C, decltype(header)>{value, code, header};
  }

  /// Sums of |x| * q and q per group, q = [|x| / s > 0.5] (finite x only).
  static void ternary_sums(const float* in, std::size_t rows, std::size_t groups, const float* s, const int* e,
                           double* sa, double* sb) {
    std::vector<float> inv(groups);
    for (std::size_t g = 0; g < groups; ++g) inv[g] = is_po2 ? detail::exp2i(-e[g]) : 0.0f;
    const float* iv = inv.data();
    detail::scaled_impl::group_sums(
        in, rows, groups,
        [s, iv](float x, std::size_t g) {
          namespace si = detail::scaled_impl;
          const float ax = si::finite_abs(x);
          const float t = is_po2 ? ax * iv[g] : ax / s[g];
          // q in {0, 1} by masks: GCC turns a select here into a branch around the sums
          const std::uint32_t m = 0u - static_cast<std::uint32_t>(si::above_half(t));
          return si::ls_terms{detail::from_bits(detail::to_bits(ax) & m), detail::from_bits(0x3F800000u & m)};
        },
        sa, sb);
  }
};

}  // namespace qnas
