// expect-error: mx<Element, BlockSize, ScalePolicy>: BlockSize must be
#include "qnas/formats/mx.hpp"
qnas::mx<qnas::fp8_e4m3, 0> f;
