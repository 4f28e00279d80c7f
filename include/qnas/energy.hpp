// The energy module: constexpr cost tables, operator mapping, per-layer and per-model
// energy, the bit-size metric, AutoQKeras' forgiving factor and a roofline latency model.
#pragma once

#include "qnas/energy/cost_table.hpp"
#include "qnas/energy/estimate.hpp"
#include "qnas/energy/forgiving.hpp"
#include "qnas/energy/horowitz_45nm.hpp"
#include "qnas/energy/latency.hpp"
#include "qnas/energy/layer.hpp"
#include "qnas/energy/operators.hpp"
#include "qnas/energy/qtools_compat.hpp"
#include "qnas/energy/size.hpp"
#include "qnas/energy/summary.hpp"
