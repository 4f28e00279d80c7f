// expect-error: bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels has more entries than MantissaBits - 1 index bits can address
#include "qnas/formats/bfp_nonuniform.hpp"
struct three {
  static constexpr std::array<double, 3> magnitudes{0.0, 0.25, 0.5};
};
qnas::bfp_nonuniform<2, 16, three> f;  // 1 index bit: 2 levels at most
