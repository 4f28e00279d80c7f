// expect-error: binary01<ScaleExp, Threshold, ZeroToScale>: ZeroToScale \(QKeras use_01: x >= 0 -> 2\^ScaleExp\) needs Threshold == 0
#include "qnas/formats/binary.hpp"
qnas::binary01<0, 0.5, true> f;
