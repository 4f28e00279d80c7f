#include "qnas/formats/fixed_point.hpp"
qnas::fixed_point<0, 0> f;
