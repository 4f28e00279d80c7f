// expect-error: dense<Units, Weights, \.\.\.>: Weights must be a number_format or unquantized
// `float` is not a qnas number format (use unquantized for float32).
#include "qnas/nn.hpp"
using namespace qnas::nn;
using net = network<input<16>, dense<4, float>>;
int main() { return static_cast<int>(net::param_count); }
