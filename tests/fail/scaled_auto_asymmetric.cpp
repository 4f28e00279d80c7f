// expect-error: scaled<Unit, Alpha, Axis>: with an auto Alpha, a fixed_point Unit must be signed and symmetric
#include "qnas/formats/scaled.hpp"

// QKeras forces symmetric=True for alpha='auto' / 'auto_po2'
int main() { return qnas::scaled<qnas::fixed_point<4, 0>, qnas::alpha_auto>::bits; }
