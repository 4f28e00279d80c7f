// expect-error: QuadraticApproximation takes Rounding = log2_nearest, toward_zero or stochastic
#include "qnas/formats/po2.hpp"
qnas::po2_quadratic<4, qnas::no_max_value, qnas::nearest_even> f;
