// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*s0\.filter[^s].*supernet_spec_for<Space>: the space has no decision with this Name
#include "qnas/formats/fixed_point.hpp"
#include "qnas/search/supernet.hpp"

// a misspelt decision name ("s0.filter" for "s0.filters") is caught where the spec is written
using space_t = qnas::space<qnas::choice<"s0.filters", 8, 16>, qnas::choice<"s0.kernel", 3, 5>,
                            qnas::type_choice<"s0.w", qnas::fixed_point<8, 0>, qnas::fixed_point<4, 0>>>;
int main() {
  qnas::supernet_spec_for<space_t> spec(qnas::nn::image(8, 8, 1));
  spec.conv<"s0.filter", "s0.kernel", "s0.w">();
  return static_cast<int>(spec.stages.size());
}
