// Seeded, shuffling mini-batches of a data set, gathered into reused contiguous buffers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/data/random.hpp"

namespace qnas::data {

/// One mini-batch: `images` is `[B, H, W, C]` contiguous, `labels` has B entries, `indices` says
/// which images of the data set they are. B is the batch size except, possibly, for the last
/// batch of an epoch. The storage belongs to the `batcher` and is overwritten by its next call.
struct batch {
  xt::xtensor<float, 4> images;
  std::vector<label_t> labels;
  std::span<const std::size_t> indices;

  [[nodiscard]] std::size_t size() const noexcept { return labels.size(); }
};

/// How a `batcher` walks a data set.
struct batch_options {
  std::size_t batch_size = 32;
  bool shuffle = true;      ///< a fresh seeded permutation every epoch; false: data-set order
  bool drop_last = false;   ///< skip a final batch smaller than batch_size
  std::uint64_t seed = 0;   ///< the permutation of epoch e depends only on (seed, e)
};

/// Iterates over a data set in mini-batches, epoch by epoch:
///
///     data::batcher b(train, {.batch_size = 64, .seed = 1});
///     for (std::size_t epoch = 0; epoch < 10; ++epoch) {
///       b.start_epoch(epoch);
///       while (const data::batch* mb = b.next()) { /* mb->images, mb->labels */ }
///     }
///
/// Every index appears exactly once per epoch (drop_last: at most once). The permutation of an
/// epoch is a function of (seed, epoch) alone, so a resumed run can jump to any epoch. Batches are
/// gathered into two buffers allocated once (full and tail size), so the training loop does not
/// allocate. The data set must outlive the batcher.
class batcher {
 public:
  batcher(const dataset& d, batch_options options) : data_(&d), options_(options) {
    if (options_.batch_size == 0) throw invalid_argument("qnas::data::batcher", "batch_size must be > 0");
    if (d.images.shape()[0] != d.labels.size())
      throw invalid_argument("qnas::data::batcher", qnas::detail::cat("data set has ", d.images.shape()[0], " images but ",
                                                               d.labels.size(), " labels"));
    order_.resize(d.size());
    start_epoch(0);
  }

  /// A batcher keeps a pointer to its data set, so a temporary would dangle.
  batcher(dataset&&, batch_options) = delete;

  [[nodiscard]] const batch_options& options() const noexcept { return options_; }
  [[nodiscard]] std::size_t epoch() const noexcept { return epoch_; }

  /// Batches in one epoch.
  [[nodiscard]] std::size_t batches_per_epoch() const noexcept {
    const std::size_t n = data_->size(), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }

  /// Restarts at the beginning of `epoch` with that epoch's permutation.
  void start_epoch(std::size_t epoch) {
    epoch_ = epoch;
    pos_ = 0;
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (options_.shuffle) {
      random_engine e(qnas::detail::mix_seed(options_.seed, epoch));
      qnas::detail::shuffle(std::span<std::size_t>(order_), e);
    }
  }

  /// The order in which the current epoch visits the data set.
  [[nodiscard]] std::span<const std::size_t> order() const noexcept { return order_; }

  /// The next batch of the current epoch, or nullptr when the epoch is exhausted.
  [[nodiscard]] const batch* next() {
    const std::size_t n = order_.size(), bs = options_.batch_size;
    if (pos_ >= n) return nullptr;
    const std::size_t count = std::min(bs, n - pos_);
    if (count < bs && options_.drop_last) {
      pos_ = n;
      return nullptr;
    }
    batch& out = count == bs ? full_ : tail_;
    const std::size_t h = data_->height(), w = data_->width(), c = data_->channels(), len = h * w * c;
    if (out.labels.size() != count) {
      out.images.resize({count, h, w, c});
      out.labels.resize(count);
    }
    const float* src = data_->images.data();
    float* dst = out.images.data();
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t i = order_[pos_ + k];
      std::copy_n(src + i * len, len, dst + k * len);
      out.labels[k] = data_->labels[i];
    }
    out.indices = std::span<const std::size_t>(order_).subspan(pos_, count);
    pos_ += count;
    return &out;
  }

 private:
  const dataset* data_;
  batch_options options_;
  std::vector<std::size_t> order_;
  std::size_t epoch_ = 0;
  std::size_t pos_ = 0;
  batch full_, tail_;
};

}  // namespace qnas::data
