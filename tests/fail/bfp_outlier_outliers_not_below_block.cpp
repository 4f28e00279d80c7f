// expect-error: bfp_outlier<MantissaBits, BlockSize, Outliers, \.\.\.>: Outliers must be in \[1, BlockSize - 1\]
#include "qnas/formats/bfp_outlier.hpp"
qnas::bfp_outlier<4, 16, 16, 2> f;  // every element an outlier: use bfp with more bits
