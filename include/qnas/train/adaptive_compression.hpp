// Adaptive activation compression: per-layer format chosen on a ladder from a training-health metric.
//
// A layer starts on some rung of an ordered ladder of formats (narrow to wide, e.g. bfp with
// 2, 3, 4, 6, 8 mantissa bits, then float32). After each observation of a degradation metric
// (larger = worse: the error of the compressed against the uncompressed layer output on a
// probe batch, a loss increase, the noise-to-signal ratio of gradients):
//   - above `widen_above` for `widen_patience` consecutive observations: one rung wider;
//   - below `tighten_below` for `tighten_patience` consecutive observations: one rung narrower.
// The band between the two thresholds changes nothing (hysteresis), counters restart after
// every change, no change follows another within `cooldown` steps, and tightening back into a
// rung the layer had to leave needs twice the patience per earlier failure there (backoff), so
// the format settles instead of oscillating. Every change is recorded with its reason.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/train/activation_store.hpp"

namespace qnas::train {

/// Formats ordered from the narrowest (fewest amortized bits) to the widest.
class format_ladder {
 public:
  format_ladder() = default;
  /// Throws qnas::invalid_argument when empty or when a rung has fewer amortized bits than
  /// the rung below it.
  explicit format_ladder(std::vector<activation_codec> rungs) : rungs_(std::move(rungs)) {
    static constexpr const char* where = "qnas::train::format_ladder";
    if (rungs_.empty()) throw invalid_argument(where, "a ladder needs at least one format");
    for (std::size_t i = 1; i < rungs_.size(); ++i)
      if (rungs_[i].info().amortized_bits() < rungs_[i - 1].info().amortized_bits())
        throw invalid_argument(where, qnas::detail::cat("rung ", i, " (", rungs_[i].name(), ", ",
                                                        rungs_[i].info().amortized_bits(), " bits) is narrower than rung ",
                                                        i - 1, " (", rungs_[i - 1].name(), ", ",
                                                        rungs_[i - 1].info().amortized_bits(), " bits)"));
  }

  /// The ladder F..., optionally topped by float32 (no compression).
  template <number_format... F>
  static format_ladder of(bool float32_on_top = true) {
    std::vector<activation_codec> r{activation_codec::of<F>()...};
    if (float32_on_top) r.push_back(activation_codec::float32());
    return format_ladder(std::move(r));
  }

  [[nodiscard]] std::size_t size() const noexcept { return rungs_.size(); }
  [[nodiscard]] const activation_codec& operator[](std::size_t i) const { return rungs_.at(i); }

 private:
  std::vector<activation_codec> rungs_;
};

/// Thresholds and patience of the adaptive policy. `tighten_below` < `widen_above`.
struct adaptive_options {
  double widen_above = 0.05;     ///< degradation above this asks for more precision
  double tighten_below = 0.01;   ///< degradation below this allows less precision
  int widen_patience = 1;        ///< consecutive bad observations before widening
  int tighten_patience = 5;      ///< consecutive good observations before tightening
  std::size_t cooldown = 0;      ///< steps after a change during which the layer does not change
  bool backoff = true;           ///< double tighten_patience per earlier failure of the target rung
};

/// One format change.
struct adaptation_event {
  std::size_t step = 0;
  std::size_t layer = 0;
  std::string layer_name;
  std::size_t from_rung = 0, to_rung = 0;
  std::string from, to;  ///< format names
  double metric = 0;
  std::string reason;
};

/// The per-layer controller. Layers are indices 0..layers-1 (names only label events).
class adaptive_compression {
 public:
  /// `layers` controllers, each starting at rung `start` of `ladder`.
  adaptive_compression(format_ladder ladder, std::size_t layers, std::size_t start = 0, adaptive_options opt = {})
      : ladder_(std::move(ladder)), opt_(opt) {
    static constexpr const char* where = "qnas::train::adaptive_compression";
    if (ladder_.size() == 0) throw invalid_argument(where, "the ladder is empty");
    if (start >= ladder_.size())
      throw invalid_argument(where, qnas::detail::cat("start rung ", start, " is past the ladder's top (", ladder_.size() - 1, ")"));
    if (!(opt_.tighten_below < opt_.widen_above))
      throw invalid_argument(where, qnas::detail::cat("tighten_below (", opt_.tighten_below,
                                                      ") must be below widen_above (", opt_.widen_above,
                                                      "): the band between them is the hysteresis"));
    if (opt_.widen_patience < 1 || opt_.tighten_patience < 1)
      throw invalid_argument(where, "widen_patience and tighten_patience must be >= 1");
    state_.assign(layers, layer_state{start, 0, 0, false, 0, std::vector<int>(ladder_.size(), 0)});
    names_.resize(layers);
    for (std::size_t i = 0; i < layers; ++i) names_[i] = "layer" + std::to_string(i);
  }

  void set_layer_name(std::size_t layer, std::string name) { names_[checked(layer, "set_layer_name")] = std::move(name); }
  /// Called after every change (in addition to recording it in events()).
  void on_change(std::function<void(const adaptation_event&)> fn) { callback_ = std::move(fn); }

  [[nodiscard]] std::size_t layers() const noexcept { return state_.size(); }
  [[nodiscard]] std::size_t rung(std::size_t layer) const { return state_[checked(layer, "rung")].rung; }
  [[nodiscard]] const activation_codec& codec(std::size_t layer) const { return ladder_[rung(layer)]; }
  [[nodiscard]] const format_ladder& ladder() const noexcept { return ladder_; }
  [[nodiscard]] const std::vector<adaptation_event>& events() const noexcept { return events_; }

  /// Records one observation of `layer`'s degradation metric at training step `step`; returns
  /// true when the layer's format changed. A non-finite metric (a diverged loss) counts as
  /// above widen_above.
  bool observe(std::size_t step, std::size_t layer, double metric) {
    layer_state& s = state_[checked(layer, "observe")];
    const bool bad = !std::isfinite(metric) || metric > opt_.widen_above;
    const bool good = std::isfinite(metric) && metric < opt_.tighten_below;
    s.bad = bad ? s.bad + 1 : 0;
    s.good = good ? s.good + 1 : 0;
    if (s.changed && step < s.last_change + opt_.cooldown) return false;
    if (bad && s.bad >= opt_.widen_patience && s.rung + 1 < ladder_.size()) {
      ++s.failures[s.rung];
      return change(step, layer, s.rung + 1, metric,
                    qnas::detail::cat("metric ", metric, " above widen_above ", opt_.widen_above, " for ", s.bad,
                                      " observation(s)"));
    }
    if (good && s.rung > 0) {
      const int need = tighten_needed(s, s.rung - 1);
      if (s.good >= need)
        return change(step, layer, s.rung - 1, metric,
                      qnas::detail::cat("metric ", metric, " below tighten_below ", opt_.tighten_below, " for ", s.good,
                                        " observation(s)"));
    }
    return false;
  }

  /// One network-level metric for every layer (the same observation for each); returns the
  /// number of layers that changed.
  std::size_t observe_all(std::size_t step, double metric) {
    std::size_t n = 0;
    for (std::size_t l = 0; l < state_.size(); ++l) n += observe(step, l, metric) ? 1 : 0;
    return n;
  }

  /// Sets each store's format to its layer's current rung (stores[i] is layer i). The change
  /// takes effect at each store's next store().
  void apply(std::span<activation_store* const> stores) const {
    if (stores.size() != state_.size())
      throw invalid_argument("qnas::train::adaptive_compression::apply",
                             qnas::detail::cat(stores.size(), " stores for ", state_.size(), " layers"));
    for (std::size_t i = 0; i < stores.size(); ++i)
      if (!(stores[i]->codec() == codec(i))) stores[i]->set_codec(codec(i));
  }

 private:
  struct layer_state {
    std::size_t rung;
    int bad, good;
    bool changed;
    std::size_t last_change;
    std::vector<int> failures;  // widenings away from each rung
  };

  [[nodiscard]] std::size_t checked(std::size_t layer, const char* what) const {
    if (layer >= state_.size())
      throw invalid_argument(std::string("qnas::train::adaptive_compression::") + what,
                             qnas::detail::cat("layer ", layer, " is out of range (", state_.size(), " layers)"));
    return layer;
  }

  [[nodiscard]] int tighten_needed(const layer_state& s, std::size_t target) const {
    if (!opt_.backoff) return opt_.tighten_patience;
    const int f = std::min(s.failures[target], 20);
    return opt_.tighten_patience << f;
  }

  bool change(std::size_t step, std::size_t layer, std::size_t to, double metric, std::string reason) {
    layer_state& s = state_[layer];
    adaptation_event e{step,    layer, names_[layer], s.rung, to, ladder_[s.rung].name(), ladder_[to].name(),
                       metric,  std::move(reason)};
    s.rung = to;
    s.bad = s.good = 0;
    s.changed = true;
    s.last_change = step;
    events_.push_back(e);
    if (callback_) callback_(events_.back());
    return true;
  }

  format_ladder ladder_;
  adaptive_options opt_;
  std::vector<layer_state> state_;
  std::vector<std::string> names_;
  std::vector<adaptation_event> events_;
  std::function<void(const adaptation_event&)> callback_;
};

// ---- metrics ---------------------------------------------------------------------------------

/// sum((approx - reference)^2) / sum(reference^2): the error of a compressed tensor (or of a
/// layer output computed from compressed activations, or of a gradient) relative to the
/// uncompressed one; 1/SNR. 0 when both are all zeros, +inf when only the reference is.
inline double normalized_mse(std::span<const float> reference, std::span<const float> approx) {
  if (reference.size() != approx.size())
    throw invalid_argument("qnas::train::normalized_mse",
                           qnas::detail::cat("sizes differ (", reference.size(), " and ", approx.size(), ")"));
  double err = 0, sig = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i], d = static_cast<double>(approx[i]) - r;
    err += d * d;
    sig += r * r;
  }
  if (err == 0) return 0.0;
  return sig == 0 ? HUGE_VAL : err / sig;
}

/// (value - baseline) / |baseline|: a relative loss increase (positive = worse). A zero
/// baseline gives the absolute change.
inline double relative_increase(double baseline, double value) noexcept {
  return baseline == 0 ? value - baseline : (value - baseline) / std::fabs(baseline);
}

/// The probe: normalized_mse between `x` and what a store in `codec` would give back for it.
/// `scratch` receives the decoded values (resized; reused across calls).
inline double compression_error(const activation_codec& codec, std::span<const float> x,
                                std::span<const std::size_t> shape, std::vector<float>& scratch,
                                std::ptrdiff_t axis = last_axis) {
  thread_local std::vector<std::uint8_t> codes, headers;
  codec.encode(x, shape, axis, codes, headers);
  scratch.resize(x.size());
  codec.decode(codes, headers, shape, axis, scratch);
  return normalized_mse(x, scratch);
}

}  // namespace qnas::train
