// expect-error: overflow policy to_inf needs an encoding with Inf
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<3, 2, qnas::specials_finite, qnas::to_inf> f;
