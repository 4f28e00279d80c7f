// Public conformance kit: checks that a number format (built-in or user-defined) obeys the laws
// of the number_format concept. Use it in your tests: CHECK(qnas::testing::check_format<F>()).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/ops.hpp"

namespace qnas::testing {

/// The outcome of a conformance check: converts to true when every law held; streams the
/// first failures (at most `max_failures`) with the inputs that broke them.
struct check_report {
  std::string format;
  std::size_t checks = 0;
  std::vector<std::string> failures;
  explicit operator bool() const noexcept { return failures.empty(); }
  friend std::ostream& operator<<(std::ostream& os, const check_report& r) {
    os << r.format << ": " << r.checks << " checks, " << r.failures.size() << " failures";
    for (const auto& f : r.failures) os << "\n  " << f;
    return os;
  }
};

struct check_options {
  std::uint64_t seed = 12345;
  std::size_t random_samples = 20000;  ///< random inputs (scalar) or random blocks (block)
  std::size_t max_failures = 20;
};

namespace detail {

/// Equal as float32 bit patterns (the sign of zero included), any NaN equal to any NaN.
inline bool identical_bits(float a, float b) {
  if (qnas::detail::is_nan(a) || qnas::detail::is_nan(b)) return qnas::detail::is_nan(a) && qnas::detail::is_nan(b);
  // Bit for bit, the sign of zero included: a format without a -0 code must not produce -0.
  return a == b && std::signbit(a) == std::signbit(b);
}

class recorder {
 public:
  recorder(check_report& r, const check_options& o) : r_(r), o_(o) {}
  template <class... Ts>
  void expect(bool ok, const Ts&... what) {
    ++r_.checks;
    if (!ok && r_.failures.size() < o_.max_failures) r_.failures.push_back(qnas::detail::cat(what...));
  }

 private:
  check_report& r_;
  const check_options& o_;
};

inline std::vector<float> special_inputs() {
  constexpr float inf = std::numeric_limits<float>::infinity();
  return {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 1e-45f, -1e-45f, 1e-38f, -1e-38f,
          3.4e38f, -3.4e38f, inf, -inf, std::numeric_limits<float>::quiet_NaN()};
}

/// Checks that q lies on the grid (sorted values) next to x, and is a nearest one when the
/// rounding policy rounds to nearest.
inline void check_on_grid(recorder& rec, const std::vector<float>& grid, float x, float q, bool nearest,
                          const std::string& ctx) {
  if (grid.empty() || !(x >= grid.front() && x <= grid.back())) return;
  const auto it = std::lower_bound(grid.begin(), grid.end(), x);
  const float hi = *it;
  const float lo = (hi == x || it == grid.begin()) ? hi : *(it - 1);
  rec.expect(q == lo || q == hi, ctx, "q(", x, ") = ", q, " is not one of the neighbours ", lo, ", ", hi);
  if (nearest && (q == lo || q == hi)) {
    const float other = q == lo ? hi : lo;
    rec.expect(std::fabs(double(q) - x) <= std::fabs(double(other) - x), ctx, "q(", x, ") = ", q,
               " is farther than ", other, " (half-step bound)");
  }
}

template <scalar_format F>
void check_scalar(recorder& rec, const check_options& opt) {
  constexpr bool stochastic = F::rounding::needs_engine;
  constexpr bool nearest = !stochastic && !std::is_same_v<typename F::rounding, toward_zero>;
  std::mt19937_64 engine(opt.seed);
  auto round = qnas::detail::make_rounder<F>(engine);

  std::vector<float> xs = special_inputs();
  std::vector<float> grid;
  if constexpr (F::bits <= 16) {
    grid = values<F>();
    for (std::size_t i = 0; i < grid.size(); ++i) {
      xs.push_back(grid[i]);
      xs.push_back(std::nextafter(grid[i], 1e30f));
      xs.push_back(std::nextafter(grid[i], -1e30f));
      if (i + 1 < grid.size()) xs.push_back(grid[i] + (grid[i + 1] - grid[i]) / 2);  // ties
    }
    // every code decodes to a value that re-encodes stably
    for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
      const float v = F::decode_one(c);
      if (qnas::detail::is_nan(v) && !F::has_nan) rec.expect(false, "decode(", c, ") is NaN but has_nan is false");
      if (qnas::detail::is_nan(v)) continue;
      if (qnas::detail::is_finite(v) && (v > F::max_value || v < F::min_value)) continue;  // an unused code
      const float v2 = F::decode_one(F::encode_one(v, round));
      rec.expect(identical_bits(v, v2), "decode(encode(decode(", c, "))) = ", v2, " != ", v);
    }
    rec.expect(!grid.empty(), "values() is empty");
    rec.expect(grid.empty() || (double(grid.back()) == F::max_value && double(grid.front()) == F::min_value),
               "values() spans [", grid.empty() ? 0.f : grid.front(), ", ", grid.empty() ? 0.f : grid.back(),
               "] but min_value/max_value say [", F::min_value, ", ", F::max_value, "]");
    rec.expect(F::has_zero == (std::find(grid.begin(), grid.end(), 0.0f) != grid.end()),
               "has_zero disagrees with values()");
  }
  const double scale = std::max(std::fabs(F::max_value), std::fabs(F::min_value));
  // qnas's portable draws (random.hpp), not std:: distributions: a failure reported for a seed
  // reproduces with any standard library.
  for (std::size_t i = 0; i < opt.random_samples; ++i) {
    const double s = scale * std::pow(2.0, -static_cast<int>(i % 24));
    xs.push_back(static_cast<float>(qnas::detail::standard_normal_pair(engine).first * s));
  }

  std::vector<std::pair<float, float>> pairs;  // (x, q) for the monotonicity check
  for (float x : xs) {
    const float q = F::quantize_one(x, round);
    if (qnas::detail::is_nan(x)) {
      rec.expect(qnas::detail::is_nan(q), "q(NaN) = ", q, " (NaN must propagate through quantize)");
      continue;
    }
    const float qq = F::quantize_one(q, round);
    rec.expect(identical_bits(q, qq), "idempotence: q(", x, ") = ", q, " but q(q(x)) = ", qq);
    if (!qnas::detail::is_nan(q)) {
      const float d = F::decode_one(F::encode_one(x, round));
      if constexpr (!stochastic) rec.expect(identical_bits(q, d), "decode(encode(", x, ")) = ", d, " but q(x) = ", q);
      if (qnas::detail::is_finite(q))
        rec.expect(q <= F::max_value && q >= F::min_value, "q(", x, ") = ", q, " lies outside [min_value, max_value]");
    }
    if constexpr (F::bits <= 16) check_on_grid(rec, grid, x, q, nearest, "");
    pairs.emplace_back(x, q);
  }
  if constexpr (!stochastic) {
    std::sort(pairs.begin(), pairs.end());
    for (std::size_t i = 1; i < pairs.size(); ++i) {
      if (qnas::detail::is_nan(pairs[i].second) || qnas::detail::is_nan(pairs[i - 1].second)) continue;
      rec.expect(pairs[i - 1].second <= pairs[i].second, "monotonicity: q(", pairs[i - 1].first, ") = ",
                 pairs[i - 1].second, " > q(", pairs[i].first, ") = ", pairs[i].second);
    }
  }
}

template <block_format F>
void check_block(recorder& rec, const check_options& opt) {
  constexpr std::size_t B = static_cast<std::size_t>(F::block_size);
  constexpr bool stochastic = F::rounding::needs_engine;
  constexpr bool nearest = !stochastic && !std::is_same_v<typename F::rounding, toward_zero>;
  std::mt19937_64 engine(opt.seed);
  auto round = qnas::detail::make_rounder<F>(engine);
  // Portable draws (random.hpp), so a failing seed reproduces with any standard library.
  auto normal = [&engine] { return static_cast<float>(qnas::detail::standard_normal_pair(engine).first); };
  auto exponent = [&engine] { return static_cast<int>(qnas::detail::uniform_below(engine, 61)) - 30; };  // [-30, 30]

  std::vector<float> in(B), q(B), qq(B), d(B);
  std::vector<std::uint32_t> codes(B), codes2(B);
  const std::size_t blocks = std::max<std::size_t>(opt.random_samples / B, 64);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t n = (b % 7 == 6) ? 1 + b % B : B;  // ragged tails too
    const float s = std::ldexp(1.0f, exponent());
    for (std::size_t j = 0; j < n; ++j) in[j] = normal() * s * ((j % 5 == 0) ? 8.0f : 1.0f);
    if (b % 11 == 3) std::fill(in.begin(), in.begin() + n, 0.0f);
    if (b % 13 == 5) in[0] = 0.0f;
    const std::string ctx = qnas::detail::cat("block ", b, " (n=", n, "): ");

    F::quantize_block(in.data(), q.data(), n, round);
    F::quantize_block(q.data(), qq.data(), n, round);
    for (std::size_t j = 0; j < n; ++j)
      rec.expect(identical_bits(q[j], qq[j]), ctx, "idempotence at ", j, ": q = ", q[j], ", q(q) = ", qq[j]);
    const std::uint64_t header = F::encode_block(in.data(), codes.data(), n, round);
    rec.expect(F::scale_bits == 64 || header < (std::uint64_t{1} << F::scale_bits), ctx, "header ", header,
               " does not fit in scale_bits");
    F::decode_block(header, codes.data(), d.data(), n);
    for (std::size_t j = 0; j < n; ++j) {
      rec.expect(codes[j] < (std::uint64_t{1} << F::bits), ctx, "code ", codes[j], " does not fit in bits");
      if constexpr (!stochastic)
        rec.expect(identical_bits(q[j], d[j]), ctx, "decode(encode) at ", j, " = ", d[j], " but q = ", q[j]);
    }
    // Per-position value grid under this block's header: error within it. A code belongs to
    // the grid at position j when the format, given this block, represents its value exactly:
    // putting the value at j and re-encoding keeps the header and yields the same code (so
    // codes the format never produces, such as -2 in a symmetric element, are left out).
    if constexpr (F::bits <= 8) {
      std::vector<float> probe(B), one(B);
      std::vector<std::uint32_t> pcodes(B);
      for (std::size_t j = 0; j < std::min<std::size_t>(n, 4); ++j) {
        std::vector<float> grid;
        for (std::uint32_t c = 0; c < (1u << F::bits); ++c) {
          std::fill(codes2.begin(), codes2.end(), c);
          F::decode_block(header, codes2.data(), one.data(), n);
          const float v = one[j];
          if (!qnas::detail::is_finite(v)) continue;
          std::copy(in.begin(), in.begin() + n, probe.begin());
          probe[j] = v;
          const std::uint64_t h2 = F::encode_block(probe.data(), pcodes.data(), n, round);
          if (h2 != header || pcodes[j] != c) continue;
          grid.push_back(v);
        }
        std::sort(grid.begin(), grid.end());
        if (!stochastic) check_on_grid(rec, grid, in[j], q[j], nearest, ctx);
      }
    }
  }
  // Monotonicity with a fixed scale: the first element pins the block's largest magnitude,
  // the second sweeps [-M, M] in increasing order; its quantized value must not decrease.
  // A maximum beyond the format's scale range makes the block NaN (MX with a narrow scale):
  // there is no order to check.
  if constexpr (!stochastic) {
    for (float m : {1.0f, 0.75f, 3.0e-3f, 1000.0f}) {
      std::fill(in.begin(), in.end(), 0.0f);
      in[0] = m;
      F::quantize_block(in.data(), q.data(), B, round);
      if (qnas::detail::is_nan(q[0])) continue;
      float prev = -std::numeric_limits<float>::infinity();
      for (int k = 0; k <= 4000; ++k) {
        std::fill(in.begin(), in.end(), 0.0f);
        in[0] = m;
        in[1] = m * (-1.0f + static_cast<float>(k) / 2000.0f) * 0.999f;
        F::quantize_block(in.data(), q.data(), B, round);
        rec.expect(q[1] >= prev, "monotonicity with max ", m, ": q(", in[1], ") = ", q[1], " < ", prev);
        prev = q[1];
      }
    }
  }
}

/// A tensor-scaled format: the laws given its scales, on random tensors of several shapes
/// (per-channel and per-tensor groups, rank 1, a channel axis that is not last) with zero,
/// all-equal and +-Inf channels.
///   - decode(encode(x)) == quantize(x) bit for bit; encode refuses NaN; NaN propagates
///     through quantize to its own element only;
///   - every output is S_g * u with S_g the group's stored scale and u a value of the unit
///     format (checked through the codes);
///   - per-channel scales: a channel quantized alone gives the same values as in the tensor;
///   - monotone within a group; codes stable under re-quantization (auto scales); bit-for-bit
///     idempotence where the rule has it (auto_po2; constant alpha on binary, and on ternary
///     when alpha >= the threshold).
template <tensor_scaled_format F>
void check_tensor_scaled(recorder& rec, const check_options& opt) {
  std::mt19937_64 engine(opt.seed);
  auto normal = [&engine] { return static_cast<float>(qnas::detail::standard_normal_pair(engine).first); };
  constexpr float inf = std::numeric_limits<float>::infinity();
  using shape_t = std::vector<std::size_t>;
  const std::vector<std::pair<shape_t, std::ptrdiff_t>> cases = {
      {{7}, -1}, {{64, 8}, -1}, {{3, 3, 4, 6}, -1}, {{5, 9}, 0}, {{2, 6, 3}, 1}, {{1, 5}, -1}, {{300, 3}, -1}};
  const std::size_t rounds = std::max<std::size_t>(opt.random_samples / 2000, 3);
  constexpr bool po2 = requires { requires F::is_po2; };
  constexpr bool value_idempotent = [] {
    if constexpr (requires { requires F::is_po2; }) {
      return true;
    } else if constexpr (requires { requires F::is_const && F::is_binary; }) {
      return true;
    } else if constexpr (requires { requires F::is_const && F::is_ternary; }) {
      return F::alpha::value >= static_cast<double>(F::unit::threshold);
    } else {
      return false;
    }
  }();
  constexpr bool codes_stable = [] {
    if constexpr (requires { requires F::is_const; }) return false;
    else if constexpr (learned_scale_format<F>) return false;  // the initial step follows the values
    else return true;
  }();
  (void)po2;
  for (std::size_t round = 0; round < rounds; ++round)
    for (const auto& [shape, axis] : cases) {
      xt::xarray<float> x = xt::empty<float>(shape);
      const float sc = std::ldexp(1.0f, static_cast<int>(round % 9) - 4);
      for (auto& v : x) v = normal() * sc;
      const auto l = qnas::detail::layout_of(shape, axis, "check_format");
      const std::size_t groups = qnas::detail::scale_groups<F>(l);
      // channel 0 of a multi-group case: all zero; channel 1: all equal; a +-Inf in channel 2
      auto set_channel = [&](std::size_t k, auto&& fn) {
        for (std::size_t o = 0; o < l.outer; ++o)
          for (std::size_t i = 0; i < l.inner; ++i) fn(x.data()[(o * l.len + k) * l.inner + i]);
      };
      // An infinity saturates at the scale of the finite values; quantizing the result again
      // sees a finite value there instead, so the idempotence checks skip those tensors.
      const bool with_inf = groups > 2 && round % 3 == 0;
      // A zero channel's scale is of the order of QKeras's eps (1e-7), which then shifts the
      // scale found from the quantized values (binary auto_po2: 0 -> 2^-23 -> 2^-22).
      const bool with_zero = groups > 2 && round % 2 == 0;
      if (with_zero) {
        set_channel(0, [](float& v) { v = 0.0f; });
        set_channel(1, [&](float& v) { v = 0.75f * sc; });
      }
      if (with_inf) x.data()[2 * l.inner] = (round % 2 == 0) ? inf : -inf;
      const std::string ctx = qnas::detail::cat("shape ", shape.size(), "-d [", shape[0], shape.size() > 1 ? ",..." : "",
                                                "] axis ", axis, " round ", round, ": ");
      const auto q = quantize<F>(x, axis);
      const auto e = encode<F>(x, axis);
      const auto d = decode(e);
      rec.expect(e.headers.size() * 8 >= groups * static_cast<std::size_t>(F::header_bits), ctx, "headers hold ",
                 e.headers.size(), " bytes for ", groups, " groups");
      for (std::size_t i = 0; i < x.size(); ++i) {
        rec.expect(identical_bits(q.data()[i], d.data()[i]), ctx, "decode(encode) at ", i, " = ", d.data()[i], " but q = ",
                   q.data()[i]);
        rec.expect(qnas::detail::is_finite(q.data()[i]), ctx, "q at ", i, " = ", q.data()[i], " is not finite");
      }
      // monotone within each group (the scale is fixed within a group)
      std::vector<std::vector<std::pair<float, float>>> by_group(groups);
      for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t k = 0; k < l.len; ++k)
          for (std::size_t i = 0; i < l.inner; ++i) {
            const std::size_t at = (o * l.len + k) * l.inner + i;
            by_group[groups == 1 ? 0 : k].emplace_back(x.data()[at], q.data()[at]);
          }
      for (auto& gp : by_group) {
        std::sort(gp.begin(), gp.end());
        for (std::size_t i = 1; i < gp.size(); ++i)
          rec.expect(gp[i - 1].second <= gp[i].second, ctx, "monotonicity in a group: q(", gp[i - 1].first, ") = ",
                     gp[i - 1].second, " > q(", gp[i].first, ") = ", gp[i].second);
      }
      // a channel alone gives the values it has in the tensor
      if (groups > 1) {
        const std::size_t k = round % groups;
        xt::xarray<float> one = xt::empty<float>(shape_t{l.outer * l.inner, 1});
        std::size_t j = 0;
        for (std::size_t o = 0; o < l.outer; ++o)
          for (std::size_t i = 0; i < l.inner; ++i) one.data()[j++] = x.data()[(o * l.len + k) * l.inner + i];
        const auto q1 = quantize<F>(one);
        j = 0;
        for (std::size_t o = 0; o < l.outer; ++o)
          for (std::size_t i = 0; i < l.inner; ++i, ++j)
            rec.expect(identical_bits(q1.data()[j], q.data()[(o * l.len + k) * l.inner + i]), ctx, "channel ", k,
                       " alone gives ", q1.data()[j], " at row ", j, ", in the tensor ",
                       q.data()[(o * l.len + k) * l.inner + i]);
      }
      const auto qq = quantize<F>(q, axis);
      if (!with_inf && !with_zero && value_idempotent)
        for (std::size_t i = 0; i < x.size(); ++i)
          rec.expect(identical_bits(q.data()[i], qq.data()[i]), ctx, "idempotence at ", i, ": q = ", q.data()[i],
                     ", q(q) = ", qq.data()[i]);
      if constexpr (learned_scale_format<F>) {
        // given its steps, the quantizer is idempotent and its codes decode to its values
        const std::size_t cols = shape.size() < 2 ? 1 : shape.back(), rows = x.size() / cols;
        std::vector<float> steps(F::step_count(cols)), q1(x.size()), q2(x.size()), back(x.size());
        std::vector<std::uint32_t> codes(x.size());
        F::init_steps(x.data(), steps.data(), rows, cols);
        for (std::size_t j = 0; j < steps.size(); ++j) steps[j] *= 1.0f + 0.125f * static_cast<float>(j % 5);
        F::quantize_rows_with(x.data(), q1.data(), steps.data(), rows, cols);
        F::quantize_rows_with(q1.data(), q2.data(), steps.data(), rows, cols);
        std::vector<std::uint32_t> heads(steps.size());
        for (std::size_t j = 0; j < steps.size(); ++j) heads[j] = qnas::detail::to_bits(steps[j]);
        F::encode_rows_with(x.data(), codes.data(), steps.data(), rows, cols);
        F::decode_rows(codes.data(), heads.data(), back.data(), rows, cols);
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (qnas::detail::is_nan(x.data()[i])) continue;
          rec.expect(identical_bits(q1[i], q2[i]), ctx, "idempotence given the steps at ", i, ": q = ", q1[i], ", q(q) = ", q2[i]);
          rec.expect(identical_bits(q1[i], back[i]), ctx, "decode(codes with the steps) at ", i, " = ", back[i], " but q = ", q1[i]);
        }
      }
      if (!with_inf && codes_stable) {
        const auto e2 = encode<F>(q, axis);
        rec.expect(e2.codes == e.codes, ctx, "re-quantizing changed the codes");
      }
      // NaN propagates to its own element only (it is left out of the scales)
      xt::xarray<float> xn = x;
      xn.data()[x.size() / 2] = std::numeric_limits<float>::quiet_NaN();
      const auto qn = quantize<F>(xn, axis);
      rec.expect(qnas::detail::is_nan(qn.data()[x.size() / 2]), ctx, "q(NaN) = ", qn.data()[x.size() / 2]);
      for (std::size_t i = 0; i < x.size(); ++i)
        if (i != x.size() / 2) rec.expect(qnas::detail::is_finite(qn.data()[i]), ctx, "a NaN elsewhere made q at ", i, " = ", qn.data()[i]);
      bool threw = false;
      try {
        (void)encode<F>(xn, axis);
      } catch (const invalid_argument&) {
        threw = true;
      }
      rec.expect(threw, ctx, "encode of a NaN did not throw");
    }
}

}  // namespace detail

/// Checks the laws of the number_format concept for F (see formats/concept.hpp):
/// idempotence, monotonicity, nearest-value error bound on the format's value grid,
/// encode/decode round trip, NaN propagation, range traits. A tensor-scaled format is checked
/// given its scales (detail::check_tensor_scaled). A type that is not a number format fails to
/// compile here with the first member or rule it lacks (qnas::check_number_format).
template <class F>
check_report check_format(const check_options& opt = {}) {
  static_assert(check_number_format<F>(), "check_format<F>: F must be a qnas::number_format");
  check_report r;
  if constexpr (number_format<F>) {
    r.format = F::name();
    detail::recorder rec(r, opt);
    rec.expect(F::tuple.total() <= F::bits || F::family == format_family::codebook ||
                   F::family == format_family::block_fp,
               "bit tuple (", F::tuple.sign, ",", F::tuple.exponent, ",", F::tuple.mantissa, ") needs more than ",
               F::bits, " bits");
    rec.expect(F::min_value <= F::max_value, "min_value > max_value");
    if constexpr (scalar_format<F>)
      detail::check_scalar<F>(rec, opt);
    else if constexpr (tensor_scaled_format<F>)
      detail::check_tensor_scaled<F>(rec, opt);
    else
      detail::check_block<F>(rec, opt);
  }
  return r;
}

}  // namespace qnas::testing
