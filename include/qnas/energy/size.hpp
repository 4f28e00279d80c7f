// Size metric: bits of parameters plus activations, the "bits" goal of AutoQKeras
// (autoqkeras/forgiving_metrics/forgiving_bits.py), on layer_desc values.
#pragma once

#include "qnas/energy/estimate.hpp"
#include "qnas/energy/layer.hpp"

namespace qnas::energy {

/// Model size in bits.
struct model_size {
  double parameter_bits = 0;   ///< weights and biases of MAC layers, in their formats
  double activation_bits = 0;  ///< the model input plus every activation layer's output
  [[nodiscard]] constexpr double total() const noexcept { return parameter_bits + activation_bits; }
};

/// Bits of a model's parameters and activations. As in AutoQKeras, an activation tensor is
/// counted where it is materialised: the model input and the output of each activation
/// layer (a conv/dense output feeds its fused activation and is not stored); pooling,
/// flatten and add outputs are not counted. Block formats include their shared scales.
constexpr model_size size_bits(model_view layers) {
  model_size s;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const layer_desc& l = layers[i];
    validate(l);
    if (i == 0) s.activation_bits += tensor_bits(elements(l.in), l.input);
    if (l.has_weights()) {
      s.parameter_bits += tensor_bits(l.weight_count(), l.weights);
      if (l.use_bias) s.parameter_bits += tensor_bits(l.bias_count(), l.bias);
    }
    if (l.kind == layer_kind::activation) s.activation_bits += tensor_bits(elements(l.out), l.output);
  }
  return s;
}

}  // namespace qnas::energy
