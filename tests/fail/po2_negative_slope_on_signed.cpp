// expect-error: NegativeSlope applies to the relu flavour only \(Signed = false; use relu_po2\)
#include "qnas/formats/po2.hpp"
qnas::po2<4, qnas::no_max_value, qnas::log2_nearest, true, false, 0.5> f;
