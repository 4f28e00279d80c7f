// Classification losses on logits: softmax cross-entropy and knowledge distillation (Hinton et al.).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"

namespace qnas::train {

using data::label_t;

/// A row-major, contiguous float matrix `[N, K]` (e.g. `xt::xarray<float>`, `xt::xtensor<float, 2>`):
/// what the losses and metrics accept as logits.
template <class T>
concept float_matrix = requires(const T& t) {
  { t.data() } -> std::convertible_to<const float*>;
  { t.dimension() } -> std::convertible_to<std::size_t>;
  t.shape();
};

/// A `float_matrix` that can be resized to the logits' shape (gradient outputs).
template <class T>
concept resizable_float_matrix = float_matrix<T> && requires(T& t) {
  { t.data() } -> std::convertible_to<float*>;
};

}  // namespace qnas::train

// Internals live in qnas::detail (not qnas::train::detail) so that `qnas::detail::cat` keeps
// resolving inside qnas::train for every header that includes this one.
namespace qnas::detail {

using data::label_t;


struct matrix_dims {
  std::size_t rows, cols;
};

template <train::float_matrix M>
matrix_dims dims_of(const M& m, std::string_view where, std::string_view what) {
  if (m.dimension() != 2)
    throw invalid_argument(where, cat(what, " must be 2-D [N, classes], got ", m.dimension(), " dimensions"));
  return {static_cast<std::size_t>(m.shape()[0]), static_cast<std::size_t>(m.shape()[1])};
}

inline void check_labels(std::span<const label_t> labels, matrix_dims d, std::string_view where) {
  if (labels.size() != d.rows)
    throw invalid_argument(where, cat(labels.size(), " labels for ", d.rows, " rows of logits"));
  if (d.rows == 0 || d.cols == 0) throw invalid_argument(where, "logits are empty");
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= d.cols)
      throw invalid_argument(where, cat("label ", i, " is ", labels[i], ", outside [0, ", d.cols, ")"));
}

template <train::resizable_float_matrix G>
float* prepare_grad(G& g, matrix_dims d) {
  if (g.dimension() != 2 || static_cast<std::size_t>(g.shape()[0]) != d.rows ||
      static_cast<std::size_t>(g.shape()[1]) != d.cols)
    g.resize({d.rows, d.cols});
  return g.data();
}

// log(sum(exp(x))) and softmax(x) of one row, shifted by the max so exp never overflows.
// Writes softmax into p (may be null) and returns log-sum-exp.
inline float log_softmax_row(const float* x, std::size_t k, float scale, float* p) noexcept {
  float m = x[0] * scale;
  for (std::size_t j = 1; j < k; ++j) m = std::max(m, x[j] * scale);
  float s = 0.0f;
  if (p != nullptr) {
    for (std::size_t j = 0; j < k; ++j) s += (p[j] = std::exp(x[j] * scale - m));
    const float inv = 1.0f / s;
    for (std::size_t j = 0; j < k; ++j) p[j] *= inv;
  } else {
    for (std::size_t j = 0; j < k; ++j) s += std::exp(x[j] * scale - m);
  }
  return m + std::log(s);
}

// Mean softmax cross-entropy. When g is non-null, writes (accumulate == false) or adds
// (accumulate == true) weight * (softmax(z) - onehot(y)) / N into it.
inline double cross_entropy_core(const float* logits, matrix_dims d, std::span<const label_t> labels, float* g,
                                 float weight, bool accumulate) noexcept {
  double total = 0.0;
  const float inv_n = weight / static_cast<float>(d.rows);
  for (std::size_t i = 0; i < d.rows; ++i) {
    const float* x = logits + i * d.cols;
    const auto y = static_cast<std::size_t>(labels[i]);
    if (g != nullptr && !accumulate) {
      float* gi = g + i * d.cols;
      const float lse = log_softmax_row(x, d.cols, 1.0f, gi);  // gi = softmax
      for (std::size_t j = 0; j < d.cols; ++j) gi[j] *= inv_n;
      gi[y] -= inv_n;
      total += static_cast<double>(lse - x[y]);
    } else {
      const float lse = log_softmax_row(x, d.cols, 1.0f, nullptr);
      if (g != nullptr) {
        float* gi = g + i * d.cols;
        for (std::size_t j = 0; j < d.cols; ++j) gi[j] += inv_n * std::exp(x[j] - lse);
        gi[y] -= inv_n;
      }
      total += static_cast<double>(lse - x[y]);
    }
  }
  return total / static_cast<double>(d.rows);
}

}  // namespace qnas::detail

namespace qnas::train {

/// Mean softmax cross-entropy of `logits` `[N, K]` against `labels` (N values in [0, K)):
/// L = (1/N) sum_i (log sum_j exp(z_ij) - z_i,y_i), computed with the row max subtracted, so
/// large logits neither overflow nor lose the small terms. Writes dL/dlogits = (softmax(z) -
/// onehot(y)) / N into `dlogits` (resized to [N, K] when its shape differs; no allocation when it
/// already fits). Throws `invalid_argument` for a label outside [0, K) or mismatched sizes.
/// Non-finite logits give a non-finite loss (not checked per element, for speed).
template <float_matrix L, resizable_float_matrix G>
float softmax_cross_entropy(const L& logits, std::span<const label_t> labels, G& dlogits) {
  constexpr std::string_view where = "qnas::train::softmax_cross_entropy";
  const auto d = qnas::detail::dims_of(logits, where, "logits");
  qnas::detail::check_labels(labels, d, where);
  float* g = qnas::detail::prepare_grad(dlogits, d);
  return static_cast<float>(qnas::detail::cross_entropy_core(logits.data(), d, labels, g, 1.0f, false));
}

/// Mean softmax cross-entropy without the gradient (evaluation).
template <float_matrix L>
float softmax_cross_entropy(const L& logits, std::span<const label_t> labels) {
  constexpr std::string_view where = "qnas::train::softmax_cross_entropy";
  const auto d = qnas::detail::dims_of(logits, where, "logits");
  qnas::detail::check_labels(labels, d, where);
  return static_cast<float>(qnas::detail::cross_entropy_core(logits.data(), d, labels, nullptr, 1.0f, false));
}

/// Knowledge-distillation settings (Hinton, Vinyals, Dean 2015, "Distilling the knowledge in a
/// neural network").
struct distillation_options {
  float temperature = 4.0f;  ///< T > 0: softens both distributions
  float alpha = 0.9f;        ///< in [0, 1]: weight of the soft (teacher) term
};

/// Distillation loss of student `logits` against `teacher_logits` (same shape [N, K]) and
/// `labels`:
///
///   L = alpha * T^2 * (1/N) sum_i KL(softmax(t_i / T) || softmax(s_i / T))
///     + (1 - alpha) * (1/N) sum_i CE(softmax(s_i), y_i).
///
/// The T^2 factor keeps the soft term's gradient magnitude independent of T. Writes
/// dL/ds = alpha * T * (softmax(s/T) - softmax(t/T)) / N + (1 - alpha) * (softmax(s) - onehot(y)) / N
/// into `dlogits`. The teacher gets no gradient. `labels` may be empty when alpha == 1 (pure
/// distillation on unlabelled data).
template <float_matrix L, float_matrix T, resizable_float_matrix G>
float distillation_loss(const L& logits, const T& teacher_logits, std::span<const label_t> labels,
                        const distillation_options& opt, G& dlogits) {
  constexpr std::string_view where = "qnas::train::distillation_loss";
  if (!(opt.temperature > 0.0f) || !std::isfinite(opt.temperature))
    throw invalid_argument(where, qnas::detail::cat("temperature ", opt.temperature, " must be finite and > 0"));
  if (!(opt.alpha >= 0.0f && opt.alpha <= 1.0f))
    throw invalid_argument(where, qnas::detail::cat("alpha ", opt.alpha, " must be in [0, 1]"));
  const auto d = qnas::detail::dims_of(logits, where, "student logits");
  const auto dt = qnas::detail::dims_of(teacher_logits, where, "teacher logits");
  if (dt.rows != d.rows || dt.cols != d.cols)
    throw invalid_argument(where, qnas::detail::cat("teacher logits are [", dt.rows, ", ", dt.cols,
                                                    "], student logits are [", d.rows, ", ", d.cols, "]"));
  const bool hard = opt.alpha < 1.0f;
  if (hard || !labels.empty()) qnas::detail::check_labels(labels, d, where);
  if (d.rows == 0 || d.cols == 0) throw invalid_argument(where, "logits are empty");
  float* g = qnas::detail::prepare_grad(dlogits, d);
  const float inv_t = 1.0f / opt.temperature;
  const float soft_grad = opt.alpha * opt.temperature / static_cast<float>(d.rows);
  double soft = 0.0;
  for (std::size_t i = 0; i < d.rows; ++i) {
    const float* s = logits.data() + i * d.cols;
    const float* t = teacher_logits.data() + i * d.cols;
    float* gi = g + i * d.cols;
    // gi temporarily holds the softened student distribution, then the soft gradient.
    const float lse_s = qnas::detail::log_softmax_row(s, d.cols, inv_t, gi);
    float tm = t[0] * inv_t;
    for (std::size_t j = 1; j < d.cols; ++j) tm = std::max(tm, t[j] * inv_t);
    float ts = 0.0f;
    for (std::size_t j = 0; j < d.cols; ++j) ts += std::exp(t[j] * inv_t - tm);
    const float lse_t = tm + std::log(ts);
    double kl = 0.0;
    for (std::size_t j = 0; j < d.cols; ++j) {
      const float log_pt = t[j] * inv_t - lse_t, log_ps = s[j] * inv_t - lse_s;
      const float pt = std::exp(log_pt);
      if (pt > 0.0f) kl += static_cast<double>(pt) * static_cast<double>(log_pt - log_ps);
      gi[j] = soft_grad * (gi[j] - pt);
    }
    soft += kl;
  }
  soft /= static_cast<double>(d.rows);
  double total = static_cast<double>(opt.alpha) * static_cast<double>(opt.temperature) *
                 static_cast<double>(opt.temperature) * soft;
  if (hard) total += static_cast<double>(1.0f - opt.alpha) * qnas::detail::cross_entropy_core(logits.data(), d, labels, g,
                                                                                       1.0f - opt.alpha, true);
  return static_cast<float>(total);
}

}  // namespace qnas::train
