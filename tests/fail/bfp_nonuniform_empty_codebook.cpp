// expect-error: bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must not be empty
#include "qnas/formats/bfp_nonuniform.hpp"
struct no_levels {
  static constexpr std::array<double, 0> magnitudes{};
};
qnas::bfp_nonuniform<4, 16, no_levels> f;
