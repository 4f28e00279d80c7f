// expect-error: format_registry::add<F>: F has scales computed from the data
#include "qnas/formats/scaled.hpp"
#include "qnas/nn/export.hpp"

int main() {
  auto r = qnas::nn::format_registry::of<qnas::scaled<qnas::ternary<>, qnas::alpha_auto>>();
  return static_cast<int>(r.size());
}
