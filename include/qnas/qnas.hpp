// The whole public qnas API in one include.
#pragma once

#include "qnas/core/config.hpp"
#include "qnas/core/diagnostics.hpp"
#include "qnas/core/fixed_string.hpp"
#include "qnas/data.hpp"
#include "qnas/energy.hpp"
#include "qnas/formats.hpp"
#include "qnas/nn.hpp"
#include "qnas/search.hpp"
#include "qnas/space.hpp"
#include "qnas/train.hpp"

// Bridges between modules: pricing nn networks, training search candidates, exporting
// networks to files (nn + io; kept out of nn.hpp so that networks compile without JSON and zlib).
#include "qnas/energy/network.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/nn/export.hpp"
#include "qnas/search/train_evaluator.hpp"
