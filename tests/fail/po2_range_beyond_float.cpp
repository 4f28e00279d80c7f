// expect-error: po2<Bits, MaxValue>: the exponent range does not fit in float
#include "qnas/formats/po2.hpp"
qnas::po2<9, 1.0> f;  // no exponent sign bit: 2^8 exponents below 2^0 reach 2^-255
