// expect-error: QuadraticApproximation needs Bits >= 3 \(relu_po2: Bits >= 2\) unless MaxValue <= 1
#include "qnas/formats/po2.hpp"
qnas::po2_quadratic<2> f;  // QKeras min_exp = -1: 0 would map to 2^-1, not a power of four
