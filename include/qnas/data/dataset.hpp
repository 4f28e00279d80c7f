// An image-classification data set (NHWC float images in [0, 1] + integer labels) and its split.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/random.hpp"

namespace qnas::data {

/// Class labels are `std::int32_t` everywhere in qnas (losses, metrics, batches): wide enough for
/// any class count, signed so that a corrupted negative value is caught rather than wrapped.
using label_t = std::int32_t;

/// Images `[N, H, W, C]` (float32, row-major NHWC, values in [0, 1]), one label per image in
/// [0, classes), and the number of classes. A plain value: copy it, move it, slice it.
struct dataset {
  xt::xtensor<float, 4> images;
  std::vector<label_t> labels;
  std::size_t classes = 0;

  [[nodiscard]] std::size_t size() const noexcept { return labels.size(); }
  [[nodiscard]] bool empty() const noexcept { return labels.empty(); }
  [[nodiscard]] std::size_t height() const noexcept { return images.shape()[1]; }
  [[nodiscard]] std::size_t width() const noexcept { return images.shape()[2]; }
  [[nodiscard]] std::size_t channels() const noexcept { return images.shape()[3]; }
  /// Floats per image (H * W * C).
  [[nodiscard]] std::size_t image_size() const noexcept { return height() * width() * channels(); }

  /// Image i as a contiguous span of H*W*C floats.
  [[nodiscard]] std::span<const float> image(std::size_t i) const noexcept {
    return {images.data() + i * image_size(), image_size()};
  }

  /// Number of images per class (length `classes`).
  [[nodiscard]] std::vector<std::size_t> class_counts() const {
    std::vector<std::size_t> counts(classes, 0);
    for (label_t l : labels)
      if (l >= 0 && static_cast<std::size_t>(l) < classes) ++counts[static_cast<std::size_t>(l)];
    return counts;
  }

  /// Throws `qnas::invalid_argument` (tagged `where`) when images and labels disagree in count,
  /// a label is outside [0, classes), or a pixel is not a finite value in [0, 1].
  void validate(std::string_view where = "qnas::data::dataset") const {
    if (images.shape()[0] != labels.size())
      throw invalid_argument(where, qnas::detail::cat("dataset has ", images.shape()[0], " images but ", labels.size(),
                                                " labels"));
    if (classes == 0) throw invalid_argument(where, "dataset has 0 classes");
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes)
        throw invalid_argument(where, qnas::detail::cat("label ", i, " is ", labels[i], ", outside [0, ", classes, ")"));
    const float* p = images.data();
    for (std::size_t k = 0; k < images.size(); ++k)
      if (!(p[k] >= 0.0f && p[k] <= 1.0f))
        throw invalid_argument(where, qnas::detail::cat("pixel ", k, " (image ", k / std::max<std::size_t>(image_size(), 1),
                                                  ") is ", p[k], ", outside [0, 1]"));
  }
};

/// The images and labels at `indices` (in that order; repeats allowed), copied into a new data set.
[[nodiscard]] inline dataset subset(const dataset& d, std::span<const std::size_t> indices) {
  dataset out;
  out.classes = d.classes;
  out.images.resize({indices.size(), d.height(), d.width(), d.channels()});
  out.labels.resize(indices.size());
  const std::size_t n = d.image_size();
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= d.size())
      throw invalid_argument("qnas::data::subset",
                             qnas::detail::cat("index ", i, " (position ", k, ") is outside a data set of ", d.size()));
    std::copy_n(d.images.data() + i * n, n, out.images.data() + k * n);
    out.labels[k] = d.labels[i];
  }
  return out;
}

/// The first `count` images (or all, if fewer): a cheap way to make a smaller proxy task.
[[nodiscard]] inline dataset head(const dataset& d, std::size_t count) {
  std::vector<std::size_t> idx(std::min(count, d.size()));
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return subset(d, idx);
}

/// Which images of a data set go to training and which to validation (each list ascending).
struct split_indices_result {
  std::vector<std::size_t> train;
  std::vector<std::size_t> validation;
};

/// The index sets of `split` (below), for callers that keep one data set and index into it.
[[nodiscard]] inline split_indices_result split_indices(const dataset& d, std::size_t validation_size,
                                                        std::uint64_t seed) {
  if (validation_size > d.size())
    throw invalid_argument("qnas::data::split", qnas::detail::cat("validation_size ", validation_size,
                                                           " exceeds the data set's ", d.size(), " images"));
  // Indices of each class, in order.
  std::vector<std::vector<std::size_t>> by_class(d.classes);
  for (std::size_t i = 0; i < d.size(); ++i) {
    const label_t l = d.labels[i];
    if (l < 0 || static_cast<std::size_t>(l) >= d.classes)
      throw invalid_argument("qnas::data::split", qnas::detail::cat("label ", i, " is ", l, ", outside [0, ", d.classes, ")"));
    by_class[static_cast<std::size_t>(l)].push_back(i);
  }
  // Largest-remainder apportionment of validation_size over the classes.
  std::vector<std::size_t> quota(d.classes, 0);
  std::vector<std::pair<double, std::size_t>> rem;  // (-remainder, class): sorting puts the largest first
  std::size_t given = 0;
  for (std::size_t c = 0; c < d.classes; ++c) {
    const double exact = static_cast<double>(validation_size) * static_cast<double>(by_class[c].size()) /
                         static_cast<double>(std::max<std::size_t>(d.size(), 1));
    quota[c] = std::min(by_class[c].size(), static_cast<std::size_t>(std::floor(exact)));
    given += quota[c];
    rem.emplace_back(-(exact - std::floor(exact)), c);
  }
  std::sort(rem.begin(), rem.end());
  // given < validation_size <= d.size() guarantees a class with room, so this terminates.
  for (std::size_t k = 0; given < validation_size; ++k) {
    const std::size_t c = rem[k % rem.size()].second;
    if (quota[c] < by_class[c].size()) {
      ++quota[c];
      ++given;
    }
  }
  std::vector<char> is_val(d.size(), 0);
  random_engine e(qnas::detail::mix_seed(seed, 0x5b1170));
  for (std::size_t c = 0; c < d.classes; ++c) {
    qnas::detail::shuffle(std::span<std::size_t>(by_class[c]), e);
    for (std::size_t k = 0; k < quota[c]; ++k) is_val[by_class[c][k]] = 1;
  }
  split_indices_result r;
  r.train.reserve(d.size() - validation_size);
  r.validation.reserve(validation_size);
  for (std::size_t i = 0; i < d.size(); ++i) (is_val[i] ? r.validation : r.train).push_back(i);
  return r;
}

/// A training and a validation part of one data set.
struct split_result {
  dataset train;
  dataset validation;
};

/// Splits `d` into `validation_size` validation images and the rest for training, chosen by a
/// seeded permutation. Stratified: every class contributes to validation in proportion to its
/// share of `d` (largest-remainder rounding), so a small validation set keeps the class
/// balance. Both parts keep the order of `d`. The same seed gives the same split on every
/// platform. Throws `invalid_argument` if `validation_size > d.size()` or a label is out of range.
[[nodiscard]] inline split_result split(const dataset& d, std::size_t validation_size, std::uint64_t seed) {
  const auto idx = split_indices(d, validation_size, seed);
  return {subset(d, idx.train), subset(d, idx.validation)};
}

}  // namespace qnas::data
