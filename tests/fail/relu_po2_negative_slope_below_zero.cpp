// expect-error: relu_po2<Bits, MaxValue, Rounding, NegativeSlope>: NegativeSlope must be >= 0
#include "qnas/formats/po2.hpp"
qnas::relu_po2<4, qnas::no_max_value, qnas::log2_nearest, -0.5> f;
