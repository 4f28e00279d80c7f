// expect-error: Policies names more than one rounding policy
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<4, 3, qnas::nearest_even, qnas::stochastic> f;
