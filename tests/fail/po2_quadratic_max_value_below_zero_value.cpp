// expect-error: MaxValue is below 2\^min_exp, the value QKeras gives to 0 under QuadraticApproximation
#include "qnas/formats/po2.hpp"
qnas::po2_quadratic<3, 0.015625> f;  // largest 4^-3 = 2^-6, but 0 -> 2^-4
