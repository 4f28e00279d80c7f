// SGD and Adam: one- and two-step values computed by hand, weight-decay variants, per-parameter
// state, misuse, and convergence on a quadratic.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <xtensor/xarray.hpp>

// Other headers may open qnas::train::detail or qnas::data::detail before these are included;
// qualified lookups inside the headers must still reach qnas::detail.
namespace qnas::train::detail {}
namespace qnas::data::detail {}

#include "qnas/train/optimizer.hpp"

using namespace qnas;

namespace {
nn::parameter make(std::vector<float> w, std::vector<float> g, bool decay = true) {
  nn::parameter p;
  p.name = "p";
  p.value = xt::zeros<float>({w.size()});
  p.grad = xt::zeros<float>({g.size()});
  std::copy(w.begin(), w.end(), p.value.begin());
  std::copy(g.begin(), g.end(), p.grad.begin());
  p.decay = decay;
  return p;
}
}  // namespace

TEST_CASE("sgd with momentum: two steps by hand") {
  auto p = make({1.0f, -2.0f}, {0.5f, 0.25f});
  std::vector<nn::parameter*> ps{&p};
  train::sgd o({.learning_rate = 0.1f, .momentum = 0.9f});
  o.step(ps);
  // v = g; w = w - 0.1 v
  CHECK(p.value(0) == doctest::Approx(0.95));
  CHECK(p.value(1) == doctest::Approx(-2.025));
  o.step(ps);
  // v = 0.9 * 0.5 + 0.5 = 0.95, 0.9 * 0.25 + 0.25 = 0.475
  CHECK(p.value(0) == doctest::Approx(0.95 - 0.095));
  CHECK(p.value(1) == doctest::Approx(-2.025 - 0.0475));
  CHECK(p.grad(0) == 0.5f);  // gradients are read, not cleared
}

TEST_CASE("sgd: Nesterov, plain, weight decay") {
  SUBCASE("nesterov") {
    auto p = make({1.0f, -2.0f}, {0.5f, 0.25f});
    std::vector<nn::parameter*> ps{&p};
    train::sgd o({.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true});
    o.step(ps);
    // v = g; update = g + 0.9 v = 1.9 g
    CHECK(p.value(0) == doctest::Approx(1.0 - 0.1 * 1.9 * 0.5));
    CHECK(p.value(1) == doctest::Approx(-2.0 - 0.1 * 1.9 * 0.25));
    o.step(ps);
    // v = 0.9 g + g = 1.9 g; update = g + 0.9 * 1.9 g = 2.71 g
    CHECK(p.value(0) == doctest::Approx(1.0 - 0.1 * (1.9 + 2.71) * 0.5));
  }
  SUBCASE("plain SGD with L2 weight decay; biases exempt") {
    auto w = make({1.0f}, {0.5f});
    auto b = make({1.0f}, {0.5f}, false);
    std::vector<nn::parameter*> ps{&w, &b};
    train::sgd o({.learning_rate = 0.1f, .momentum = 0.0f, .weight_decay = 0.01f});
    o.step(ps);
    CHECK(w.value(0) == doctest::Approx(1.0 - 0.1 * (0.5 + 0.01 * 1.0)));  // 0.949
    CHECK(b.value(0) == doctest::Approx(0.95));
  }
  SUBCASE("decay passes through momentum") {
    auto w = make({2.0f}, {0.0f});
    std::vector<nn::parameter*> ps{&w};
    train::sgd o({.learning_rate = 0.5f, .momentum = 0.5f, .weight_decay = 0.1f});
    o.step(ps);  // g = 0.2, v = 0.2, w = 2 - 0.1 = 1.9
    CHECK(w.value(0) == doctest::Approx(1.9));
    o.step(ps);  // g = 0.19, v = 0.1 + 0.19 = 0.29, w = 1.9 - 0.145 = 1.755
    CHECK(w.value(0) == doctest::Approx(1.755));
  }
}

TEST_CASE("adam: two steps by hand (bias-corrected)") {
  auto p = make({1.0f}, {0.5f});
  std::vector<nn::parameter*> ps{&p};
  train::adam o({.learning_rate = 0.01f});
  o.step(ps);
  // m_hat = g, v_hat = g^2: the first step is lr * g / (|g| + eps) = 0.01 (minus 2e-10)
  CHECK(p.value(0) == doctest::Approx(0.99).epsilon(1e-7));
  p.grad(0) = -0.25f;
  o.step(ps);
  // m = 0.9 * 0.05 - 0.025 = 0.02,  v = 0.999 * 2.5e-4 + 1e-3 * 0.0625 = 3.1225e-4
  // m_hat = 0.02 / 0.19, v_hat = 3.1225e-4 / 0.001999; w = 0.99 - 0.01 * m_hat / sqrt(v_hat)
  CHECK(p.value(0) == doctest::Approx(0.9873366299).epsilon(1e-6));
}

TEST_CASE("adam: decoupled (AdamW) versus L2 weight decay") {
  auto a = make({1.0f}, {0.5f});
  auto l2 = make({1.0f}, {0.5f});
  auto bias = make({1.0f}, {0.5f}, false);
  std::vector<nn::parameter*> pa{&a, &bias};
  std::vector<nn::parameter*> pl{&l2};
  train::adam adamw({.learning_rate = 0.01f, .weight_decay = 0.1f, .decoupled = true});
  train::adam adaml2({.learning_rate = 0.01f, .weight_decay = 0.1f, .decoupled = false});
  adamw.step(pa);
  adaml2.step(pl);
  // AdamW: w - lr * sign-step - lr * wd * w = 1 - 0.01 - 0.001
  CHECK(a.value(0) == doctest::Approx(0.989).epsilon(1e-6));
  // L2: g = 0.5 + 0.1 = 0.6, the first Adam step is still lr * sign(g)
  CHECK(l2.value(0) == doctest::Approx(0.99).epsilon(1e-6));
  CHECK(bias.value(0) == doctest::Approx(0.99).epsilon(1e-6));  // decay = false
}

TEST_CASE("optimizer state is per parameter; reset forgets it; misuse is named") {
  static_assert(train::optimizer<train::sgd> && train::optimizer<train::adam>);
  auto p = make({1.0f}, {0.5f});
  auto q = make({1.0f}, {0.5f});
  train::adam o({.learning_rate = 0.01f});
  std::vector<nn::parameter*> only_p{&p};
  std::vector<nn::parameter*> both{&p, &q};
  o.step(only_p);
  o.step(both);  // q's first step: bias correction of step 1, so exactly lr * sign
  CHECK(q.value(0) == doctest::Approx(0.99).epsilon(1e-7));
  CHECK(p.value(0) == doctest::Approx(0.98).epsilon(1e-6));  // constant gradient: m_hat/sqrt(v_hat) = 1
  o.reset();
  o.set_learning_rate(0.1f);
  CHECK(o.learning_rate() == 0.1f);
  o.step(only_p);
  CHECK(p.value(0) == doctest::Approx(0.88).epsilon(1e-6));

  auto bad = make({1.0f, 2.0f}, {0.5f});
  std::vector<nn::parameter*> pb{&bad};
  CHECK_THROWS_WITH_AS(o.step(pb), doctest::Contains("has 2 values but 1 gradient entries"), invalid_argument);
  p.value = xt::zeros<float>({3});
  p.grad = xt::zeros<float>({3});
  CHECK_THROWS_WITH_AS(o.step(only_p), doctest::Contains("changed size from 1 to 3"), invalid_argument);
  CHECK_THROWS_AS(train::sgd({.momentum = 1.0f}), invalid_argument);
  CHECK_THROWS_AS(train::sgd({.momentum = 0.0f, .nesterov = true}), invalid_argument);
  CHECK_THROWS_AS(train::adam({.beta2 = 1.0f}), invalid_argument);
  CHECK_THROWS_AS(train::adam({.epsilon = 0.0f}), invalid_argument);
  CHECK_THROWS_AS(o.set_learning_rate(-1.0f), invalid_argument);
}

TEST_CASE("sgd and adam minimise a quadratic") {
  // f(w) = 0.5 * sum_i c_i (w_i - t_i)^2, gradient c_i (w_i - t_i)
  const std::vector<float> c = {1.0f, 10.0f, 0.5f}, t = {3.0f, -1.0f, 0.25f};
  auto run = [&](auto& opt, int steps) {
    auto p = make({0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f});
    std::vector<nn::parameter*> ps{&p};
    for (int s = 0; s < steps; ++s) {
      for (std::size_t i = 0; i < 3; ++i) p.grad(i) = c[i] * (p.value(i) - t[i]);
      opt.step(ps);
    }
    double err = 0;
    for (std::size_t i = 0; i < 3; ++i) err = std::max(err, static_cast<double>(std::abs(p.value(i) - t[i])));
    return err;
  };
  train::sgd s({.learning_rate = 0.05f, .momentum = 0.9f});
  train::sgd n({.learning_rate = 0.05f, .momentum = 0.9f, .nesterov = true});
  train::adam a({.learning_rate = 0.05f});
  CHECK(run(s, 500) < 1e-3);
  CHECK(run(n, 500) < 1e-3);
  CHECK(run(a, 2000) < 1e-2);
}

TEST_CASE("adam: vectorised body and scalar tail agree with a double-precision reference") {
  // 37 elements: several full SIMD batches plus a tail, whatever the lane count.
  const std::size_t n = 37;
  std::vector<float> w0(n), g0(n);
  for (std::size_t i = 0; i < n; ++i) {
    w0[i] = 0.1f * static_cast<float>(i) - 1.5f;
    g0[i] = 0.03f * static_cast<float>((i * 7) % 11) - 0.15f;
  }
  auto p = make(w0, g0);
  std::vector<nn::parameter*> ps{&p};
  const float lr = 0.01f, wd = 0.05f;
  train::adam o({.learning_rate = lr, .weight_decay = wd, .decoupled = true});
  std::vector<double> w(w0.begin(), w0.end()), m(n, 0.0), v(n, 0.0);
  for (int t = 1; t <= 3; ++t) {
    for (std::size_t i = 0; i < n; ++i) p.grad(i) = g0[i] * static_cast<float>(t);  // vary the gradient
    o.step(ps);
    for (std::size_t i = 0; i < n; ++i) {
      const double g = static_cast<double>(g0[i]) * t;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      w[i] -= lr * mh / (std::sqrt(vh) + 1e-8) + lr * wd * w[i];
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(p.value(i) == doctest::Approx(w[i]).epsilon(1e-5));
  }
}
