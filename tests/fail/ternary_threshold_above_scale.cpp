// expect-error: ternary<ScaleExp, Threshold>: Threshold must be in \(0, 2\^ScaleExp\]
#include "qnas/formats/ternary.hpp"
qnas::ternary<-1, 0.75> f;  // s = 0.5: a threshold above s would map s itself to 0
