// Batch-norm folding for inference: conv/dense + batch_norm become one layer with scaled weights.
#pragma once

#include <cmath>
#include <cstddef>

#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::nn {

namespace detail {
/// Scales the last axis of w by s and rewrites the bias: b' = (b - mean) * s + beta, where
/// s = gamma / sqrt(running_var + eps). Every weighted layer here keeps output channels on the
/// last weight axis (dense [in, out], conv2d [k, k, cin, cout], depthwise [k, k, c]).
inline void fold_into(weighted_layer& l, batch_norm_layer& bn) {
  const std::size_t c = bn.output_shape().c;
  parameter& w = l.weights();
  parameter& b = l.bias();
  std::vector<float> s(c);
  for (std::size_t j = 0; j < c; ++j)
    s[j] = bn.gamma().value.data()[j] / std::sqrt(bn.running_var()[j] + bn.epsilon());
  float* wv = w.value.data();
  for (std::size_t i = 0; i < w.value.size(); ++i) wv[i] *= s[i % c];
  if (b.value.size() != c) {  // a layer without bias gets one: the folded shift needs it
    b.value = xt::zeros<float>({c});
    b.grad = xt::zeros<float>({c});
  }
  float* bv = b.value.data();
  for (std::size_t j = 0; j < c; ++j) bv[j] = (bv[j] - bn.running_mean()[j]) * s[j] + bn.beta().value.data()[j];
}
}  // namespace detail

/// Folds every batch_norm that directly follows a dense, conv2d or depthwise_conv2d layer (with
/// an unquantized output, so that the two are one affine map) into that layer, using the running
/// statistics, and removes the batch_norm. Descends into residual blocks and nested sequentials.
/// Inference outputs are unchanged up to float rounding (weight quantizers, if any, then apply
/// to the folded weights, which is what a deployed integer model computes). Returns the number
/// of batch norms folded. Do this after training: the folded network trains differently.
/// A layer whose weights learn their quantization steps (lsq) keeps its batch norm: the steps
/// were learned for the unfolded weights, and folding would move the weights off their grid.
inline std::size_t fold_batch_norm(sequential& net) {
  std::size_t folded = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    layer& l = net[i];
    if (auto* s = dynamic_cast<sequential*>(&l)) folded += fold_batch_norm(*s);
    if (auto* r = dynamic_cast<residual_layer*>(&l)) folded += fold_batch_norm(r->body());
    if (i + 1 >= net.size()) break;
    auto* w = dynamic_cast<weighted_layer*>(&l);
    auto* bn = dynamic_cast<batch_norm_layer*>(&net[i + 1]);
    if (!w || !bn || !w->output_quantizer().is_identity() || w->weight_quantizer().learned()) continue;
    detail::fold_into(*w, *bn);
    w->enable_bias();
    net.erase(i + 1);
    ++folded;
  }
  return folded;
}

}  // namespace qnas::nn
