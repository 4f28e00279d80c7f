// The whole public qnas API in one include.
#pragma once

#include "qnas/core/config.hpp"
#include "qnas/core/diagnostics.hpp"
#include "qnas/core/fixed_string.hpp"
#include "qnas/energy.hpp"
#include "qnas/formats.hpp"
#include "qnas/search.hpp"
#include "qnas/space.hpp"
