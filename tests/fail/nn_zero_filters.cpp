// expect-error: conv2d<Filters, \.\.\.>: Filters must be > 0
#include "qnas/nn.hpp"
using namespace qnas::nn;
using net = network<input<8, 8, 1>, conv2d<0, 3>, flatten, dense<2>>;
int main() { return static_cast<int>(net::param_count); }
