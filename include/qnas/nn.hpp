// qnas::nn: layers, networks (compile-time and run-time) and their forward/backward passes.
#pragma once

#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/fold.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/mobilenet.hpp"
#include "qnas/nn/network.hpp"
#include "qnas/nn/parameter.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/nn/shape.hpp"
#include "qnas/nn/spec.hpp"
