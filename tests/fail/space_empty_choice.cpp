// expect-error: choice<Name, Values...>: Values must not be empty
#include "qnas/space/decision.hpp"
qnas::choice<"conv1.filters"> c;
