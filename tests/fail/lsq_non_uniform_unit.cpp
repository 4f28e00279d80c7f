// expect-error: lsq<Unit, Axis>: Unit must be a uniform fixed_point<B, I, KeepNegative, Symmetric>
#include "qnas/formats/learned.hpp"
#include "qnas/formats/po2.hpp"

// a learned step on a power-of-two grid, whose levels are not evenly spaced
int main() { return qnas::lsq<qnas::po2<4>>::bits; }
