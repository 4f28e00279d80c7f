// quantizer: the type-erased format used by run-time networks gives the same bits as the type,
// also through its AVX2 loop for scalar formats.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/formats/ternary.hpp"

using namespace qnas;

TEST_CASE("quantizer::of<F> matches quantize<F> and carries F's traits") {
  using F = fixed_point<4, 0>;
  const auto q = quantizer::of<F>();
  CHECK(q.name() == F::name());
  CHECK(q.info() == info_of<F>());
  CHECK(q.info().amortized_bits() == 4.0);
  CHECK(!q.is_identity());
  xt::xarray<float> x = {{0.3f, -0.7f, 1.5f}, {0.01f, -3.0f, 0.4375f}};
  std::vector<float> out(x.size());
  const std::vector<std::size_t> shape = {2, 3};
  q(std::span<const float>(x.data(), x.size()), out, shape);
  const auto ref = quantize<F>(x);
  for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == ref.data()[i]);
  // in place
  std::vector<float> inplace(x.begin(), x.end());
  q(inplace, inplace, shape);
  CHECK(inplace == out);
}

TEST_CASE("default quantizer is float32 identity; misuse throws") {
  const quantizer id;
  CHECK(id.is_identity());
  CHECK(id.info() == float32_info);
  std::vector<float> in = {1.1f, -2.2f}, out(2);
  const std::vector<std::size_t> shape = {2};
  id(in, out, shape);
  CHECK(out == in);
  const std::vector<std::size_t> wrong = {3};
  CHECK_THROWS_AS(id(in, out, wrong), qnas::invalid_argument);
  const auto s = quantizer::of<fixed_point<4, 0, true, false, stochastic>>();
  CHECK(s.needs_engine());
  CHECK_THROWS_WITH(s(in, out, shape), doctest::Contains("needs an engine"));
  quantizer::engine_type e(3);
  s(in, out, shape, last_axis, &e);
  CHECK(out[1] == -1.0f);  // -2.2 saturates at -1
}

namespace {
/// Every float the formats must agree on: random values over many binades, both zeros,
/// subnormals, the largest finite values, infinities and NaN, in a length that leaves a tail
/// after the 8-wide blocks.
std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, 1e-40f, -1e-40f, 1e-45f, 3.4e38f, -3.4e38f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), 0.5f, -0.5f, 0.25f, 1.5f, -2.5f};
  std::mt19937 e(7);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 12);
  for (int i = 0; i < 4000; ++i) v.push_back(std::ldexp(mantissa(e), exponent(e)));
  v.push_back(0.75f);  // 4016 values: 502 blocks of 8
  v.push_back(-0.375f);
  v.push_back(7.0f);   // a tail of 3
  return v;
}

template <number_format F>
void check_type_erased_matches() {
  INFO(F::name());
  const auto x = probe_values();
  std::vector<float> out(x.size());
  const std::vector<std::size_t> shape = {x.size()};
  quantizer::of<F>()(x, out, shape);
  std::vector<float> want(x.size());
  quantize_into<F>(x, want, shape);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    bad += std::memcmp(&out[i], &want[i], sizeof(float)) != 0;  // bit for bit, NaN and -0 included
  CHECK(bad == 0);
  std::vector<float> inplace(x);
  quantizer::of<F>()(inplace, inplace, shape);
  CHECK(std::memcmp(inplace.data(), out.data(), out.size() * sizeof(float)) == 0);
}
}  // namespace

TEST_CASE("the type-erased loop (AVX2 where the CPU has it) gives quantize<F>'s bits for every scalar format") {
  MESSAGE("AVX2 quantize loop on this CPU: ", detail::quantize_avx2_available());
  check_type_erased_matches<fixed_point<8, 1>>();
  check_type_erased_matches<fixed_relu<8, 3>>();
  check_type_erased_matches<fixed_point<4, 0, true, true>>();
  check_type_erased_matches<fixed_point<12, 9>>();
  check_type_erased_matches<fixed_point<6, -4, true, false, nearest_away>>();
  check_type_erased_matches<fixed_point<6, 2, true, false, toward_zero>>();
  check_type_erased_matches<po2<4, 1.0>>();
  check_type_erased_matches<ternary<-2, 0.125>>();
  check_type_erased_matches<binary<-1>>();
  check_type_erased_matches<minifloat<4, 3>>();
  check_type_erased_matches<minifloat<5, 2>>();
  check_type_erased_matches<fp8_e5m2>();
  check_type_erased_matches<fp6_e3m2>();
  check_type_erased_matches<bf16>();
}
