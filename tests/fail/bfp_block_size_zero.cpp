// expect-error: bfp<MantissaBits, BlockSize>: BlockSize must be in \[2, 4096\]
#include "qnas/formats/bfp.hpp"
qnas::bfp<4, 0> f;
