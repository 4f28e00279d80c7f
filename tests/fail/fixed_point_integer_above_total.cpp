// expect-error: Integer must be <= Bits - KeepNegative
#include "qnas/formats/fixed_point.hpp"
qnas::fixed_point<4, 5> f;
