// expect-error: bfp_outlier<MantissaBits, BlockSize, Outliers, ExtraBits>: ExtraBits must be in \[1, 24 - MantissaBits\]
#include "qnas/formats/bfp_outlier.hpp"
qnas::bfp_outlier<4, 16, 1, 0> f;
