// expect-error: po2<Bits, MaxValue>: MaxValue must be > 0
#include "qnas/formats/po2.hpp"
qnas::po2<4, -1.0> f;
