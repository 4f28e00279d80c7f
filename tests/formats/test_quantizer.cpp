// quantizer: the type-erased format used by run-time networks gives the same bits as the type.
#include <doctest/doctest.h>

#include <vector>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/quantizer.hpp"

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
