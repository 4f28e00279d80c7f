// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*conv2\.filters.*candidate_of<Space>\(value<Name, V> / type<Name, T>, \.\.\.\): the space has no decision with this Name
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>>;
qnas::candidate f() { return qnas::candidate_of<s>(qnas::value<"conv2.filters", 16>); }
