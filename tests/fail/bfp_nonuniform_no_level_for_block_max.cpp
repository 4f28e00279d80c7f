// expect-error: bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must round every magnitude in \[0\.5, 1\) to a level >= 0\.5
#include "qnas/formats/bfp_nonuniform.hpp"
struct low_levels {  // the block maximum would fall to 0.3 and the block's exponent with it
  static constexpr std::array<double, 4> magnitudes{0.0, 0.1, 0.2, 0.3};
};
qnas::bfp_nonuniform<3, 16, low_levels> f;
