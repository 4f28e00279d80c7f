// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*conv1\.w.*candidate_of<Space>\(value<Name, V> / type<Name, T>, \.\.\.\): V / T is not one of the alternatives of decision Name
#include "qnas/formats/fixed_point.hpp"
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>,
                      qnas::type_choice<"conv1.w", qnas::fixed_point<8, 0>, qnas::fixed_point<4, 0>>>;
qnas::candidate f() {
  return qnas::candidate_of<s>(qnas::value<"conv1.filters", 16>, qnas::type<"conv1.w", qnas::fixed_point<2, 0>>);
}
