// expect-error: qnas supernet: a format decision's alternatives must not learn their steps \(lsq\)
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/search/supernet.hpp"

// supernet branches share weights and keep no step parameters
using space_t = qnas::space<qnas::type_choice<"w", qnas::fixed_point<4, 0>, qnas::lsq<qnas::fixed_point<4, 0>>>>;
int main() { return static_cast<int>(qnas::format_table_of<space_t>().size()); }
