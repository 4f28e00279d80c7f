// expect-error: dense<Units>: the input must be flat
// A dense layer straight after a convolution: the [14,14,16] image must be flattened first.
#include "qnas/nn.hpp"
using namespace qnas::nn;
using net = network<input<28, 28, 1>, conv2d<16, 3, 2>, relu, dense<10>>;
int main() { return static_cast<int>(net::param_count); }
