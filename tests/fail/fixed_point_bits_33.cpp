// expect-error: fixed_point<Bits, Integer, \.\.\.>: Bits must be in \[1, 32\]
#include "qnas/formats/fixed_point.hpp"
qnas::fixed_point<33, 0> f;  // codes are at most 32 bits
