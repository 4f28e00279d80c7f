// expect-error: po2<Bits, \.\.\.>: Bits must be in \[2, 9\]
#include "qnas/formats/po2.hpp"
qnas::po2<0> f;
