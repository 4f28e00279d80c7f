// Trainer callbacks: a progress line, early stopping, a wall-time budget (detected at compile time).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <limits>
#include <ostream>
#include <string>

namespace qnas::train {

/// What the trainer reports after each epoch.
struct epoch_stats {
  std::size_t epoch = 0;            ///< 0-based
  std::size_t epochs = 0;           ///< planned epochs
  std::size_t steps = 0;            ///< optimizer steps so far (all epochs)
  double train_loss = 0.0;          ///< mean over the epoch's training images
  double train_accuracy = 0.0;      ///< top-1 on the training batches (training mode)
  bool has_validation = false;
  double val_loss = 0.0;
  double val_accuracy = 0.0;
  double val_top_k = 0.0;           ///< top-k accuracy (k from fit_options)
  double seconds = 0.0;             ///< wall time of the epoch's training steps (no evaluation)
  double images_per_second = 0.0;   ///< training throughput of the epoch
  float learning_rate = 0.0f;       ///< at the epoch's last step
};

/// What the trainer reports after each optimizer step.
struct batch_stats {
  std::size_t epoch = 0;
  std::size_t step = 0;             ///< 0-based optimizer step (all epochs)
  std::size_t size = 0;             ///< images in the batch
  double loss = 0.0;
  double elapsed_seconds = 0.0;     ///< since fit() started
};

// A callback is any object with some of these members; the trainer detects each at compile
// time (ensmallen style) and calls the ones present. Returning true from on_epoch_end or
// on_batch_end stops training after that epoch/step.
//
//   void on_train_begin();
//   bool on_batch_end(const batch_stats&);
//   bool on_epoch_end(const epoch_stats&);
//   void on_train_end(const epoch_stats& last);

/// A trainer callback: an object with at least one of the members above.
template <class C>
concept train_callback = requires(C& c) { c.on_train_begin(); } ||
                         requires(C& c, const batch_stats& s) { c.on_batch_end(s); } ||
                         requires(C& c, const epoch_stats& s) { c.on_epoch_end(s); } ||
                         requires(C& c, const epoch_stats& s) { c.on_train_end(s); };

/// Prints one line per epoch: loss, accuracy, validation loss/accuracy, throughput.
class progress {
 public:
  explicit progress(std::ostream& os = std::cout, std::string prefix = "") : os_(&os), prefix_(std::move(prefix)) {}
  bool on_epoch_end(const epoch_stats& s) {
    char line[256];
    std::snprintf(line, sizeof line, "epoch %zu/%zu  loss %.4f  acc %.4f", s.epoch + 1, s.epochs, s.train_loss,
                  s.train_accuracy);
    *os_ << prefix_ << line;
    if (s.has_validation) {
      std::snprintf(line, sizeof line, "  val_loss %.4f  val_acc %.4f  val_top_k %.4f", s.val_loss, s.val_accuracy,
                    s.val_top_k);
      *os_ << line;
    }
    std::snprintf(line, sizeof line, "  lr %.2g  %.1f s  %.0f img/s", static_cast<double>(s.learning_rate), s.seconds,
                  s.images_per_second);
    *os_ << line << std::endl;
    return false;
  }

 private:
  std::ostream* os_;
  std::string prefix_;
};

/// Stops when the monitored validation figure has not improved by more than `min_delta` for
/// `patience` epochs (validation loss by default; accuracy with monitor::accuracy).
/// `best()` / `best_epoch()` tell where the best value was.
class early_stopping {
 public:
  enum class monitor { loss, accuracy };
  explicit early_stopping(std::size_t patience = 3, double min_delta = 0.0, monitor m = monitor::loss)
      : patience_(patience), min_delta_(min_delta), monitor_(m) {}

  bool on_epoch_end(const epoch_stats& s) {
    if (!s.has_validation) return false;
    const double v = monitor_ == monitor::loss ? s.val_loss : -s.val_accuracy;  // lower is better
    if (v < best_ - min_delta_) {
      best_ = v;
      best_epoch_ = s.epoch;
      waited_ = 0;
      return false;
    }
    return ++waited_ >= patience_;
  }
  [[nodiscard]] double best() const noexcept { return monitor_ == monitor::loss ? best_ : -best_; }
  [[nodiscard]] std::size_t best_epoch() const noexcept { return best_epoch_; }

 private:
  std::size_t patience_;
  double min_delta_;
  monitor monitor_;
  double best_ = std::numeric_limits<double>::infinity();
  std::size_t best_epoch_ = 0;
  std::size_t waited_ = 0;
};

/// Stops training once `seconds` of wall time have passed since fit() began (checked after
/// every step, so a search can give each candidate the same budget).
class time_budget {
 public:
  explicit time_budget(double seconds) : seconds_(seconds) {}
  bool on_batch_end(const batch_stats& s) {
    exceeded_ = s.elapsed_seconds >= seconds_;
    return exceeded_;
  }
  [[nodiscard]] bool exceeded() const noexcept { return exceeded_; }

 private:
  double seconds_;
  bool exceeded_ = false;
};

}  // namespace qnas::train
