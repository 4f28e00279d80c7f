// expect-error: initialize<Engine>: Engine must produce 32 or 64 full random bits
// std::minstd_rand yields 31-bit values in [1, 2^31 - 2]: the portable draws would be biased.
#include <random>

#include "qnas/train/init.hpp"

void f() {
  xt::xarray<float> w = xt::zeros<float>({4});
  std::minstd_rand e(1);
  qnas::train::initialize(w, qnas::train::init_scheme::he_uniform, e);
}
