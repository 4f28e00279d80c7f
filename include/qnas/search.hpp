// The search engine: strategies (ask/tell), objectives and constraints, the Pareto archive,
// evaluators, the parallel runner with logs, checkpoints and reports, block scheduling.
#pragma once

#include "qnas/search/block_schedule.hpp"
#include "qnas/search/callbacks.hpp"
#include "qnas/search/checkpoint.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/lstm_controller.hpp"
#include "qnas/search/nasbench201.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/search/parallel.hpp"
#include "qnas/search/pareto.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/reinforce.hpp"
#include "qnas/search/retrain.hpp"
#include "qnas/search/runner.hpp"
#include "qnas/search/strategy.hpp"
#include "qnas/search/tunas.hpp"
