// Search spaces: decision types, spaces as types, candidates and their run-time description.
#pragma once

#include "qnas/space/candidate.hpp"
#include "qnas/space/decision.hpp"
#include "qnas/space/quantizer_choice.hpp"
#include "qnas/space/space.hpp"
