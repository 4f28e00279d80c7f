// expect-error: format_registry::add<F>: F rounds stochastically
// An exported model must give the same outputs on every run: a stochastic-rounding format
// cannot be registered for export.
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn/export.hpp"
int main() {
  qnas::nn::format_registry r;
  r.add<qnas::fixed_point<8, 0, true, false, qnas::stochastic>>();
  return 0;
}
