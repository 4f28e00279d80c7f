// A small, deterministic search for the fault tests: space, cheap evaluator, strategy and options.
//
// Shared by the program the kill-and-resume test kills (search_child.cpp), the fault tests and
// the MPI tests, so all of them run the very same search. The strategy is regularized evolution
// with a small population: its asks depend on every reward told, so a trial lost or told twice
// across a crash changes the rest of the search, and the comparison with an uninterrupted run
// catches it.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "qnas/io/jsonl.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/runner.hpp"

namespace cheap {

using namespace qnas;
using namespace qnas::search;

/// 8 decisions "layer<i>.bits" in {2, 4, 6, 8}: 65,536 candidates.
inline space_description space() {
  std::vector<decision_info> d;
  for (int i = 0; i < 8; ++i)
    d.push_back({"layer" + std::to_string(i) + ".bits", decision_kind::ordinal, 4, {"2", "4", "6", "8"}});
  return space_description(std::move(d));
}

/// accuracy falls with fewer bits (later layers matter more), energy grows with bits squared;
/// a seed-dependent term in [-0.0005, 0.0005] makes the per-trial seed visible in the results.
/// `sleep_us` stands in for training time so that a kill lands inside an evaluation; `ledger`
/// (a file opened O_APPEND) gets one line "<trial>\n" per evaluation started, so a test can
/// count how often each trial ran.
struct evaluator_fn {
  int sleep_us = 0;
  int ledger_fd = -1;
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if (ledger_fd >= 0) {
      const std::string line = std::to_string(ctx.trial) + "\n";
      if (::write(ledger_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        throw io_error("cheap::evaluator_fn", "cannot append to the evaluation ledger");
    }
    if (sleep_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    double acc = 0.99, e = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double b = 2.0 * (c[i] + 1);
      acc -= 0.02 * (1.0 + 0.25 * static_cast<double>(i)) * std::exp2(-(b - 2.0));
      e += (static_cast<double>(i) + 1.0) * b * b;
    }
    acc += 0.0005 * (static_cast<double>(ctx.seed % 2001) / 1000.0 - 1.0);
    return {{"accuracy", acc}, {"energy_pj", e}};
  }
};

/// reward = accuracy - 1e-5 * energy: a trade-off, so the best is not simply "all 8 bits".
struct objective_fn {
  double operator()(const metrics& m) const { return m.at("accuracy") - 1e-5 * m.at("energy_pj"); }
};

inline regularized_evolution make_strategy(std::uint64_t seed = 42) {
  return regularized_evolution(space(), regularized_evolution::options{8, 3, true}, seed);
}

/// Options of the reference search; checkpoints after every trial when a path is given.
inline runner_options options(std::size_t trials, const std::filesystem::path& dir) {
  runner_options o;
  o.max_trials = trials;
  o.evaluation_seed = 7;
  o.batch_size = 1;
  o.threads = 1;
  o.pareto_axes = {};
  if (!dir.empty()) {
    o.log_path = dir / "log.jsonl";
    o.checkpoint_path = dir / "checkpoint.json";
    o.checkpoint_every = 1;
    o.resume = true;
  }
  return o;
}

/// One log line without its wall time: what must be identical between two runs of one search.
inline nlohmann::json comparable(nlohmann::json j) {
  j.erase("wall_s");
  return j;
}

inline std::vector<nlohmann::json> comparable_log(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  for (auto& j : io::read_jsonl(file)) out.push_back(comparable(std::move(j)));
  return out;
}

}  // namespace cheap
