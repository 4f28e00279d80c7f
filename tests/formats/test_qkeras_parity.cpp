// The rows of docs/formats.md "QKeras parity" that name a qnas type: a few values per row,
// each derived by hand from QKeras's definitions (qkeras/quantizers.py, google/qkeras; the
// derivation is in the comment next to it), so the table is backed by tests. m, m_i, p are
// QKeras's names; round is tf.round (half to even) unless said otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>

#include "qnas/formats.hpp"

using namespace qnas;

namespace {
template <class F>
float q(float x) {
  return quantize_value<F>(x);
}
}  // namespace

TEST_CASE("quantized_bits(bits, integer, symmetric, keep_negative), alpha=None: fixed_point") {
  // quantized_bits(4, 0): m = 2^(4-1) = 8, m_i = 1, p = x * 8, xq = clip(round(p), -8, 7) / 8
  using F = fixed_point<4, 0>;
  CHECK(q<F>(0.3f) == 0.25f);      // p = 2.4 -> 2
  CHECK(q<F>(0.3125f) == 0.25f);   // p = 2.5 -> 2 (even)
  CHECK(q<F>(0.4375f) == 0.5f);    // p = 3.5 -> 4 (even)
  CHECK(q<F>(2.0f) == 0.875f);     // p = 16 -> 7
  CHECK(q<F>(-2.0f) == -1.0f);     // p = -16 -> -8
  CHECK(q<F>(-0.0625f) == 0.0f);   // p = -0.5 -> -0
  // symmetric=1: clip(round(p), -8 + 1, 7)
  CHECK(q<fixed_point<4, 0, true, true>>(-2.0f) == -0.875f);
  // quantized_bits(4, 2): m = 8, m_i = 4, p = x * 8 / 4, xq = 4 * clip(round(p), -8, 7) / 8
  using G = fixed_point<4, 2>;
  CHECK(q<G>(1.25f) == 1.0f);      // p = 2.5 -> 2 -> 4 * 2 / 8
  CHECK(q<G>(10.0f) == 3.5f);      // p = 20 -> 7 -> 3.5
  CHECK(q<G>(-10.0f) == -4.0f);    // p = -20 -> -8 -> -4
  // keep_negative=False: m = 2^4 = 16, clip(round(16 x), 0, 15) / 16
  using R = fixed_relu<4, 0>;
  CHECK(q<R>(0.3f) == 0.3125f);    // 4.8 -> 5
  CHECK(q<R>(-0.3f) == 0.0f);
  CHECK(q<R>(1.0f) == 0.9375f);    // 16 -> 15
  // quantized_bits(32, 0): m = 2^31, clip bound m - 1 rounds to 2^31 in float32, so 2.0 -> 1.0
  CHECK(q<fixed_point<32, 0>>(2.0f) == 1.0f);
  CHECK(q<fixed_point<32, 0>>(-2.0f) == -1.0f);
}

TEST_CASE("quantized_bits(1, integer), keep_negative: binary<0> (integer is not used)") {
  // unsigned_bits = 0: xq = sign(x), then xq += 1 - |xq| (sign(0) := +1); scale 1
  CHECK(q<binary<0>>(0.3f) == 1.0f);
  CHECK(q<binary<0>>(0.0f) == 1.0f);
  CHECK(q<binary<0>>(-0.0f) == 1.0f);
  CHECK(q<binary<0>>(-0.01f) == -1.0f);
  CHECK(q<binary<0>>(-100.0f) == -1.0f);  // quantized_bits(1, 3) gives the same: m_i is unused
}

TEST_CASE("quantized_linear(bits, integer, symmetric=1, keep_negative), alpha=None: fixed_point") {
  // quantization_scale = 2^(integer - bits + keep_negative); x / scale is clipped to
  // [keep_negative * (-m + symmetric), m - 1], m = 2^(bits - keep_negative), then rounded:
  // clip-then-round equals round-then-clip because the bounds are integers.
  // quantized_linear(4, 0): scale 1/8, clip [-7, 7] (symmetric defaults to 1 here)
  using F = fixed_point<4, 0, true, true>;
  CHECK(q<F>(-2.0f) == -0.875f);
  CHECK(q<F>(0.3f) == 0.25f);       // 2.4 -> 2
  CHECK(q<F>(0.3125f) == 0.25f);    // 2.5 -> 2 (even)
  // quantized_linear(3, 1, symmetric=0, keep_negative=False): scale 2^(1-3) = 1/4, clip [0, 7]
  using R = fixed_relu<3, 1>;
  CHECK(q<R>(0.6f) == 0.5f);        // 2.4 -> 2
  CHECK(q<R>(5.0f) == 1.75f);       // 20 -> 7
  CHECK(q<R>(-1.0f) == 0.0f);
}

TEST_CASE("quantized_linear(1, integer): binary<integer - 1> except tiny negatives") {
  // use_sign_function: scale 2^integer, clip x / scale to [-0.5, 0.5], round(v - 0.5) + 0.5.
  // quantized_linear(1, 0): v = 0.3 -> round(-0.2) = -0 -> 0.5; v = -0.3 -> round(-0.8) = -1 -> -0.5
  CHECK(q<binary<-1>>(0.3f) == 0.5f);
  CHECK(q<binary<-1>>(-0.3f) == -0.5f);
  CHECK(q<binary<-1>>(0.0f) == 0.5f);  // round(-0.5) = -0 (even) -> 0.5
  // the deviation the table names: v = -2^-30 gives v - 0.5 = -0.5 in float32, which tf.round
  // sends to -0, so QKeras returns +0.5; binary<-1> returns -0.5 for every x < 0
  CHECK(q<binary<-1>>(-0x1p-30f) == -0.5f);
}

TEST_CASE("quantized_bits with a constant alpha: scaled<fixed_point, alpha_const>") {
  // quantize on the alpha = 1 grid, then multiply by alpha: quantized_bits(4, 0, alpha=0.5)
  using F = scaled<fixed_point<4, 0>, alpha_const<0.5>>;
  xt::xarray<float> x = {0.3f, 2.0f, -2.0f};
  const auto y = quantize<F>(x);
  CHECK(y(0) == 0.125f);   // 0.25 * 0.5
  CHECK(y(1) == 0.4375f);  // 0.875 * 0.5
  CHECK(y(2) == -0.5f);    // -1 * 0.5
}

TEST_CASE("quantized_bits(4, 0, alpha='auto_po2'), one channel: scaled<..., alpha_auto_po2<>>") {
  // levels = 2 * (2^3 - 1) = 14, hi = 7. s = max|x| * 2 / 14 = 2/14; po2: round(log2(0.1428...))
  // = round(-2.81) = -3, s = 1/8. Unroll: z = sign(x) min(floor(|x| / s + 0.5), 7)
  // = [7 (8 clipped), 4, -2, 1 (0.8 + 0.5 floors to 1)]; mean(x z) = (7 + 2 + 0.5 + 0.1) / 4 = 2.4,
  // mean(z z) = (49 + 16 + 4 + 1) / 4 = 17.5, s = po2(2.4 / 17.5 = 0.137) = 2^-3: unchanged.
  // Output 2^0 * s * z.
  using F = scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>;
  xt::xarray<float> x = {1.0f, 0.5f, -0.25f, 0.1f};
  x.reshape({4, 1});  // one output channel (the last axis), four elements
  const auto y = quantize<F>(x);
  CHECK(y(0, 0) == 0.875f);
  CHECK(y(1, 0) == 0.5f);
  CHECK(y(2, 0) == -0.25f);
  CHECK(y(3, 0) == 0.125f);
}

TEST_CASE("quantized_relu(bits, integer): fixed_relu") {
  // quantized_relu(4, 0): m = 2^4, m_i = 1, p = 16 x, xq = clip(round(p) / 16, 0, 1 - 1/16)
  using R = fixed_relu<4, 0>;
  CHECK(q<R>(0.3f) == 0.3125f);    // 4.8 -> 5
  CHECK(q<R>(1.0f) == 0.9375f);    // 16 -> clip 15/16
  CHECK(q<R>(-1.0f) == 0.0f);
  CHECK(q<R>(0.03125f) == 0.0f);   // 0.5 -> 0 (even)
  CHECK(q<R>(0.09375f) == 0.125f); // 1.5 -> 2 (even)
  // quantized_relu(4, 2): m_i = 4, p = 16 x / 4, xq = 4 * clip(round(p) / 16, 0, 15/16)
  using S = fixed_relu<4, 2>;
  CHECK(q<S>(1.125f) == 1.0f);     // p = 4.5 -> 4 -> 4 * 4/16
  CHECK(q<S>(10.0f) == 3.75f);     // clipped: 4 * 15/16
  CHECK(q<S>(std::numeric_limits<float>::infinity()) == 3.75f);
}

TEST_CASE("ternary(alpha=None or a power of two, threshold): ternary<ScaleExp, Threshold>") {
  // q = [|x| >= threshold] * sign(x), times alpha (None: 1); default threshold 0.33
  CHECK(q<ternary<>>(0.33f) == 1.0f);   // float32(0.33) >= float32(0.33)
  CHECK(q<ternary<>>(0.3f) == 0.0f);
  CHECK(q<ternary<>>(-0.5f) == -1.0f);
  using T = ternary<0, 0.5>;            // ternary(threshold=0.5)
  CHECK(q<T>(0.5f) == 1.0f);
  CHECK(q<T>(0.49f) == 0.0f);
  CHECK(q<T>(-0.7f) == -1.0f);
  using U = ternary<1, 0.5>;            // ternary(alpha=2.0, threshold=0.5): 2 * q
  CHECK(q<U>(0.6f) == 2.0f);
  CHECK(q<U>(-0.6f) == -2.0f);
  CHECK(q<U>(0.4f) == 0.0f);
  // ternary(alpha=10): 10 * q with the threshold 0.33 in input units (it does not scale)
  using V = scaled<ternary<>, alpha_const<10.0>>;
  xt::xarray<float> x = {0.4f, 0.2f, -1.0f};
  const auto y = quantize<V>(x);
  CHECK(y(0) == 10.0f);
  CHECK(y(1) == 0.0f);
  CHECK(y(2) == -10.0f);
}

TEST_CASE("binary(use_01, alpha): binary, binary_use01, scaled<binary<>, alpha_const>") {
  // k = sign(x); k += 1 - |k| (0 and -0 give +1); use_01: (k + 1) / 2; times alpha
  CHECK(q<binary<0>>(-1e-30f) == -1.0f);
  CHECK(q<binary<2>>(-3.0f) == -4.0f);       // binary(alpha=4)
  CHECK(q<binary<2>>(0.0f) == 4.0f);
  CHECK(q<binary_use01<0>>(0.0f) == 1.0f);   // binary(use_01=True): 0 -> (1 + 1) / 2
  CHECK(q<binary_use01<0>>(-0.0f) == 1.0f);
  CHECK(q<binary_use01<0>>(-0.1f) == 0.0f);  // (-1 + 1) / 2
  CHECK(q<binary_use01<0>>(5.0f) == 1.0f);
  using B = scaled<binary<>, alpha_const<2.5>>;  // binary(alpha=2.5)
  xt::xarray<float> x = {0.1f, -0.1f, 0.0f};
  const auto y = quantize<B>(x);
  CHECK(y(0) == 2.5f);
  CHECK(y(1) == -2.5f);
  CHECK(y(2) == 2.5f);
}

TEST_CASE("quantized_po2(bits, max_value, log2_rounding, quadratic_approximation): po2") {
  // quantized_po2(4): non_sign_bits 3, exponent sign bit (max_value None): 2 bits,
  // min_exp = -4, max_exp = 3; exponent = clip(round(log2|x|), -4, 3); |x| < 1e-7 -> min_exp
  using P = po2<4>;
  CHECK(q<P>(0.3f) == 0.25f);     // log2 0.3 = -1.74 -> -2
  CHECK(q<P>(10.0f) == 8.0f);     // 3.32 -> 3
  CHECK(q<P>(-0.75f) == -1.0f);   // -0.415 -> 0
  CHECK(q<P>(0.0f) == 0.0625f);   // 2^-4, sign(0) := +1
  CHECK(q<P>(1e9f) == 8.0f);      // clipped to max_exp
  // max_value=6: x clipped to 6 first, round(log2 6 = 2.58) = 3 -> 8
  CHECK(q<po2<4, 6.0>>(10.0f) == 8.0f);
  // log2_rounding="floor": floor(log2 0.75) = -1
  CHECK(q<po2<4, no_max_value, toward_zero>>(0.75f) == 0.5f);
  CHECK(q<po2<4, no_max_value, toward_zero>>(10.0f) == 8.0f);
  // quantize_po2(5, quadratic_approximation=True): effect bits 3, min_exp -8, max_exp 7 -> 6
  // (2 * (7 // 2)); exponent 2 * clip(round(log2 sqrt|x|), -8, 6); |x| < 1e-7 -> min_exp (not doubled)
  using Q = po2_quadratic<5>;
  CHECK(q<Q>(0.3f) == 0.25f);     // log2 sqrt 0.3 = -0.87 -> -1 -> 2^-2
  CHECK(q<Q>(3.0f) == 4.0f);      // 0.79 -> 1 -> 2^2
  CHECK(q<Q>(0.1f) == 0.0625f);   // -1.66 -> -2 -> 2^-4
  CHECK(q<Q>(1e9f) == 4096.0f);   // 14.9 -> clip 6 -> 2^12
  CHECK(q<Q>(0.0f) == 0x1p-8f);   // 2^min_exp
}

TEST_CASE("quantized_relu_po2(bits, max_value, negative_slope): relu_po2") {
  // quantized_relu_po2(4): exponent sign bit, min_exp = -2^3 = -8, max_exp = 7
  using P = relu_po2<4>;
  CHECK(q<P>(-1.0f) == 0x1p-8f);  // relu -> 0 < 1e-7 -> 2^min_exp
  CHECK(q<P>(3.0f) == 4.0f);      // log2 3 = 1.58 -> 2
  CHECK(q<P>(1000.0f) == 128.0f); // 9.97 -> clip 7
  // negative_slope=0.25: x < 0 gives -2^e with e from relu(-x) * 0.25
  using N = relu_po2<4, no_max_value, log2_nearest, 0.25>;
  CHECK(q<N>(-1.0f) == -0.25f);   // 0.25 -> -2
  CHECK(q<N>(-8.0f) == -2.0f);    // 2 -> 1
  CHECK(q<N>(3.0f) == 4.0f);
}

TEST_CASE("use_stochastic_rounding on quantized_bits / quantized_relu: the same distribution") {
  // stochastic_round(p, precision=1): floor(p) if frac(p) < u else ceil(p), u ~ U[0, 1):
  // P(ceil) = frac(p). quantized_bits(4, 0, use_stochastic_rounding=1) at x = 0.3:
  // p = 2.4, so 0.375 with probability 0.4 and 0.25 otherwise (TF's draws are not qnas's).
  using F = fixed_point<4, 0, true, false, stochastic>;
  xt::xarray<float> x = xt::ones<float>({40000}) * 0.3f;
  std::mt19937 eng(3);
  const auto y = quantize<F>(x, last_axis, eng);
  double ups = 0;
  for (float v : y) {
    REQUIRE((v == 0.25f || v == 0.375f));
    ups += v == 0.375f;
  }
  CHECK(ups / static_cast<double>(y.size()) == doctest::Approx(0.4).epsilon(0.04));
}

TEST_CASE("quantized_bits(4, 0, alpha='auto'), one channel: scaled<..., alpha_auto>") {
  // s = max|x| * 2 / levels = 1.4 * 2 / 14 (float32), z = sign(x) min(floor(|x| / s + 0.5), 7):
  // |x| / s = [7, 2.75, 1.65, 0.65] -> [7, 3, 2, 1] (no ties); output m_i * z / m * (s * m) = s * z
  using F = scaled<fixed_point<4, 0, true, true>, alpha_auto>;
  xt::xarray<float> x = {1.4f, 0.55f, -0.33f, 0.13f};
  x.reshape({4, 1});
  const auto y = quantize<F>(x);
  const float s = 1.4f * 2.0f / 14.0f;
  CHECK(y(0, 0) == s * 7.0f);
  CHECK(y(1, 0) == s * 3.0f);
  CHECK(y(2, 0) == s * -2.0f);
  CHECK(y(3, 0) == s * 1.0f);
}

TEST_CASE("binary(alpha='auto_po2', min_po2_exponent, max_po2_exponent): alpha_auto_po2<a, b>") {
  // k = sign(x); s = mean(x k) / (mean(k k) + 1e-7) = 4 / (1 + 1e-7); po2: round(log2 s) = 2,
  // clipped to max_po2_exponent = 0: s = 1. Output s * k.
  using F = scaled<binary<>, alpha_auto_po2<-1, 0>>;
  xt::xarray<float> x = {4.0f, -4.0f, 4.0f, -4.0f};
  x.reshape({4, 1});
  const auto y = quantize<F>(x);
  CHECK(y(0, 0) == 1.0f);
  CHECK(y(1, 0) == -1.0f);
  // unclipped (alpha_auto_po2<>): 2^2
  const auto z = quantize<scaled<binary<>, alpha_auto_po2<>>>(x);
  CHECK(z(0, 0) == 4.0f);
}

TEST_CASE("quantized_linear(4, 0, alpha=2): fixed_point<4, 1, true, true>") {
  // quantization_scale = 2 * 2^(0 - 4 + 1) = 1/4; clip x / (1/4) to [-7, 7], round
  using F = fixed_point<4, 1, true, true>;
  CHECK(q<F>(0.3f) == 0.25f);   // 1.2 -> 1
  CHECK(q<F>(3.0f) == 1.75f);   // 12 -> 7
  CHECK(q<F>(-3.0f) == -1.75f); // -12 -> -7 (symmetric)
  CHECK(q<F>(0.375f) == 0.5f);  // 1.5 -> 2 (even)
}
