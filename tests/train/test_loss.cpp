// Cross-entropy and distillation: hand-derived values, numerical stability, and gradients
// against central finite differences.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "qnas/data/random.hpp"
#include "qnas/train/loss.hpp"

using namespace qnas;
using train::label_t;

namespace {

xt::xarray<float> random_logits(std::size_t n, std::size_t k, std::uint64_t seed, double scale) {
  random_engine e(seed);
  xt::xarray<float> z = xt::zeros<float>({n, k});
  for (auto& v : z) v = static_cast<float>(detail::uniform(e, -scale, scale));
  return z;
}

// Central differences of a scalar function of the logits, element by element, compared with the
// analytic gradient. h = 1e-2 in float: truncation error O(h^2) ~ 1e-4 for these O(1) curvatures,
// rounding error ~ 1e-7 / h ~ 1e-5; the tolerance, 1e-3 absolute, is far below a factor error.
template <class F>
void check_gradient(xt::xarray<float> z, const xt::xarray<float>& analytic, F&& loss) {
  const float h = 1e-2f;
  for (std::size_t k = 0; k < z.size(); ++k) {
    const float keep = z.data()[k];
    z.data()[k] = keep + h;
    const double up = loss(z);
    z.data()[k] = keep - h;
    const double down = loss(z);
    z.data()[k] = keep;
    const double numeric = (up - down) / (2.0 * h);
    CAPTURE(k);
    CHECK(analytic.data()[k] == doctest::Approx(numeric).epsilon(1e-3).scale(1.0));
  }
}

}  // namespace

TEST_CASE("softmax cross-entropy: hand-derived values") {
  xt::xarray<float> z = {{1.0f, 2.0f, 3.0f}};
  std::vector<label_t> y = {2};
  xt::xarray<float> g;
  // log(e^1 + e^2 + e^3) - 3 = 0.40760596; softmax = (0.09003057, 0.24472847, 0.66524096)
  CHECK(train::softmax_cross_entropy(z, y, g) == doctest::Approx(0.40760596));
  REQUIRE(g.shape() == z.shape());
  CHECK(g(0, 0) == doctest::Approx(0.09003057));
  CHECK(g(0, 1) == doctest::Approx(0.24472847));
  CHECK(g(0, 2) == doctest::Approx(0.66524096 - 1.0));
  // Uniform logits: loss log(K), the mean over the batch.
  xt::xtensor<float, 2> zero = xt::zeros<float>({4, 10});
  std::vector<label_t> y4 = {0, 3, 9, 5};
  xt::xtensor<float, 2> g4;
  CHECK(train::softmax_cross_entropy(zero, y4, g4) == doctest::Approx(std::log(10.0)));
  CHECK(g4(1, 3) == doctest::Approx((0.1 - 1.0) / 4.0));  // divided by N = 4
  CHECK(g4(1, 4) == doctest::Approx(0.1 / 4.0));
  CHECK(train::softmax_cross_entropy(zero, y4) == doctest::Approx(std::log(10.0)));
}

TEST_CASE("softmax cross-entropy: stable for huge logits") {
  xt::xarray<float> z = {{1000.0f, 0.0f, -1000.0f}, {1000.0f, 0.0f, -1000.0f}};
  std::vector<label_t> y = {0, 1};
  xt::xarray<float> g;
  // row 0: log(1 + e^-1000 + e^-2000) ~ 0; row 1: 1000 + ~0. Mean 500.
  const float l = train::softmax_cross_entropy(z, y, g);
  CHECK(std::isfinite(l));
  CHECK(l == doctest::Approx(500.0));
  CHECK(g(0, 0) == doctest::Approx(0.0));
  CHECK(g(1, 0) == doctest::Approx(0.5));
  CHECK(g(1, 1) == doctest::Approx(-0.5));
}

TEST_CASE("softmax cross-entropy: gradient matches finite differences") {
  const auto z = random_logits(5, 7, 1, 3.0);
  const std::vector<label_t> y = {0, 6, 3, 3, 1};
  xt::xarray<float> g;
  (void)train::softmax_cross_entropy(z, y, g);
  check_gradient(z, g, [&](const xt::xarray<float>& x) { return train::softmax_cross_entropy(x, y); });
}

TEST_CASE("softmax cross-entropy: bad input is named") {
  xt::xarray<float> z = xt::zeros<float>({2, 3});
  xt::xarray<float> g;
  std::vector<label_t> bad = {0, 3};
  CHECK_THROWS_WITH_AS(train::softmax_cross_entropy(z, bad, g), doctest::Contains("label 1 is 3, outside [0, 3)"),
                       invalid_argument);
  std::vector<label_t> few = {0};
  CHECK_THROWS_WITH_AS(train::softmax_cross_entropy(z, few, g), doctest::Contains("1 labels for 2 rows"),
                       invalid_argument);
  xt::xarray<float> flat = xt::zeros<float>({6});
  CHECK_THROWS_WITH_AS(train::softmax_cross_entropy(flat, few), doctest::Contains("must be 2-D"), invalid_argument);
}

TEST_CASE("distillation: hand-derived values") {
  xt::xarray<float> s = {{0.0f, 0.0f}};
  xt::xarray<float> t = {{static_cast<float>(std::log(3.0)), 0.0f}};
  xt::xarray<float> g;
  std::vector<label_t> y = {0};
  // T = 1, alpha = 1: KL((0.75, 0.25) || (0.5, 0.5)) = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.1308120
  CHECK(train::distillation_loss(s, t, {}, {.temperature = 1.0f, .alpha = 1.0f}, g) == doctest::Approx(0.1308120));
  CHECK(g(0, 0) == doctest::Approx(0.5 - 0.75));  // alpha * T * (p_s - p_t) / N
  // T = 2: teacher softened to (0.6339746, 0.3660254); T^2 * KL = 0.1453631
  CHECK(train::distillation_loss(s, t, {}, {.temperature = 2.0f, .alpha = 1.0f}, g) == doctest::Approx(0.1453631));
  CHECK(g(0, 0) == doctest::Approx(2.0 * (0.5 - 0.6339746)));
  // alpha = 0.25 mixes in 0.75 * CE(s, y) = 0.75 * ln 2
  CHECK(train::distillation_loss(s, t, y, {.temperature = 2.0f, .alpha = 0.25f}, g) ==
        doctest::Approx(0.25 * 0.1453631 + 0.75 * std::log(2.0)));
  CHECK(g(0, 0) == doctest::Approx(0.25 * 2.0 * (0.5 - 0.6339746) + 0.75 * (0.5 - 1.0)));
  // A student equal to its teacher has no soft loss: only (1 - alpha) * CE remains.
  xt::xarray<float> z = {{0.3f, -1.0f, 2.0f}};
  std::vector<label_t> y2 = {1};
  xt::xarray<float> gce;
  const float ce = train::softmax_cross_entropy(z, y2, gce);
  CHECK(train::distillation_loss(z, z, y2, {.temperature = 3.0f, .alpha = 0.6f}, g) ==
        doctest::Approx(0.4 * ce).epsilon(1e-5));
  for (std::size_t j = 0; j < 3; ++j) CHECK(g(0, j) == doctest::Approx(0.4 * gce(0, j)).epsilon(1e-5));
}

TEST_CASE("distillation: gradient matches finite differences") {
  const auto s = random_logits(4, 6, 2, 4.0);
  const auto t = random_logits(4, 6, 3, 4.0);
  const std::vector<label_t> y = {5, 0, 2, 2};
  for (float temperature : {1.0f, 2.5f, 6.0f}) {
    for (float alpha : {0.0f, 0.5f, 0.9f, 1.0f}) {
      CAPTURE(temperature);
      CAPTURE(alpha);
      const train::distillation_options o{temperature, alpha};
      xt::xarray<float> g;
      (void)train::distillation_loss(s, t, y, o, g);
      check_gradient(s, g, [&](const xt::xarray<float>& x) {
        xt::xarray<float> scratch;
        return train::distillation_loss(x, t, y, o, scratch);
      });
    }
  }
}

TEST_CASE("distillation: bad settings are named") {
  xt::xarray<float> s = xt::zeros<float>({2, 3});
  xt::xarray<float> t3 = xt::zeros<float>({3, 3});
  xt::xarray<float> g;
  std::vector<label_t> y = {0, 1};
  CHECK_THROWS_WITH_AS(train::distillation_loss(s, s, y, {.temperature = 0.0f}, g), doctest::Contains("temperature 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(train::distillation_loss(s, s, y, {.alpha = 1.5f}, g), doctest::Contains("alpha 1.5"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(train::distillation_loss(s, t3, y, {}, g), doctest::Contains("teacher logits are [3, 3]"),
                       invalid_argument);
  CHECK_THROWS_AS(train::distillation_loss(s, s, {}, {.alpha = 0.5f}, g), invalid_argument);  // labels needed
}
