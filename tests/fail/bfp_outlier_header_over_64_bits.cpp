// expect-error: bfp_outlier<MantissaBits, BlockSize, Outliers, ExtraBits, ScaleBits>: the block header .* must fit in 64 bits
#include "qnas/formats/bfp_outlier.hpp"
qnas::bfp_outlier<4, 64, 8, 4> f;  // 8 + 8 * (6 + 4) = 88 header bits
