// expect-error: relu_po2<Bits, MaxValue, Rounding, NegativeSlope>: NegativeSlope must be 0 or a power of two
#include "qnas/formats/po2.hpp"
qnas::relu_po2<4, qnas::no_max_value, qnas::log2_nearest, 0.3> f;  // QKeras asserts log2(0.3) is an integer
