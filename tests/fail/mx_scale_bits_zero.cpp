// expect-error: mx<Element, BlockSize, ScalePolicy, ScaleBits>: ScaleBits must be in \[1, 8\]
#include "qnas/formats/mx.hpp"

int main() { return qnas::mx<qnas::fp8_e4m3, 32, qnas::scale_floor, 0>::bits; }
