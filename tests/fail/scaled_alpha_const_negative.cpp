// expect-error: alpha_const<A>: A must be a finite number > 0
#include "qnas/formats/scaled.hpp"

int main() { return qnas::scaled<qnas::binary<>, qnas::alpha_const<-1.0>>::bits; }
