// expect-error: binary01<ScaleExp, Threshold>: Threshold must be in \[0, 2\^ScaleExp\)
#include "qnas/formats/binary.hpp"
qnas::binary01<0, -0.5> f;
