// A trainable tensor and its gradient: what layers expose and optimizers update.
#pragma once

#include <string>

#include <xtensor/xarray.hpp>

namespace qnas::nn {

/// A named trainable tensor. Layers own their parameters and accumulate into `grad` during
/// backward; optimizers read `grad` and update `value`. `decay` says whether weight decay
/// applies (true for weights, false for biases and batch-norm scales/shifts).
struct parameter {
  std::string name;
  xt::xarray<float> value;
  xt::xarray<float> grad;
  bool decay = true;
};

}  // namespace qnas::nn
