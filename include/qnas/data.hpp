// Data sets: the IDX reader (MNIST layout), the embedded synthetic data set, splits, batching.
#pragma once

#include "qnas/data/batching.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/data/fashion_mnist.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/data/random.hpp"
#include "qnas/data/synthetic.hpp"
