// expect-error: overflow policy to_nan needs a NaN code
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<2, 1, qnas::specials_finite, qnas::to_nan> f;
