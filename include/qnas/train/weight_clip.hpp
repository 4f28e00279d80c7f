// Weight clipping for quantization-aware training: master weights kept inside their format's range (BinaryConnect).
//
// Backward uses the straight-through estimator clipped to the format's range (nn/layer.hpp):
// a float master weight outside [min_value, max_value] of its quantizer gets no gradient. A
// weight that initialisation puts there, or that an update pushes there, then never moves
// again: it is stuck at the range's edge value for the rest of the training. For a binary or
// ternary kernel whose scale is near the He-initialisation standard deviation that is about a
// third of the layer's weights from the first step. Clamping the master weights to the range
// after every update (Courbariaux et al., "BinaryConnect", 2015; Larq's `weight_clip`) keeps
// each weight on the range's edge or inside, where the gradient still reaches it. The forward
// pass is unchanged (a clamped weight quantizes to the same value as before).
#pragma once

#include <algorithm>

#include "qnas/nn/layer.hpp"
#include "qnas/train/callbacks.hpp"

namespace qnas::train {

/// Clamps the float master weights and bias of every layer with a weight or bias quantizer
/// under `root` (its children included: sequential, residual bodies) to [min_value, max_value]
/// of that quantizer's format. Float32 parameters are left alone.
inline void clip_quantized_weights(nn::layer& root) {
  const auto clamp = [](nn::parameter& p, const format_info& f) {
    const auto lo = static_cast<float>(f.min_value), hi = static_cast<float>(f.max_value);
    for (float& v : p.value) v = std::clamp(v, lo, hi);
  };
  if (auto* w = dynamic_cast<nn::weighted_layer*>(&root)) {
    if (!w->weight_quantizer().is_identity()) clamp(w->weights(), w->weight_quantizer().info());
    if (w->has_bias() && !w->bias_quantizer().is_identity()) clamp(w->bias(), w->bias_quantizer().info());
  }
  for (nn::layer* c : root.children()) clip_quantized_weights(*c);
}

/// Trainer callback: clip_quantized_weights(net) before the first step and after every step.
///
///     t.fit(train_set, nullptr, {.epochs = 8}, train::weight_clip{&net});
struct weight_clip {
  nn::layer* net = nullptr;
  void on_train_begin() const { clip_quantized_weights(*net); }
  void on_batch_end(const batch_stats&) const { clip_quantized_weights(*net); }
};

}  // namespace qnas::train
