// expect-error: scaled<Unit, Alpha, Axis>: Alpha must be alpha_auto, alpha_auto_po2<\.\.\.> or alpha_const<A>
#include "qnas/formats/scaled.hpp"

struct my_alpha {};
int main() { return qnas::scaled<qnas::ternary<>, my_alpha>::bits; }
