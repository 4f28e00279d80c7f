// expect-error: mx<Element, BlockSize, ScalePolicy>: Element must be a scalar number format
#include "qnas/formats/mx.hpp"
qnas::mx<qnas::mxfp8_e4m3> f;
