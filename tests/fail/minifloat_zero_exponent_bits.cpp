// expect-error: minifloat<E, M, \.\.\.>: E \(exponent bits\) must be in \[1, 8\]
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<0, 3> f;
