// expect-error: choice<Name, Values...>: Values must be distinct
#include "qnas/space/decision.hpp"
qnas::choice<"conv1.filters", 16, 32, 16> c;
