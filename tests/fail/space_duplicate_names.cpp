// expect-error: space<Decisions...>: decision names must be unique
#include "qnas/space/space.hpp"
using s = qnas::space<qnas::choice<"conv1.filters", 16, 32>, qnas::choice<"conv1.filters", 8, 16>>;
constexpr auto n = s::num_decisions;
