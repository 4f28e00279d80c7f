// expect-error: bfp_nonuniform<MantissaBits, BlockSize, Levels>: Levels must have a static constexpr std::array<double, N> magnitudes
#include "qnas/formats/bfp_nonuniform.hpp"
struct not_a_table {};
qnas::bfp_nonuniform<3, 16, not_a_table> f;
