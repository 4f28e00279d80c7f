// expect-error: binary<ScaleExp>: ScaleExp must be in \[-126, 126\]
#include "qnas/formats/binary.hpp"
qnas::binary<200> f;
