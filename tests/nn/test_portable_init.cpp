// Initial weights are the same for a seed with any standard library: golden values computed by
// an independent implementation of the documented algorithm (mt19937_64, 53-bit uniforms,
// Box-Muller pairs), not by std::normal_distribution, whose algorithm libstdc++ and libc++ differ on.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <random>

#include <xtensor/xarray.hpp>

#include "qnas/nn/dense.hpp"
#include "qnas/train/init.hpp"

namespace {
// He-normal, fan_in 4 (sd = sqrt(1/2)), seed 42: the first 12 draws, row-major [4, 3].
// Computed with a Python transcription of mt19937_64 and random.hpp's standard_normal_pair.
constexpr std::array<float, 12> golden = {-0.761677444f, -0.909384191f, 0.773942411f, 0.892146468f,
                                          1.26906693f,   0.851639688f,  -0.644969881f, 0.66232121f,
                                          -0.436502934f, 0.359856993f,  -0.110388801f, -0.0165647157f};
}  // namespace

TEST_CASE("a dense layer's He-normal weights for seed 42 equal the portable algorithm's golden values") {
  qnas::nn::dense_layer d(qnas::nn::flat(4), 3);
  std::mt19937_64 e(42);
  d.initialize(e);
  const auto& w = d.weights().value;
  REQUIRE(w.size() == golden.size());
  // log/cos/sin may differ in the last double bit between math libraries; after rounding to
  // float that is at most one float ulp, far below what another normal algorithm would change.
  for (std::size_t i = 0; i < golden.size(); ++i) {
    CAPTURE(i);
    CHECK(w.data()[i] == doctest::Approx(golden[i]).epsilon(1e-6));
  }
  for (float b : d.bias().value) CHECK(b == 0.0f);
}

TEST_CASE("train::initialize he_normal draws the same values as a layer's own initialisation") {
  xt::xarray<float> w = xt::zeros<float>({4, 3});
  std::mt19937_64 e(42);
  qnas::train::initialize(w, qnas::train::init_scheme::he_normal, e);
  for (std::size_t i = 0; i < golden.size(); ++i) {
    CAPTURE(i);
    CHECK(w.data()[i] == doctest::Approx(golden[i]).epsilon(1e-6));
  }
}
