// expect-error: layer_description_is_impossible
// A fixed network with an impossible layer (zero-sized kernel) fails to compile when it is
// priced in a constant expression.
#include "qnas/energy.hpp"

constexpr qnas::energy::layer_desc zero_kernel() {
  auto c = qnas::energy::conv2d("c", {8, 8, 3}, 4, 3);
  c.kernel_w = 0;
  return c;
}
static_assert(qnas::energy::price_layer<qnas::energy::horowitz_45nm>(zero_kernel()).op > 0);
