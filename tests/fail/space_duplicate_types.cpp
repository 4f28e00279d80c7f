// expect-error: type_choice<Name, Ts...>: Ts must be distinct
#include "qnas/space/decision.hpp"
qnas::type_choice<"conv1.op", int, long, int> c;
