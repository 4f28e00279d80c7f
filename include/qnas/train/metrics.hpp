// Evaluation metrics on logits: accuracy, top-k accuracy, a running mean, a confusion matrix.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <ostream>
#include <span>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/train/loss.hpp"

namespace qnas::train {

/// Index of the largest logit of each row (the first one on ties).
template <float_matrix L>
[[nodiscard]] std::vector<label_t> argmax(const L& logits) {
  const auto d = qnas::detail::dims_of(logits, "qnas::train::argmax", "logits");
  std::vector<label_t> out(d.rows);
  for (std::size_t i = 0; i < d.rows; ++i) {
    const float* x = logits.data() + i * d.cols;
    std::size_t best = 0;
    for (std::size_t j = 1; j < d.cols; ++j)
      if (x[j] > x[best]) best = j;
    out[i] = static_cast<label_t>(best);
  }
  return out;
}

/// Number of rows whose true label is among the `k` largest logits. Ties are broken like
/// `argmax`, towards the lower class index, so `top_k_correct(z, y, 1)` counts exactly the rows
/// where `argmax(z) == y` (a constant row counts as a prediction of class 0).
template <float_matrix L>
[[nodiscard]] std::size_t top_k_correct(const L& logits, std::span<const label_t> labels, std::size_t k) {
  constexpr std::string_view where = "qnas::train::top_k_correct";
  const auto d = qnas::detail::dims_of(logits, where, "logits");
  qnas::detail::check_labels(labels, d, where);
  if (k == 0) throw invalid_argument(where, "k must be > 0");
  std::size_t correct = 0;
  for (std::size_t i = 0; i < d.rows; ++i) {
    const float* x = logits.data() + i * d.cols;
    const auto y = static_cast<std::size_t>(labels[i]);
    // rank of the true class = classes ahead of it in the tie-broken order
    std::size_t ahead = 0;
    for (std::size_t j = 0; j < d.cols; ++j) ahead += (x[j] > x[y]) || (x[j] == x[y] && j < y);
    correct += ahead < k;
  }
  return correct;
}

/// Fraction of rows whose argmax is the label.
template <float_matrix L>
[[nodiscard]] double accuracy(const L& logits, std::span<const label_t> labels) {
  return static_cast<double>(top_k_correct(logits, labels, 1)) / static_cast<double>(labels.size());
}

/// Fraction of rows whose label is among the k largest logits.
template <float_matrix L>
[[nodiscard]] double top_k_accuracy(const L& logits, std::span<const label_t> labels, std::size_t k) {
  return static_cast<double>(top_k_correct(logits, labels, k)) / static_cast<double>(labels.size());
}

/// A weighted running mean, e.g. of per-batch mean losses weighted by batch size, so the result
/// is the mean over samples even when the last batch is smaller.
class mean_metric {
 public:
  void add(double value, double weight = 1.0) noexcept {
    sum_ += value * weight;
    weight_ += weight;
  }
  [[nodiscard]] double mean() const noexcept { return weight_ > 0.0 ? sum_ / weight_ : 0.0; }
  [[nodiscard]] double weight() const noexcept { return weight_; }
  void reset() noexcept { sum_ = weight_ = 0.0; }

 private:
  double sum_ = 0.0;
  double weight_ = 0.0;
};

/// Counts of (true class, predicted class) pairs. Row = truth, column = prediction.
class confusion_matrix {
 public:
  explicit confusion_matrix(std::size_t classes) : classes_(classes), counts_(classes * classes, 0) {
    if (classes == 0) throw invalid_argument("qnas::train::confusion_matrix", "classes must be > 0");
  }

  [[nodiscard]] std::size_t classes() const noexcept { return classes_; }

  /// Records one prediction.
  void add(label_t truth, label_t predicted) {
    if (truth < 0 || static_cast<std::size_t>(truth) >= classes_ || predicted < 0 ||
        static_cast<std::size_t>(predicted) >= classes_)
      throw invalid_argument("qnas::train::confusion_matrix::add",
                             qnas::detail::cat("pair (", truth, ", ", predicted, ") is outside [0, ", classes_, ")"));
    ++counts_[static_cast<std::size_t>(truth) * classes_ + static_cast<std::size_t>(predicted)];
  }

  /// Records the argmax of each row of `logits` against `labels`.
  template <float_matrix L>
  void add(const L& logits, std::span<const label_t> labels) {
    const auto d = qnas::detail::dims_of(logits, "qnas::train::confusion_matrix::add", "logits");
    if (d.cols != classes_)
      throw invalid_argument("qnas::train::confusion_matrix::add",
                             qnas::detail::cat("logits have ", d.cols, " classes, the matrix ", classes_));
    qnas::detail::check_labels(labels, d, "qnas::train::confusion_matrix::add");
    const auto pred = argmax(logits);
    for (std::size_t i = 0; i < pred.size(); ++i) add(labels[i], pred[i]);
  }

  /// How many samples of class `truth` were predicted as `predicted`.
  [[nodiscard]] std::uint64_t operator()(std::size_t truth, std::size_t predicted) const {
    return counts_.at(truth * classes_ + predicted);
  }
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (auto c : counts_) t += c;
    return t;
  }
  /// Trace / total (0 when empty).
  [[nodiscard]] double accuracy() const noexcept {
    std::uint64_t diag = 0;
    for (std::size_t c = 0; c < classes_; ++c) diag += counts_[c * classes_ + c];
    const auto t = total();
    return t ? static_cast<double>(diag) / static_cast<double>(t) : 0.0;
  }
  /// Fraction of class `c`'s samples predicted as c (0 when the class has no samples).
  [[nodiscard]] double recall(std::size_t c) const {
    std::uint64_t row = 0;
    for (std::size_t p = 0; p < classes_; ++p) row += (*this)(c, p);
    return row ? static_cast<double>((*this)(c, c)) / static_cast<double>(row) : 0.0;
  }
  void reset() noexcept { std::fill(counts_.begin(), counts_.end(), 0); }

  /// A readable table: one row per true class.
  friend std::ostream& operator<<(std::ostream& os, const confusion_matrix& m) {
    os << "truth\\pred";
    for (std::size_t p = 0; p < m.classes_; ++p) os << std::setw(7) << p;
    os << '\n';
    for (std::size_t t = 0; t < m.classes_; ++t) {
      os << std::setw(10) << t;
      for (std::size_t p = 0; p < m.classes_; ++p) os << std::setw(7) << m(t, p);
      os << '\n';
    }
    return os;
  }

 private:
  std::size_t classes_;
  std::vector<std::uint64_t> counts_;
};

}  // namespace qnas::train
