// lsq<Unit, Axis>: learned step sizes (LSQ) against hand-derived values, and the quantizer's
// learned-step interface.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "qnas/formats.hpp"
#include "qnas/testing/check_format.hpp"

using namespace qnas;

namespace {
using s4 = lsq<fixed_point<4, 0>, per_tensor>;               // Qn = 8, Qp = 7
using s4c = lsq<fixed_point<4, 0>>;                          // per channel
using s4sym = lsq<fixed_point<4, 0, true, true>, per_tensor>;  // Qn = Qp = 7
using u2 = lsq<fixed_point<2, 0, false>, per_tensor>;        // Qn = 0, Qp = 3
constexpr float inf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_CASE("lsq: concept, grid bounds and static description") {
  static_assert(learned_scale_format<s4> && tensor_scaled_format<s4> && number_format<s4>);
  static_assert(!learned_scale_format<scaled<fixed_point<4, 0, true, true>, alpha_auto>>);
  static_assert(s4::qn == 8 && s4::qp == 7 && s4::bits == 4);
  static_assert(s4sym::qn == 7 && s4sym::qp == 7);
  static_assert(u2::qn == 0 && u2::qp == 3 && u2::min_value == 0.0);
  static_assert(lsq<fixed_point<8, 3>>::qn == 128 && lsq<fixed_point<8, 3>>::qp == 127);
  static_assert(s4c::per_channel_scales && !s4::per_channel_scales && s4::header_bits == 32);
  CHECK(s4::name() == "lsq<fixed_point<4,0>,per_tensor>");
  CHECK(s4c::step_count(6) == 6);
  CHECK(s4::step_count(6) == 1);
}

TEST_CASE("lsq: quantize with a given step (ties to even, clipping at -Qn and Qp)") {
  // step 0.25: t = v / s exactly; 1.125 -> 1, -1.25 -> -1, 1.5 -> 2 (tie, even), 2.5 -> 2 (tie,
  // even), 20 -> Qp = 7, -20 -> -Qn = -8, +inf -> 7, -inf -> -8, -0.0625 -> -0 -> +0
  const std::vector<float> x = {0.28125f, -0.3125f, 0.375f, 0.625f, 5.0f, -5.0f, inf, -inf, -0.0625f};
  const std::vector<float> want = {0.25f, -0.25f, 0.5f, 0.5f, 1.75f, -2.0f, 1.75f, -2.0f, 0.0f};
  std::vector<float> out(x.size());
  const float step = 0.25f;
  s4::quantize_rows_with(x.data(), out.data(), &step, x.size(), 1);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(out[i] == want[i]);
    CHECK(!std::signbit(out[i] == 0.0f ? out[i] : 1.0f));
  }
  // symmetric grid: -5 -> -7 steps; unsigned: negatives -> 0, 20 steps -> 3
  s4sym::quantize_rows_with(x.data(), out.data(), &step, x.size(), 1);
  CHECK(out[5] == -1.75f);
  u2::quantize_rows_with(x.data(), out.data(), &step, x.size(), 1);
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 0.5f);
  CHECK(out[4] == 0.75f);
  // NaN stays NaN
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float q = 0.0f;
  s4::quantize_rows_with(&nan, &q, &step, 1, 1);
  CHECK(std::isnan(q));
}

TEST_CASE("lsq: the paper's initial step 2 mean|v| / sqrt(Qp), per tensor and per channel") {
  // per tensor: mean |v| = (0.25 + 0.5 + 1 + 0.125) / 4 = 0.46875
  const std::vector<float> x = {0.25f, -0.5f, 1.0f, 0.125f};
  float s = 0.0f;
  s4::init_steps(x.data(), &s, x.size(), 1);
  CHECK(s == static_cast<float>(2.0 * 0.46875 / std::sqrt(7.0)));
  // per channel over a [2, 3] tensor: columns {0.25, 1}, {-0.5, 0}, {0, 0} -> means 0.625, 0.25, 0
  const std::vector<float> y = {0.25f, -0.5f, 0.0f, 1.0f, 0.0f, 0.0f};
  float sc[3] = {};
  s4c::init_steps(y.data(), sc, 2, 3);
  CHECK(sc[0] == static_cast<float>(2.0 * 0.625 / std::sqrt(7.0)));
  CHECK(sc[1] == static_cast<float>(2.0 * 0.25 / std::sqrt(7.0)));
  CHECK(sc[2] == 1.0f);  // an all-zero group starts at 1
  // non-finite values are left out of the mean; no finite value at all: 1
  const std::vector<float> z = {inf, 0.5f, std::numeric_limits<float>::quiet_NaN()};
  s4::init_steps(z.data(), &s, z.size(), 1);
  CHECK(s == static_cast<float>(2.0 * 0.5 / std::sqrt(7.0)));
  const std::vector<float> w = {inf, -inf};
  s4::init_steps(w.data(), &s, w.size(), 1);
  CHECK(s == 1.0f);
  // quantize<F> without steps uses the initial step of the tensor
  xt::xarray<float> t = {0.25f, -0.5f, 1.0f, 0.125f};
  const auto qt = quantize<s4>(t);
  const float s0 = static_cast<float>(2.0 * 0.46875 / std::sqrt(7.0));
  for (std::size_t i = 0; i < 4; ++i) CHECK(qt(i) == std::nearbyint(x[i] / s0) * s0 + 0.0f);
}

TEST_CASE("lsq: the paper's gradients, by hand") {
  // step 0.25, one group of N = 6 values, Qp = 7: g = 1 / sqrt(42).
  // t = 1.125 (inside: round - t = -0.125), -1.25 (+0.25), 1.5 (+0.5), 2.5 (-0.5),
  //     20 (>= Qp: +7), -20 (<= -Qn: -8); dout = 1, 2, 1, 1, 1, 0.5
  const std::vector<float> x = {0.28125f, -0.3125f, 0.375f, 0.625f, 5.0f, -5.0f};
  const std::vector<float> dout = {1.0f, 2.0f, 1.0f, 1.0f, 1.0f, 0.5f};
  std::vector<float> din(6, 10.0f);  // accumulates
  float ds = 1.0f;
  const float step = 0.25f;
  s4::backward_rows(x.data(), dout.data(), &step, din.data(), &ds, 6, 1);
  const double sum = -0.125 * 1 + 0.25 * 2 + 0.5 * 1 - 0.5 * 1 + 7.0 * 1 - 8.0 * 0.5;
  CHECK(ds == doctest::Approx(1.0 + sum / std::sqrt(42.0)).epsilon(1e-7));
  const std::vector<float> want_din = {11.0f, 12.0f, 11.0f, 11.0f, 10.0f, 10.0f};
  for (std::size_t i = 0; i < 6; ++i) CHECK(din[i] == want_din[i]);
  // at the boundaries: t == Qp and t == -Qn are outside (the paper's <= and >=)
  const std::vector<float> edge = {1.75f, -2.0f};
  const std::vector<float> ones = {1.0f, 1.0f};
  std::vector<float> din2(2, 0.0f);
  float ds2 = 0.0f;
  s4::backward_rows(edge.data(), ones.data(), &step, din2.data(), &ds2, 2, 1);
  CHECK(din2[0] == 0.0f);
  CHECK(din2[1] == 0.0f);
  CHECK(ds2 == doctest::Approx((7.0 - 8.0) / std::sqrt(2.0 * 7.0)).epsilon(1e-7));
  // per channel: N = rows per channel; [2, 2] tensor with steps 0.25 and 0.5
  const std::vector<float> y = {0.28125f, 5.0f, -0.3125f, 0.25f};  // channel 0: 1.125, -1.25; channel 1: 10, 0.5
  const std::vector<float> dy = {1.0f, 1.0f, 1.0f, 1.0f};
  const float steps[2] = {0.25f, 0.5f};
  std::vector<float> diny(4, 0.0f);
  float dsy[2] = {0.0f, 0.0f};
  s4c::backward_rows(y.data(), dy.data(), steps, diny.data(), dsy, 2, 2);
  CHECK(dsy[0] == doctest::Approx((-0.125 + 0.25) / std::sqrt(2.0 * 7.0)).epsilon(1e-7));
  CHECK(dsy[1] == doctest::Approx((7.0 + (0.0 - 0.5)) / std::sqrt(2.0 * 7.0)).epsilon(1e-7));
  CHECK(diny[1] == 0.0f);
  CHECK(diny[3] == 1.0f);
}

TEST_CASE("lsq: codes, headers and decode") {
  const std::vector<float> x = {0.28125f, -0.3125f, 5.0f, -5.0f};
  const float step = 0.25f;
  std::vector<std::uint32_t> codes(4);
  s4::encode_rows_with(x.data(), codes.data(), &step, 4, 1);
  CHECK(codes == std::vector<std::uint32_t>{1u, 15u, 7u, 8u});  // 4-bit two's complement
  const std::uint32_t head = detail::to_bits(step);
  std::vector<float> back(4);
  s4::decode_rows(codes.data(), &head, back.data(), 4, 1);
  CHECK(back == std::vector<float>{0.25f, -0.25f, 1.75f, -2.0f});
  // a damaged header (step <= 0, NaN, Inf) is refused
  for (float bad : {0.0f, -0.25f, inf, std::numeric_limits<float>::quiet_NaN()}) {
    const std::uint32_t h = detail::to_bits(bad);
    CHECK_THROWS_AS(s4::decode_rows(codes.data(), &h, back.data(), 4, 1), invalid_argument);
  }
  // encode<F> stores one float32 step per group; decode gives quantize<F> bit for bit
  xt::xarray<float> t = {{0.3f, -1.0f, 0.0f}, {0.7f, 2.0f, 0.0f}};
  const auto e = encode<s4c>(t);
  CHECK(e.headers.size() == 3 * 4);
  const auto d = decode(e);
  const auto q = quantize<s4c>(t);
  for (std::size_t i = 0; i < t.size(); ++i) CHECK(detail::to_bits(d.data()[i]) == detail::to_bits(q.data()[i]));
}

TEST_CASE("lsq: conformance (check_format)") {
  CHECK(testing::check_format<s4>());
  CHECK(testing::check_format<s4c>());
  CHECK(testing::check_format<s4sym>());
  CHECK(testing::check_format<u2>());
  CHECK(testing::check_format<lsq<fixed_point<8, 0>>>());
  CHECK(testing::check_format<lsq<fixed_point<2, 0>>>());
}

TEST_CASE("lsq: the quantizer's learned-step interface") {
  const quantizer q = quantizer::of<s4c>();
  CHECK(q.learned());
  CHECK(q.whole_tensor());
  CHECK(!quantizer::of<fixed_point<4, 0>>().learned());
  const std::vector<std::size_t> shape = {3, 3, 4, 6};  // HWIO: 6 output channels
  CHECK(q.step_count(shape) == 6);
  CHECK(quantizer::of<s4>().step_count(shape) == 1);
  std::vector<float> w(3 * 3 * 4 * 6);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 0.3f;
  std::vector<float> steps(6), out(w.size()), want(w.size());
  q.init_steps(w, shape, steps);
  std::vector<float> ref(6);
  s4c::init_steps(w.data(), ref.data(), 36, 6);
  CHECK(steps == ref);
  q.quantize_with_steps(w, out, shape, steps);
  s4c::quantize_rows_with(w.data(), want.data(), ref.data(), 36, 6);
  CHECK(out == want);
  std::vector<std::uint32_t> want_codes(w.size());
  s4c::encode_rows_with(w.data(), want_codes.data(), ref.data(), 36, 6);
  CHECK(q.codes_with_steps(w, shape, steps) == want_codes);
  // misuse: wrong step count, a step <= 0 or NaN, a format without learned steps
  std::vector<float> two(2, 0.1f);
  CHECK_THROWS_WITH_AS(q.quantize_with_steps(w, out, shape, two), doctest::Contains("2 steps given, the tensor has 6"),
                       invalid_argument);
  steps[3] = 0.0f;
  CHECK_THROWS_WITH_AS(q.quantize_with_steps(w, out, shape, steps), doctest::Contains("step 3 is 0"), invalid_argument);
  CHECK_THROWS_WITH_AS(static_cast<void>(q.codes_with_steps(w, shape, steps)),
                       doctest::Contains("qnas::quantizer::codes_with_steps: lsq<"), invalid_argument);
  steps[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(q.quantize_with_steps(w, out, shape, steps), invalid_argument);
  CHECK_THROWS_AS(static_cast<void>(q.codes_with_steps(w, shape, steps)), invalid_argument);
  const quantizer fixed = quantizer::of<fixed_point<4, 0>>();
  CHECK_THROWS_WITH_AS(static_cast<void>(fixed.step_count(shape)), doctest::Contains("has no learned steps"), invalid_argument);
  const std::vector<std::size_t> wrong = {3, 3, 4, 5};
  CHECK_THROWS_AS(q.init_steps(w, wrong, steps), invalid_argument);
}
