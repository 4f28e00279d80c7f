// expect-error: get<Name>/visit<Name>: the space has no decision with this Name
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>>;
int f(const qnas::candidate& c) { return qnas::get<"conv2.filters">(s{}, c); }
