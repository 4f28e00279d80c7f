// scaled<Unit, Alpha, Axis>: QKeras alpha='auto', 'auto_po2' and constant alpha, per tensor or per
// output channel, against values worked by hand from QKeras's rules (qkeras/quantizers.py:
// quantized_bits.__call__, ternary.__call__, binary.__call__, _get_least_squares_scale).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/nn/blas.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

xt::xarray<float> arr(std::vector<std::size_t> shape, std::vector<float> v) {
  xt::xarray<float> a = xt::empty<float>(shape);
  std::copy(v.begin(), v.end(), a.begin());
  return a;
}

using fx4 = fixed_point<4, 0, true, true>;  // QKeras quantized_bits(4, 0) with symmetric forced
using fx4_po2 = scaled<fx4, alpha_auto_po2<>>;
using fx4_po2_t = scaled<fx4, alpha_auto_po2<>, per_tensor>;
using fx4_auto = scaled<fx4, alpha_auto>;
using tern_auto = scaled<ternary<>, alpha_auto>;
using tern_po2 = scaled<ternary<>, alpha_auto_po2<>>;
using tern_po2_t = scaled<ternary<>, alpha_auto_po2<>, per_tensor>;
using bin_auto = scaled<binary<>, alpha_auto>;
using bin_po2 = scaled<binary<>, alpha_auto_po2<>>;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

template <class F>
void check_values(const xt::xarray<float>& x, const std::vector<float>& expected) {
  const auto q = quantize<F>(x);
  REQUIRE(q.size() == expected.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    INFO(F::name(), " element ", i, ": got ", q.data()[i], ", expected ", expected[i]);
    CHECK(same_bits(q.data()[i], expected[i]));
  }
  if constexpr (!F::has_nan) {
    bool has_nan = false;
    for (float v : x) has_nan |= std::isnan(v);
    if (has_nan) return;
  }
  const auto d = decode(encode<F>(x));
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(same_bits(d.data()[i], q.data()[i]));
}

/// The group headers of encode<F>(x) as signed 16-bit exponents (auto_po2).
template <class F>
std::vector<int> po2_headers(const xt::xarray<float>& x) {
  const auto e = encode<F>(x);
  std::vector<int> h;
  for (std::size_t i = 0; i + 1 < e.headers.size(); i += 2)
    h.push_back(static_cast<std::int16_t>(static_cast<std::uint16_t>(e.headers[i] | (e.headers[i + 1] << 8))));
  return h;
}
template <class F>
std::vector<float> float_headers(const xt::xarray<float>& x) {
  const auto e = encode<F>(x);
  std::vector<float> h(e.headers.size() / 4);
  std::memcpy(h.data(), e.headers.data(), h.size() * 4);  // LSB-first packing: little-endian bytes
  return h;
}

// The worked example: two output channels (last axis), three rows.
//   channel 0: {0.1, 0.4, -0.3}    channel 1: {-0.7, 0.2, 0.05}
const xt::xarray<float> x32 = {{0.1f, -0.7f}, {0.4f, 0.2f}, {-0.3f, 0.05f}};
}  // namespace

TEST_CASE("static description and names") {
  static_assert(tensor_scaled_format<fx4_po2> && number_format<fx4_po2> && !scalar_format<fx4_po2>);
  static_assert(!block_format<fx4_po2>);
  static_assert(fx4_po2::bits == 4 && fx4_po2::block_size == 1 && fx4_po2::scale_bits == 0);
  static_assert(fx4_po2::family == format_family::fixed_point && fx4_po2::tuple == fx4::tuple);
  static_assert(tern_auto::family == format_family::ternary && bin_po2::family == format_family::binary);
  static_assert(fx4_po2::max_value == 3.4028234663852886e38 && fx4_po2::min_value == -3.4028234663852886e38);
  static_assert(fx4_po2::header_bits == 16 && fx4_auto::header_bits == 32 && scaled<ternary<>, alpha_const<10.0>>::header_bits == 0);
  CHECK(fx4_po2::name() == "scaled<fixed_point<4,0,symmetric>,auto_po2,per_channel>");
  CHECK(fx4_po2_t::name() == "scaled<fixed_point<4,0,symmetric>,auto_po2,per_tensor>");
  CHECK(tern_auto::name() == "scaled<ternary<0>,auto,per_channel>");
  CHECK(scaled<binary<>, alpha_auto_po2<-4, 2>>::name() == "scaled<binary<0>,auto_po2[-4,2],per_channel>");
  CHECK(scaled<ternary<>, alpha_const<10.0>>::name() == "scaled<ternary<0>,alpha=10>");
  // the straight-through estimator passes every finite value (QKeras auto: no clipping mask)
  const format_info f = info_of<fx4_po2>();
  const float pre[] = {-3.0e38f, -1.0f, 0.0f, 1e30f, inf};
  const float g[] = {1, 2, 3, 4, 5};
  float out[5];
  nn::detail::ste_mask(f, pre, g, out, 5);
  CHECK(out[0] == 1);
  CHECK(out[1] == 2);
  CHECK(out[3] == 4);
  CHECK(out[4] == 0);  // an infinite input gets no gradient
}

TEST_CASE("quantized_bits(4, 0, alpha='auto_po2'), per channel, worked by hand") {
  // hi = 2^3 - 1 = 7, levels = 14; x' = x / 2^0.
  // channel 0: max = 0.4, scale0 = 0.8 / 14 = 0.0571; log2(0.0571 + 1e-7) = -4.13 -> 2^-4.
  //   unroll: |x|/s = 1.6, 6.4, 4.8 -> v = floor(. + 0.5) = 2, 6, 5;
  //   LS = (0.1*2 + 0.4*6 + 0.3*5) / (4 + 36 + 25) = 4.1 / 65 = 0.0631 -> log2 -3.99 -> 2^-4 (fixed point).
  //   q = s * z = 0.125, 0.375, -0.3125.
  // channel 1: max = 0.7, scale0 = 0.1 -> log2 -3.32 -> 2^-3;
  //   |x|/s = 5.6, 1.6, 0.4 -> v = 6, 2, 0; LS = (4.2 + 0.4) / 40 = 0.115 -> 2^-3.
  //   q = -0.75, 0.25, 0.
  check_values<fx4_po2>(x32, {0.125f, -0.75f, 0.375f, 0.25f, -0.3125f, 0.0f});
  // stored scale S = s * 2^(B-1) (QKeras's quantizer.scale): 2^-1 and 2^0
  CHECK(po2_headers<fx4_po2>(x32) == std::vector<int>{-1, 0});
}

TEST_CASE("per tensor and per channel on the same data differ as QKeras's axes do") {
  // per tensor: max = 0.7 -> 2^-3; |x|/s = 0.8, 5.6, 3.2, 1.6, 2.4, 0.4 -> v = 1, 6, 3, 2, 2, 0;
  // LS = (0.1 + 4.2 + 1.2 + 0.4 + 0.6) / (1 + 36 + 9 + 4 + 4) = 6.5 / 54 = 0.120 -> 2^-3.
  check_values<fx4_po2_t>(x32, {0.125f, -0.75f, 0.375f, 0.25f, -0.25f, 0.0f});
  CHECK(po2_headers<fx4_po2_t>(x32) == std::vector<int>{0});
  // rank 1 (a bias): one scale, the per-tensor result
  const xt::xarray<float> flat = {0.1f, -0.7f, 0.4f, 0.2f, -0.3f, 0.05f};
  check_values<fx4_po2>(flat, {0.125f, -0.75f, 0.375f, 0.25f, -0.25f, 0.0f});
  CHECK(po2_headers<fx4_po2>(flat) == std::vector<int>{0});
  // the channel axis may be another one: axis 0 of the transposed data gives the same values
  const xt::xarray<float> xt32 = xt::transpose(x32);
  const auto qa = quantize<fx4_po2>(xt32, 0);
  const xt::xarray<float> qat = xt::transpose(qa);
  CHECK(qat == quantize<fx4_po2>(x32));
  CHECK(decode(encode<fx4_po2>(xt32, 0)) == qa);
}

TEST_CASE("quantized_bits(4, 0, alpha='auto'): max-abs float scale") {
  // channel 0: s = (0.4 * 2) / 14; |x|/s = 1.75, 7, 5.25 -> z = 2, 7, -5; q = (s * 8) * (z / 8)
  // channel 1: s = (0.7 * 2) / 14 = 0.1; |x|/s = 7, 2, 0.5 -> z = -7, 2, 1 (floor(0.5 + 0.5) = 1)
  const float s0 = (0.4f * 2.0f) / 14.0f, s1 = (0.7f * 2.0f) / 14.0f;
  const float S0 = s0 * 8.0f, S1 = s1 * 8.0f;
  const float z_ch1_last = std::floor(0.05f / s1 + 0.5f);  // 0.05 / 0.1 in float: 0.5 or just above
  CHECK(z_ch1_last == 1.0f);
  check_values<fx4_auto>(x32, {S0 * (2 * 0.125f), S1 * (-7 * 0.125f), S0 * (7 * 0.125f), S1 * (2 * 0.125f),
                               S0 * (-5 * 0.125f), S1 * (1 * 0.125f)});
  CHECK(float_headers<fx4_auto>(x32) == std::vector<float>{S0, S1});
  // integer bits: x' = x / 2^integer, q = 2^integer * s * z
  using fx4i1 = scaled<fixed_point<4, 1, true, true>, alpha_auto>;
  const xt::xarray<float> y = arr({2, 1}, {1.4f, -0.2f});
  const float s = ((1.4f * 0.5f) * 2.0f) / 14.0f;  // max|x'| = 0.7
  const float z = std::floor((0.2f * 0.5f) / s + 0.5f);
  check_values<fx4i1>(y, {(s * 8.0f) * (7 * 0.25f), (s * 8.0f) * (-z * 0.25f)});
}

TEST_CASE("fixed point auto_po2: floor(a + 0.5) ties round up, and in float") {
  // per tensor: max = 0.875 -> scale0 = 1.75 / 14 = 0.125 = 2^-3.
  // |x|/s = 7, 0.5 (floor(1.0) = 1: up, where nearest-even would give 0), and
  // 0.49999997 (= 0.5 - 2^-25): 0.49999997f + 0.5f rounds to 1.0f in float, so v = 1 too.
  // LS = (0.875*7 + 0.0625 + 0.0625*(1 - 2^-24)) / (49 + 1 + 1) = 0.1225 -> 2^-3.
  const float a = 0.125f * 0.49999997f;
  const xt::xarray<float> x = {0.875f, 0.0625f, a, -0.0625f};
  check_values<fx4_po2_t>(x, {0.875f, 0.125f, 0.125f, -0.125f});
  // just below: |x|/s = 0.4999999 gives 0
  const xt::xarray<float> y = {0.875f, 0.125f * 0.4999999f};
  check_values<fx4_po2_t>(y, {0.875f, 0.0f});
}

TEST_CASE("fixed point auto_po2: zero channel, all-equal channel, NaN and infinities") {
  // channel 0 all zero: scale0 = 0 -> 2^round(log2(1e-7)) = 2^-23, LS = 0 -> 2^-23 again;
  //   output 0, S = 2^-23 * 2^3 = 2^-20.
  // channel 1 all 0.3: scale0 = 0.6 / 14 = 0.0429 -> log2 -4.54 -> 2^-5; |x|/s = 9.6 -> v = 10,
  //   clipped to 7; LS = 0.3 * 7 / 49 = 0.0429 -> 2^-5: q = 7/32 = 0.21875 (the top level).
  const xt::xarray<float> x = {{0.0f, 0.3f}, {-0.0f, 0.3f}, {0.0f, 0.3f}};
  check_values<fx4_po2>(x, {0.0f, 0.21875f, 0.0f, 0.21875f, 0.0f, 0.21875f});
  CHECK(po2_headers<fx4_po2>(x) == std::vector<int>{-20, -2});
  // NaN propagates to its own element and is left out of the scale; +-Inf are left out of the
  // scale and saturate to the top level. Finite: {0.5, -0.25}: scale0 = 1/14 -> 2^-4;
  // v = 8 -> 7, 4; LS = (3.5 + 1) / 65 = 0.069 -> 2^-4.
  const xt::xarray<float> y = {0.5f, qnan, inf, -inf, -0.25f};
  check_values<fx4_po2_t>(y, {0.4375f, qnan, 0.4375f, -0.4375f, -0.25f});
  CHECK_THROWS_AS((void)encode<fx4_po2_t>(y), invalid_argument);
  // an all-zero tensor with the auto (max-abs) scale: scale 0, output +0
  const xt::xarray<float> z = arr({1, 2}, {0.0f, -0.0f});
  check_values<scaled<fx4, alpha_auto, per_tensor>>(z, {0.0f, 0.0f});
  CHECK(float_headers<scaled<fx4, alpha_auto, per_tensor>>(z) == std::vector<float>{0.0f});
}

TEST_CASE("ternary(alpha='auto') and 'auto_po2', worked by hand") {
  // channel 0 {0.1, 0.4, -0.3}: m = 0.4, s = 2m/3 = 0.2667; |x|/s = 0.375, 1.5, 1.125 -> q = 0, 1, -1;
  //   LS = mean(x q) / (mean(q q) + eps) = (0.7/3) / (2/3 + 1e-7) = 0.35 (a bit below);
  //   next: |x|/0.35 = 0.29, 1.14, 0.86 -> same q -> same scale: done. q = 0, s, -s.
  // channel 1 {-0.7, 0.2, 0.05}: m = 0.7, s = 0.4667; |x|/s = 1.5, 0.43, 0.11 -> q = -1, 0, 0;
  //   LS = (0.7/3) / (1/3 + eps) -> 0.7 (a bit below); |x|/0.7: same q: done.
  // Exactly: each mean is the float of (sum of the float products, in double) / n, and
  // scale = qx / (qq + eps) in float (TF's float32 means and division).
  const float qx0 = static_cast<float>((static_cast<double>(0.4f) + static_cast<double>(0.3f)) / 3.0);
  const float s0 = qx0 / (static_cast<float>(2.0 / 3.0) + 1e-7f);
  const float qx1 = static_cast<float>(static_cast<double>(0.7f) / 3.0);
  const float s1 = qx1 / (static_cast<float>(1.0 / 3.0) + 1e-7f);
  check_values<tern_auto>(x32, {0.0f, -s1, s0, 0.0f, -s0, 0.0f});
  CHECK(float_headers<tern_auto>(x32) == std::vector<float>{s0, s1});
  const auto q = quantize<tern_auto>(x32);
  CHECK(decode(encode<tern_auto>(x32)) == q);
  // auto_po2: channel 0: s = 2^round(log2(0.2667)) = 2^-2; |x|/s = 0.4, 1.6, 1.2 -> q = 0, 1, -1;
  //   LS = 0.35 -> 2^round(-1.51) = 2^-2: done. channel 1: 2^round(log2 0.4667) = 2^-1;
  //   |x|/s = 1.4, 0.4, 0.1 -> q = -1, 0, 0; LS = 0.7 -> 2^round(-0.51) = 2^-1: done.
  check_values<tern_po2>(x32, {0.0f, -0.5f, 0.25f, 0.0f, -0.25f, 0.0f});
  CHECK(po2_headers<tern_po2>(x32) == std::vector<int>{-2, -1});
}

TEST_CASE("ternary auto_po2: x / scale = 0.5 rounds to even (0); zero and equal channels; NaN, Inf") {
  // {1, 0.5, -1}: m = 1, s = 2^round(log2(2/3)) = 2^-1; |x|/s = 2, 1, 2 -> q = 1, 1, -1;
  //   LS = (2.5/3) / (1 + 1e-7) = 0.833 -> 2^0. Next: |x|/1 = 1, 0.5, 1 -> round(0.5) = 0: q = 1, 0, -1;
  //   LS = (2/3) / (2/3 + 1e-7) -> 2^0: done. Output 1, 0, -1.
  check_values<tern_po2_t>(xt::xarray<float>{1.0f, 0.5f, -1.0f}, {1.0f, 0.0f, -1.0f});
  // zero channel: m = 0 -> 2^-23, q = 0 everywhere, LS = 0 -> 2^-23: output 0.
  // all-equal channel {0.3 x3}: s = 2^round(log2 0.2) = 2^-2; |x|/s = 1.2 -> q = 1; LS = 0.3/(1 + 1e-7)
  //   -> 2^round(-1.74) = 2^-2: done, output 0.25.
  const xt::xarray<float> x = {{0.0f, 0.3f}, {0.0f, 0.3f}, {0.0f, 0.3f}};
  check_values<tern_po2>(x, {0.0f, 0.25f, 0.0f, 0.25f, 0.0f, 0.25f});
  CHECK(po2_headers<tern_po2>(x) == std::vector<int>{-23, -2});
  // the auto scale of the same: 0 for the zero channel; 0.3 / (1 + 1e-7) for the equal one
  const auto qa = quantize<tern_auto>(x);
  CHECK(same_bits(qa(0, 0), 0.0f));
  CHECK(qa(0, 1) == 0.3f / (1.0f + 1e-7f));
  // NaN and +-Inf: finite {0.6, -0.1}: m = 0.6, s = 2^round(log2 0.4) = 2^-1; |x|/s = 1.2, 0.2 -> q = 1, 0;
  //   LS = (0.6/2) / (1/2 + 1e-7) = 0.6 -> 2^-1: done. Inf -> +-s.
  check_values<tern_po2_t>(xt::xarray<float>{0.6f, qnan, -inf, -0.1f, inf}, {0.5f, qnan, -0.5f, 0.0f, 0.5f});
}

TEST_CASE("binary(alpha='auto') and 'auto_po2'") {
  // k = sign(x) with 0 -> +1; scale = mean(x k) / (mean(k k) + eps) = mean|x| / (1 + 1e-7).
  // channel 0: mean |x| = 0.8 / 3; channel 1: 0.95 / 3.
  const float s0 = static_cast<float>((double(0.1f) + double(0.4f) + double(0.3f)) / 3.0) / (1.0f + 1e-7f);
  const float s1 = static_cast<float>((double(0.7f) + double(0.2f) + double(0.05f)) / 3.0) / (1.0f + 1e-7f);
  check_values<bin_auto>(x32, {s0, -s1, s0, s1, -s0, s1});
  CHECK(float_headers<bin_auto>(x32) == std::vector<float>{s0, s1});
  // auto_po2: 2^round(log2 0.267) = 2^-2, 2^round(log2 0.317) = 2^-2
  check_values<bin_po2>(x32, {0.25f, -0.25f, 0.25f, 0.25f, -0.25f, 0.25f});
  // exponent clip (min_po2_exponent / max_po2_exponent): 2^-2 clipped into [0, 2] is 2^0
  check_values<scaled<binary<>, alpha_auto_po2<0, 2>>>(x32, {1.0f, -1.0f, 1.0f, 1.0f, -1.0f, 1.0f});
  // zero channel: mean 0 -> auto scale 0 (output +0); auto_po2 2^-23 (0 -> +2^-23: binary has no 0)
  const xt::xarray<float> z = arr({2, 1}, {0.0f, -0.0f});
  check_values<bin_auto>(z, {0.0f, 0.0f});
  check_values<bin_po2>(z, {0x1p-23f, 0x1p-23f});
  // NaN and +-Inf are left out of the mean: {0.5, -0.25} -> 0.375 / (1 + 1e-7)
  const float s = 0.375f / (1.0f + 1e-7f);
  check_values<scaled<binary<>, alpha_auto, per_tensor>>(xt::xarray<float>{0.5f, qnan, inf, -inf, -0.25f},
                                                          {s, qnan, s, -s, -s});
}

TEST_CASE("constant alpha: quantize on the unit grid, then multiply") {
  // ternary(alpha=10): |x| >= 0.33 -> 10 sign(x), else 0 (the threshold does not scale)
  using t10 = scaled<ternary<>, alpha_const<10.0>>;
  check_values<t10>(xt::xarray<float>{0.5f, -0.33f, 0.329f, 2.0f, -0.0f, inf}, {10.0f, -10.0f, 0.0f, 10.0f, 0.0f, 10.0f});
  // quantized_bits(4, 0, alpha=0.5) (QKeras's default symmetric=False): round(x * 8) clipped to
  // [-8, 7], / 8, then * 0.5: 0.3 -> 2/8 -> 0.125; -1 -> -8/8 -> -0.5; 0.9 -> 7/8 -> 0.4375.
  using f05 = scaled<fixed_point<4, 0>, alpha_const<0.5>>;
  check_values<f05>(xt::xarray<float>{0.3f, -1.0f, 0.9f}, {0.125f, -0.5f, 0.4375f});
  // not idempotent: q(q(0.3)) = q(0.125) = 1/8 * 0.5 = 0.0625
  CHECK(quantize<f05>(quantize<f05>(xt::xarray<float>{0.3f}))(0) == 0.0625f);
  // binary(alpha=2.5)
  check_values<scaled<binary<>, alpha_const<2.5>>>(xt::xarray<float>{-3.0f, 0.0f, 1e-30f}, {-2.5f, 2.5f, 2.5f});
  CHECK(encode<t10>(xt::xarray<float>{1.0f}).headers.empty());
}

TEST_CASE("exhaustive codes: every code decodes to S times the unit's value") {
  // 8-bit fixed point, S = 2^3 (header 3): code k (two's complement) -> 8 * k / 2^7.
  using f8 = scaled<fixed_point<8, 0, true, true>, alpha_auto_po2<>, per_tensor>;
  encoded<f8> e;
  e.shape = {256};
  e.codes.resize(256);
  for (int c = 0; c < 256; ++c) e.codes[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c);
  e.headers = {3, 0};
  const auto d = decode(e);
  for (int c = 0; c < 256; ++c) {
    const int k = c < 128 ? c : c - 256;
    CHECK(d(static_cast<std::size_t>(c)) == 8.0f * static_cast<float>(k) / 128.0f);
  }
  // the tensor of every value k / 128, k in [-127, 127], quantizes to itself with those codes:
  // max = 127/128 -> scale0 = (127/64) / 254 = 2^-7; LS = 2^-7 exactly: S = 2^-7 * 2^7 = 1.
  xt::xarray<float> all = xt::empty<float>({255});
  for (int k = -127; k <= 127; ++k) all(static_cast<std::size_t>(k + 127)) = static_cast<float>(k) / 128.0f;
  CHECK(quantize<f8>(all) == all);
  const auto ea = encode<f8>(all);
  CHECK(ea.headers == std::vector<std::uint8_t>{0, 0});
  for (int k = -127; k <= 127; ++k) CHECK(ea.codes[static_cast<std::size_t>(k + 127)] == static_cast<std::uint8_t>(k));
  // ternary: codes 00 = 0, 01 = +S, 11 = -S (10 unused: -2S); binary: 0 = +S, 1 = -S
  encoded<tern_auto> t;
  t.shape = {4};
  t.codes = {0b11100100};  // codes 0, 1, 2, 3
  const float S = 0.3f;
  t.headers.resize(4);
  std::memcpy(t.headers.data(), &S, 4);
  CHECK(decode(t) == xt::xarray<float>{0.0f, S, -2 * S, -S});
  encoded<bin_po2> b;
  b.shape = {2};
  b.codes = {0b10};
  b.headers = {0xFE, 0xFF};  // exponent -2
  CHECK(decode(b) == xt::xarray<float>{0.25f, -0.25f});
  b.headers = {0x00, 0x40};  // exponent 16384: no float has it
  CHECK_THROWS_AS((void)decode(b), invalid_argument);
}

TEST_CASE("the laws, given the scale (check_format)") {
  CHECK(testing::check_format<fx4_po2>());
  CHECK(testing::check_format<fx4_po2_t>());
  CHECK(testing::check_format<fx4_auto>());
  CHECK(testing::check_format<scaled<fixed_point<8, 2, true, true>, alpha_auto_po2<-10, 4>>>());
  CHECK(testing::check_format<tern_auto>());
  CHECK(testing::check_format<tern_po2_t>());
  CHECK(testing::check_format<bin_auto>());
  CHECK(testing::check_format<bin_po2>());
  CHECK(testing::check_format<scaled<ternary<>, alpha_const<10.0>>>());
  CHECK(testing::check_format<scaled<ternary<0, 0.5>, alpha_const<0.25>>>());
  CHECK(testing::check_format<scaled<binary<>, alpha_const<2.5>>>());
  CHECK(testing::check_format<scaled<fixed_point<4, 1>, alpha_const<0.5>>>());
}

TEST_CASE("the type-erased quantizer sees the whole tensor") {
  const auto q = quantizer::of<fx4_po2>();
  CHECK(q.whole_tensor());
  CHECK_FALSE(quantizer::of<fx4>().whole_tensor());
  CHECK(q.info().bits == 4);
  CHECK(q.name() == fx4_po2::name());
  std::mt19937 engine(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  xt::xarray<float> x = xt::empty<float>({3, 3, 5, 7});
  for (auto& v : x) v = normal(engine);
  const std::vector<std::size_t> shape(x.shape().begin(), x.shape().end());
  xt::xarray<float> out = xt::empty<float>(x.shape());
  q(std::span<const float>(x.data(), x.size()), std::span<float>(out.data(), out.size()), shape);
  CHECK(out == quantize<fx4_po2>(x));
  // in place
  xt::xarray<float> inplace = x;
  q(std::span<const float>(inplace.data(), inplace.size()), std::span<float>(inplace.data(), inplace.size()), shape);
  CHECK(inplace == out);
  quantize_into<fx4_po2>(std::span<const float>(x.data(), x.size()), std::span<float>(out.data(), out.size()), shape);
  CHECK(out == inplace);
}

TEST_CASE("a dense layer with per-channel auto_po2 weights: the same on 1 and 2 threads") {
  using F = scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>;
  const std::size_t in = 512, units = 256;  // 2^17 weights: large enough to be split over threads
  nn::dense_layer layer(nn::flat(in), units, nn::layer_formats{quantizer::of<F>(), {}, {}});
  std::mt19937_64 engine(11);
  layer.initialize(engine);
  // channels with very different ranges, so that scales per chunk of rows would differ
  auto& w = layer.weights().value;
  for (std::size_t r = 0; r < in; ++r)
    for (std::size_t c = 0; c < units; ++c) w(r, c) *= (r < in / 2 ? 0.25f : 4.0f) * static_cast<float>(1 + c % 5);
  xt::xarray<float> x = xt::empty<float>(std::vector<std::size_t>{4, in});
  std::mt19937 e2(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(e2);

  const int threads = nn::blas_threads();
  nn::set_blas_threads(1);
  const xt::xarray<float> y1 = layer.forward(x, false);
  nn::set_blas_threads(2);
  const xt::xarray<float> y2 = layer.forward(x, false);
  nn::set_blas_threads(threads);
  CHECK(y1 == y2);
  // and both are x * quantize<F>(w): the scales of whole channels (a dense GEMM of 4 rows is not
  // split by thread count; the conv2d case below compares with pre-quantized weights instead)
  const auto wq = quantize<F>(w);
  double worst = 0.0;
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t c = 0; c < units; ++c) {
      double acc = layer.bias().value(c);
      for (std::size_t r = 0; r < in; ++r) acc += static_cast<double>(x(n, r)) * wq(r, c);
      worst = std::max(worst, std::fabs(acc - y1(n, c)) / (1.0 + std::fabs(acc)));
    }
  CHECK(worst < 1e-4);
}

TEST_CASE("a conv2d layer with per-channel auto_po2 weights computes with quantize<F> of the whole kernel") {
  using F = scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>;
  // HWIO kernel [3, 3, 128, 256] (2^18 weights, split over threads if it were not whole)
  nn::conv2d_layer layer(nn::image(4, 4, 128), 256, 3, 1, nn::padding::same, nn::layer_formats{quantizer::of<F>(), {}, {}});
  nn::conv2d_layer ref(nn::image(4, 4, 128), 256, 3, 1, nn::padding::same);
  std::mt19937_64 engine(7);
  layer.initialize(engine);
  auto& w = layer.weights().value;
  for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] *= (i < w.size() / 3 ? 8.0f : 0.5f);  // rows of different ranges
  ref.weights().value = quantize<F>(w);  // one scale per output filter over the whole kernel
  ref.bias().value = layer.bias().value;
  xt::xarray<float> x = xt::empty<float>(std::vector<std::size_t>{2, 4, 4, 128});
  std::mt19937 e2(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(e2);
  const int threads = nn::blas_threads();
  // the weights quantize the same on 1 and 2 threads: each output equals the reference layer's
  // (pre-quantized weights, float32 quantizer) on the same thread count (the convolution's own
  // sums may be ordered by thread count)
  for (int t : {1, 2}) {
    nn::set_blas_threads(t);
    const xt::xarray<float> y = layer.forward(x, false);
    const xt::xarray<float> yr = ref.forward(x, false);
    CHECK(y == yr);
  }
  nn::set_blas_threads(threads);
}
