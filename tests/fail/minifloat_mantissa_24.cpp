// expect-error: minifloat<E, M, \.\.\.>: M \(mantissa bits\) must be in \[0, 23\]
#include "qnas/formats/minifloat.hpp"
qnas::minifloat<5, 24> f;
