// All number formats, their policies and the generic quantize/encode/decode operations.
#pragma once

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/bfp_nonuniform.hpp"
#include "qnas/formats/bfp_outlier.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/concept.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/ops.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/policies.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/formats/scale_axis.hpp"
#include "qnas/formats/scaled.hpp"
#include "qnas/formats/ternary.hpp"
