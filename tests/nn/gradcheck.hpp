// Finite-difference gradient check for run-time layers (shared by the nn tests).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qnas/nn/layer.hpp"

namespace qnas::nn::testing {

inline xt::xarray<float> random_batch(std::vector<std::size_t> shape, std::mt19937_64& e, float lo = -1.0f,
                                      float hi = 1.0f) {
  xt::xarray<float> x = xt::zeros<float>(shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& v : x) v = d(e);
  return x;
}

/// L(x, params) = sum(forward(x) * r) accumulated in double; r is a fixed random tensor.
inline double probe_loss(layer& l, const xt::xarray<float>& x, const xt::xarray<float>& r, bool training) {
  const auto& y = l.forward(x, training);
  double s = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y.data()[i]) * r.data()[i];
  return s;
}

/// Compares backward's input and parameter gradients with central differences
/// (L(v + eps) - L(v - eps)) / (2 eps) for every element. Tolerance |a - n| <= atol + rtol |n|.
inline void check_gradients(layer& l, xt::xarray<float> x, std::mt19937_64& e, bool training = true,
                            float eps = 5e-3f, double atol = 2e-3, double rtol = 2e-2) {
  const auto& y0 = l.forward(x, training);
  xt::xarray<float> r = random_batch(std::vector<std::size_t>(y0.shape().begin(), y0.shape().end()), e);
  for (parameter* p : l.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  probe_loss(l, x, r, training);
  const xt::xarray<float> dx = l.backward(r, true);
  REQUIRE(dx.shape() == x.shape());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float keep = x.data()[i];
    x.data()[i] = keep + eps;
    const double up = probe_loss(l, x, r, training);
    x.data()[i] = keep - eps;
    const double down = probe_loss(l, x, r, training);
    x.data()[i] = keep;
    const double num = (up - down) / (2.0 * eps);
    if (std::abs(dx.data()[i] - num) > atol + rtol * std::abs(num)) {
      if (bad++ < 5) MESSAGE(l.kind() << " dx[" << i << "] analytic " << dx.data()[i] << " numeric " << num);
    }
  }
  CHECK_MESSAGE(bad == 0, l.kind() << ": " << bad << " input-gradient mismatches");
  for (parameter* p : l.parameters()) {
    const xt::xarray<float> g = p->grad;
    std::size_t pbad = 0;
    for (std::size_t i = 0; i < p->value.size(); ++i) {
      const float keep = p->value.data()[i];
      p->value.data()[i] = keep + eps;
      const double up = probe_loss(l, x, r, training);
      p->value.data()[i] = keep - eps;
      const double down = probe_loss(l, x, r, training);
      p->value.data()[i] = keep;
      const double num = (up - down) / (2.0 * eps);
      if (std::abs(g.data()[i] - num) > atol + rtol * std::abs(num)) {
        if (pbad++ < 5) MESSAGE(p->name << "[" << i << "] analytic " << g.data()[i] << " numeric " << num);
      }
    }
    CHECK_MESSAGE(pbad == 0, p->name << ": " << pbad << " parameter-gradient mismatches");
  }
}

}  // namespace qnas::nn::testing
