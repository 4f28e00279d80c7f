// First-order optimizers over nn::parameter: SGD (momentum, Nesterov) and Adam / AdamW.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "qnas/core/config.hpp"
#include "qnas/core/diagnostics.hpp"
#include "qnas/nn/parameter.hpp"

namespace qnas::train {

/// Sub-concept of optimizer: one update of the parameters from their `grad`.
template <class O>
concept optimizer_step = requires(O& o, std::span<nn::parameter* const> params) { o.step(params); };
/// Sub-concept of optimizer: a learning rate a schedule can set every step.
template <class O>
concept optimizer_learning_rate = requires(O& o, const O& co, float lr) {
  o.set_learning_rate(lr);
  { co.learning_rate() } -> std::convertible_to<float>;
};
/// Sub-concept of optimizer: forget the per-parameter state (moments, step counts).
template <class O>
concept optimizer_reset = requires(O& o) { o.reset(); };

/// What a trainer needs from an optimizer: update parameters from their `grad`, and a learning
/// rate it can set every step from a schedule.
template <class O>
concept optimizer = optimizer_step<O> && optimizer_learning_rate<O> && optimizer_reset<O>;

/// The conformance check of an optimizer: one static_assert per member, so the first error
/// names the one O lacks. True when O is an optimizer.
template <class O>
consteval bool check_optimizer() {
  static_assert(optimizer_step<O>,
                "qnas: an optimizer needs `void step(std::span<qnas::nn::parameter* const> params)`");
  static_assert(optimizer_learning_rate<O>,
                "qnas: an optimizer needs `void set_learning_rate(float)` and `float learning_rate() const`");
  static_assert(optimizer_reset<O>, "qnas: an optimizer needs `void reset()` (forget per-parameter state)");
  return true;
}

}  // namespace qnas::train

namespace qnas::detail {
// State of one parameter: optimizer moments with the parameter's size, and its own step count
// (so a parameter updated less often than others still gets the right bias correction).
struct slot_state {
  std::vector<float> first;
  std::vector<float> second;
  std::size_t steps = 0;
};

// Per-parameter state keyed by the parameter's address. A parameter seen for the first time gets
// its buffers then; later steps only look them up (no allocation on the training path).
class slot_table {
 public:
  slot_state& get(const nn::parameter& p, bool second_moment, std::string_view where) {
    if (p.grad.size() != p.value.size())
      throw invalid_argument(where, qnas::detail::cat("parameter '", p.name, "' has ", p.value.size(),
                                                      " values but ", p.grad.size(), " gradient entries"));
    auto [it, fresh] = slots_.try_emplace(&p);
    slot_state& s = it->second;
    if (fresh) {
      s.first.assign(p.value.size(), 0.0f);
      if (second_moment) s.second.assign(p.value.size(), 0.0f);
    } else if (s.first.size() != p.value.size()) {
      throw invalid_argument(where, qnas::detail::cat("parameter '", p.name, "' changed size from ", s.first.size(),
                                                      " to ", p.value.size(),
                                                      " since the last step; call reset() when the network changes"));
    }
    return s;
  }
  void clear() noexcept { slots_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }

 private:
  std::unordered_map<const nn::parameter*, slot_state> slots_;
};

inline void check_rate(float lr, std::string_view where) {
  if (!std::isfinite(lr) || lr < 0.0f)
    throw invalid_argument(where, qnas::detail::cat("learning rate ", lr, " must be finite and >= 0"));
}
}  // namespace qnas::detail

namespace qnas::train {

/// Settings of `sgd`.
struct sgd_options {
  float learning_rate = 0.01f;
  float momentum = 0.9f;       ///< in [0, 1); 0 is plain SGD
  float weight_decay = 0.0f;   ///< L2: adds weight_decay * w to the gradient (parameters with decay)
  bool nesterov = false;       ///< Nesterov momentum (needs momentum > 0)
};

/// Stochastic gradient descent with heavy-ball or Nesterov momentum (the PyTorch formulation,
/// no dampening). Per element, with g = grad + weight_decay * w:
///
///   v <- momentum * v + g
///   w <- w - lr * (nesterov ? g + momentum * v : v)
///
/// Weight decay here is L2 regularisation folded into the gradient (so it passes through
/// momentum); it applies only to parameters whose `decay` is true.
class sgd {
 public:
  explicit sgd(sgd_options o = {}) : o_(o) {
    constexpr std::string_view where = "qnas::train::sgd";
    qnas::detail::check_rate(o.learning_rate, where);
    if (!(o.momentum >= 0.0f && o.momentum < 1.0f))
      throw invalid_argument(where, qnas::detail::cat("momentum ", o.momentum, " must be in [0, 1)"));
    if (!std::isfinite(o.weight_decay) || o.weight_decay < 0.0f)
      throw invalid_argument(where, qnas::detail::cat("weight_decay ", o.weight_decay, " must be finite and >= 0"));
    if (o.nesterov && o.momentum == 0.0f) throw invalid_argument(where, "nesterov needs momentum > 0");
  }

  [[nodiscard]] const sgd_options& options() const noexcept { return o_; }
  [[nodiscard]] float learning_rate() const noexcept { return o_.learning_rate; }
  void set_learning_rate(float lr) {
    qnas::detail::check_rate(lr, "qnas::train::sgd::set_learning_rate");
    o_.learning_rate = lr;
  }
  /// Forgets all momentum (e.g. when a new candidate network is trained).
  void reset() noexcept { slots_.clear(); }

  /// One update of every parameter from its `grad` (gradients are read, not cleared).
  void step(std::span<nn::parameter* const> params) {
    for (nn::parameter* p : params) {
      qnas::detail::slot_state& s = slots_.get(*p, false, "qnas::train::sgd::step");
      ++s.steps;
      const std::size_t n = p->value.size();
      float* QNAS_RESTRICT w = p->value.data();
      const float* QNAS_RESTRICT g = p->grad.data();
      float* QNAS_RESTRICT v = s.first.data();
      const float lr = o_.learning_rate, mu = o_.momentum, wd = p->decay ? o_.weight_decay : 0.0f;
      if (mu == 0.0f) {
        for (std::size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
      } else if (o_.nesterov) {
        for (std::size_t i = 0; i < n; ++i) {
          const float gi = g[i] + wd * w[i];
          v[i] = mu * v[i] + gi;
          w[i] -= lr * (gi + mu * v[i]);
        }
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          v[i] = mu * v[i] + g[i] + wd * w[i];
          w[i] -= lr * v[i];
        }
      }
    }
  }

 private:
  sgd_options o_;
  qnas::detail::slot_table slots_;
};

/// Settings of `adam`.
struct adam_options {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;          ///< in [0, 1): decay of the first moment
  float beta2 = 0.999f;        ///< in [0, 1): decay of the second moment
  float epsilon = 1e-8f;       ///< > 0: added to sqrt(v_hat)
  float weight_decay = 0.0f;   ///< see `decoupled`; applies to parameters with `decay` true
  bool decoupled = true;       ///< true: AdamW (Loshchilov & Hutter), w <- w - lr * wd * w
                               ///< apart from the adaptive step; false: L2 added to the gradient
};

/// Adam (Kingma & Ba 2015) with bias correction. Per element, t = this parameter's step count:
///
///   g <- grad (+ weight_decay * w if not decoupled)
///   m <- beta1 * m + (1 - beta1) * g,  v <- beta2 * v + (1 - beta2) * g^2
///   w <- w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)
///        (- lr * weight_decay * w, evaluated on the pre-update w, if decoupled)
class adam {
 public:
  explicit adam(adam_options o = {}) : o_(o) {
    constexpr std::string_view where = "qnas::train::adam";
    qnas::detail::check_rate(o.learning_rate, where);
    if (!(o.beta1 >= 0.0f && o.beta1 < 1.0f))
      throw invalid_argument(where, qnas::detail::cat("beta1 ", o.beta1, " must be in [0, 1)"));
    if (!(o.beta2 >= 0.0f && o.beta2 < 1.0f))
      throw invalid_argument(where, qnas::detail::cat("beta2 ", o.beta2, " must be in [0, 1)"));
    if (!(o.epsilon > 0.0f) || !std::isfinite(o.epsilon))
      throw invalid_argument(where, qnas::detail::cat("epsilon ", o.epsilon, " must be finite and > 0"));
    if (!std::isfinite(o.weight_decay) || o.weight_decay < 0.0f)
      throw invalid_argument(where, qnas::detail::cat("weight_decay ", o.weight_decay, " must be finite and >= 0"));
  }

  [[nodiscard]] const adam_options& options() const noexcept { return o_; }
  [[nodiscard]] float learning_rate() const noexcept { return o_.learning_rate; }
  void set_learning_rate(float lr) {
    qnas::detail::check_rate(lr, "qnas::train::adam::set_learning_rate");
    o_.learning_rate = lr;
  }
  /// Forgets all moments and step counts.
  void reset() noexcept { slots_.clear(); }

  /// One update of every parameter from its `grad` (gradients are read, not cleared).
  void step(std::span<nn::parameter* const> params) {
    for (nn::parameter* p : params) {
      qnas::detail::slot_state& s = slots_.get(*p, true, "qnas::train::adam::step");
      ++s.steps;
      const auto t = static_cast<double>(s.steps);
      // Bias corrections in double: 1 - beta2^t is tiny for the first steps.
      const auto c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(o_.beta1), t)));
      const auto c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(o_.beta2), t)));
      const std::size_t n = p->value.size();
      float* QNAS_RESTRICT w = p->value.data();
      const float* QNAS_RESTRICT g = p->grad.data();
      float* QNAS_RESTRICT m = s.first.data();
      float* QNAS_RESTRICT v = s.second.data();
      const float lr = o_.learning_rate, b1 = o_.beta1, b2 = o_.beta2, eps = o_.epsilon;
      const float wd = p->decay ? o_.weight_decay : 0.0f;
      const float l2 = o_.decoupled ? 0.0f : wd, shrink = o_.decoupled ? lr * wd : 0.0f;
      // xsimd: the square root and division do not vectorise on their own (std::sqrt may set
      // errno), and they dominate the step when scalar.
      using simd = xsimd::batch<float>;
      constexpr std::size_t lanes = simd::size;
      const simd vb1(b1), vb2(b2), va1(1.0f - b1), va2(1.0f - b2), vc1(c1), vc2(c2), vlr(lr), veps(eps), vl2(l2),
          vshrink(shrink);
      std::size_t i = 0;
      for (; i + lanes <= n; i += lanes) {
        const simd wi = simd::load_unaligned(w + i);
        const simd gi = simd::load_unaligned(g + i) + vl2 * wi;
        const simd mi = vb1 * simd::load_unaligned(m + i) + va1 * gi;
        const simd vi = vb2 * simd::load_unaligned(v + i) + va2 * gi * gi;
        mi.store_unaligned(m + i);
        vi.store_unaligned(v + i);
        (wi - (vlr * (mi * vc1) / (xsimd::sqrt(vi * vc2) + veps) + vshrink * wi)).store_unaligned(w + i);
      }
      for (; i < n; ++i) {
        const float gi = g[i] + l2 * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps) + shrink * w[i];
      }
    }
  }

 private:
  adam_options o_;
  qnas::detail::slot_table slots_;
};

}  // namespace qnas::train
