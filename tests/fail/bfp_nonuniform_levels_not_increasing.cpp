// expect-error: bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must be strictly increasing in \[0, 1\)
#include "qnas/formats/bfp_nonuniform.hpp"
struct unsorted {
  static constexpr std::array<double, 3> magnitudes{0.0, 0.75, 0.5};
};
qnas::bfp_nonuniform<3, 16, unsorted> f;
