// expect-error: fixed_point<Bits, \.\.\.>: Bits must be in \[1, 24\] \(float-exact codes\) or \[25, 32\] \(int32 codes\)
#include "qnas/formats/fixed_point.hpp"
qnas::fixed_point<33, 0> f;  // codes are at most 32 bits
