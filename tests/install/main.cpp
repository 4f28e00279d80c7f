// Consumer of the installed qnas package: uses the public umbrella header and checks a value.
#include <qnas/qnas.hpp>

#include <cstdio>

int main() {
  xt::xarray<float> x = {0.3f, -0.7f, 1.5f};
  auto q = qnas::quantize<qnas::fixed_point<4, 0>>(x);  // step 1/8, range [-1, 7/8]
  const bool ok = q(0) == 0.25f && q(1) == -0.75f && q(2) == 0.875f;
  std::printf("qnas consumer: %s\n", ok ? "ok" : "WRONG VALUES");
  return ok ? 0 : 1;
}
