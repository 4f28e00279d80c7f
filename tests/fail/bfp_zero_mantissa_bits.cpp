// expect-error: bfp<MantissaBits, BlockSize>: MantissaBits must be in \[2, 24\]
#include "qnas/formats/bfp.hpp"
qnas::bfp<0, 16> f;
