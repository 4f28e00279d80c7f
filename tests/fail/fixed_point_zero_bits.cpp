// expect-error: fixed_point<Bits, ...>: Bits must be in \[1, 24\]
#include "qnas/formats/fixed_point.hpp"
qnas::fixed_point<0, 0> f;
