// expect-error: residual<Layers...>: the block's output shape must equal its input shape
// The block maps 4 channels to 8, so x + f(x) is undefined.
#include "qnas/nn.hpp"
using namespace qnas::nn;
using net = network<input<8, 8, 4>, residual<conv2d<8, 3>, relu>, global_avg_pool, dense<2>>;
int main() { return static_cast<int>(net::param_count); }
