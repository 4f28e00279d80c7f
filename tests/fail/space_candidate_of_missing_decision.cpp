// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*conv1\.w.*candidate_of<Space>\(\.\.\.\): decision Name has no value; name every decision of the space
#include "qnas/formats/fixed_point.hpp"
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>,
                      qnas::type_choice<"conv1.w", qnas::fixed_point<8, 0>, qnas::fixed_point<4, 0>>>;
qnas::candidate f() { return qnas::candidate_of<s>(qnas::value<"conv1.filters", 16>); }
