// expect-error: scaled<Unit, Alpha, Axis>: Unit must be fixed_point<B, I, \.\.\.>, ternary<0, T> or binary<0>
#include "qnas/formats/bfp.hpp"
#include "qnas/formats/scaled.hpp"

// a scale per tensor or channel on a block format, which has its own per-block scales
int main() { return qnas::scaled<qnas::bfp<4, 16>, qnas::alpha_auto_po2<>>::bits; }
