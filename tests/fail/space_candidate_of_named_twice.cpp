// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*conv1\.filters.*candidate_of<Space>\(\.\.\.\): the decision Name is given more than once
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>, qnas::choice<"conv1.kernel", 3, 5>>;
qnas::candidate f() {
  return qnas::candidate_of<s>(qnas::value<"conv1.filters", 16>, qnas::value<"conv1.kernel", 3>,
                               qnas::value<"conv1.filters", 32>);
}
