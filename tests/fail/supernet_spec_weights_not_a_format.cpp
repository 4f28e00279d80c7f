// expect-error: Name = qnas::fixed_string<[0-9]+>[^a-z]*s0\.filters.*supernet_spec_for<Space>: a weights, activations or head decision Name must be a type_choice<Name, number formats\.\.\.>
#include "qnas/formats/fixed_point.hpp"
#include "qnas/search/supernet.hpp"

// the filters decision given as the weight format
using space_t = qnas::space<qnas::choice<"s0.filters", 8, 16>, qnas::choice<"s0.kernel", 3, 5>,
                            qnas::type_choice<"s0.w", qnas::fixed_point<8, 0>, qnas::fixed_point<4, 0>>>;
int main() {
  qnas::supernet_spec_for<space_t> spec(qnas::nn::image(8, 8, 1));
  spec.conv<"s0.filters", "s0.kernel", "s0.filters">();
  return static_cast<int>(spec.stages.size());
}
