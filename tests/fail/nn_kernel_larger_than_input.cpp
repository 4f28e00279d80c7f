// expect-error: Kernel of a valid-padding convolution or pool is larger than its input
// A 5x5 valid convolution on a 4x4 image has no output position.
#include "qnas/nn.hpp"
using namespace qnas::nn;
using net = network<input<4, 4, 1>, conv2d<8, 5, 1, padding::valid>, flatten, dense<2>>;
int main() { return static_cast<int>(net::param_count); }
