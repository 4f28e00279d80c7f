// Weight initialisation (He / Glorot, uniform / normal) from a caller-supplied seeded engine.
#pragma once

#include <cmath>
#include <cstddef>
#include <string_view>

#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"
#include "qnas/nn/parameter.hpp"

namespace qnas::train {

/// Fan-in and fan-out of a weight tensor.
struct fans {
  std::size_t in = 0;
  std::size_t out = 0;
};

/// Fans from a weight shape, with qnas's layouts (the Keras convention):
///   dense  `[in, out]`:              fan_in = in, fan_out = out;
///   conv   `[kh, kw, cin, cout]`:    fan_in = kh*kw*cin, fan_out = kh*kw*cout
///   (generally: the receptive field is the product of all but the last two dimensions,
///    fan_in = receptive * shape[-2], fan_out = receptive * shape[-1]);
///   1-D `[n]` (a bias or scale):     fan_in = fan_out = n.
/// Throws `invalid_argument` for a 0-D shape or a zero dimension.
template <class Shape>
[[nodiscard]] fans fans_of(const Shape& shape) {
  const std::size_t r = static_cast<std::size_t>(shape.size());
  if (r == 0) throw invalid_argument("qnas::train::fans_of", "a 0-D tensor has no fans");
  for (std::size_t k = 0; k < r; ++k)
    if (shape[k] == 0) throw invalid_argument("qnas::train::fans_of", qnas::detail::cat("dimension ", k, " is 0"));
  if (r == 1) return {static_cast<std::size_t>(shape[0]), static_cast<std::size_t>(shape[0])};
  std::size_t receptive = 1;
  for (std::size_t k = 0; k + 2 < r; ++k) receptive *= static_cast<std::size_t>(shape[k]);
  return {receptive * static_cast<std::size_t>(shape[r - 2]), receptive * static_cast<std::size_t>(shape[r - 1])};
}

/// Initialisation schemes. Bounds and deviations (n = fan_in for He, fan_in + fan_out for Glorot):
///   he_uniform      U(-sqrt(6/fan_in), +sqrt(6/fan_in))          (He et al. 2015, for ReLU)
///   he_normal       N(0, 2/fan_in)
///   glorot_uniform  U(-sqrt(6/(in+out)), +sqrt(6/(in+out)))      (Glorot & Bengio 2010)
///   glorot_normal   N(0, 2/(in+out))
///   zeros, ones     constants (biases; batch-norm shift and scale)
/// The normal schemes are untruncated (PyTorch's kaiming_normal_/xavier_normal_, not Keras's
/// truncated variants), so the variance is exactly the stated one.
enum class init_scheme { he_uniform, he_normal, glorot_uniform, glorot_normal, zeros, ones };

/// Fills `w` (already shaped) by `scheme`, drawing from `engine` (32- or 64-bit full-range
/// engine, e.g. `qnas::random_engine`). The same engine state gives the same tensor (uniform schemes: everywhere; normal schemes:
/// bit for bit with the same math library, since Box-Muller uses log, cos and sin).
template <class Engine>
void initialize(xt::xarray<float>& w, init_scheme scheme, Engine& engine) {
  static_assert(qnas::detail::full_range_engine<Engine>,
                "qnas::train::initialize<Engine>: Engine must produce 32 or 64 full random bits per call "
                "(e.g. qnas::random_engine = std::mt19937_64, or std::mt19937)");
  float* p = w.data();
  const std::size_t n = w.size();
  if (scheme == init_scheme::zeros || scheme == init_scheme::ones) {
    const float v = scheme == init_scheme::ones ? 1.0f : 0.0f;
    for (std::size_t i = 0; i < n; ++i) p[i] = v;
    return;
  }
  const fans f = fans_of(w.shape());
  const bool he = scheme == init_scheme::he_uniform || scheme == init_scheme::he_normal;
  const double denom = he ? static_cast<double>(f.in) : static_cast<double>(f.in + f.out);
  if (scheme == init_scheme::he_uniform || scheme == init_scheme::glorot_uniform) {
    const double limit = std::sqrt(6.0 / denom);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<float>(qnas::detail::uniform(engine, -limit, limit));
  } else {
    qnas::detail::fill_normal(std::span<float>(p, n), std::sqrt(2.0 / denom), engine);
  }
}

/// Initialises a parameter's value by `scheme` and zeroes its gradient (resized to match).
template <class Engine>
void initialize(nn::parameter& p, init_scheme scheme, Engine& engine) {
  initialize(p.value, scheme, engine);
  if (p.grad.shape() != p.value.shape()) p.grad.resize(p.value.shape());
  p.grad.fill(0.0f);
}

}  // namespace qnas::train
