// expect-error: each of Policies must be a special-value encoding
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<4, 3, int> f;
