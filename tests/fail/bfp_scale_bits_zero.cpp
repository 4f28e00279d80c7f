// expect-error: bfp<MantissaBits, BlockSize, ScaleBits>: ScaleBits must be in \[1, 16\]
#include "qnas/formats/bfp.hpp"
qnas::bfp<4, 16, 0> f;
