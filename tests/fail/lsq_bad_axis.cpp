// expect-error: lsq<Unit, Axis>: Axis must be per_channel or per_tensor
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"

struct per_row {};

// a scale axis that is not one of the two the steps can follow
int main() { return qnas::lsq<qnas::fixed_point<4, 0>, per_row>::bits; }
