// Engine overhead of every strategy on a 20-decision space: time of one ask + tell, median of
// repeated batches, against the targets (random, evolution <= 5 us; REINFORCE <= 20 us; LSTM
// controller <= 1 ms). Exits non-zero when a target is missed.
//
// Usage: bench_search_overhead [repetitions]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qnas/search/lstm_controller.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/reinforce.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {

// 20 decisions, 2..8 alternatives, half ordinal: the shape of a per-layer quantization space.
space_description space20() {
  std::vector<decision_info> ds;
  for (int i = 0; i < 20; ++i)
    ds.push_back({"layer" + std::to_string(i), i % 2 ? decision_kind::ordinal : decision_kind::categorical,
                  static_cast<std::size_t>(2 + i % 7), {}});
  return space_description(ds);
}

// A cheap, deterministic reward so the timing is the strategy's own work.
double reward_of(const candidate& c) {
  double r = 0;
  for (std::size_t i = 0; i < c.size(); ++i) r += (c[i] == i % 3) ? 1.0 : 0.0;
  return r;
}

// Median over `reps` batches of the seconds per (ask + tell), after `warmup` steps (evolution
// reaches its steady-state population, the policies move away from uniform).
template <class S>
double median_seconds(S& s, int warmup, int batch, int reps) {
  for (int i = 0; i < warmup; ++i) {
    const auto c = s.ask();
    s.tell(c, reward_of(c));
  }
  std::vector<double> t;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < batch; ++i) {
      const auto c = s.ask();
      const double rew = reward_of(c);
      s.tell(c, rew);
      sink = sink + rew;
    }
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / batch);
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[static_cast<std::size_t>(reps / 2)];
}

bool line(const char* name, double seconds, double target_seconds) {
  const bool ok = seconds <= target_seconds;
  std::printf("| %-36s | %10.3f | %10.1f | %6.1f%% | %-4s |\n", name, seconds * 1e6, target_seconds * 1e6,
              100.0 * seconds / target_seconds, ok ? "ok" : "MISS");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 21;
  const auto space = space20();
  std::printf("ask + tell on a 20-decision space (%.3g candidates), median of %d batches\n\n", space.size(), reps);
  std::printf("| %-36s | %-10s | %-10s | %-7s | %-4s |\n", "strategy", "us/cand", "target us", "of tgt", "");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(38, '-').c_str(), std::string(12, '-').c_str(),
              std::string(12, '-').c_str(), std::string(9, '-').c_str(), std::string(6, '-').c_str());
  bool ok = true;
  {
    random_search s(space, 1);
    ok &= line("random_search", median_seconds(s, 1000, 20000, reps), 5e-6);
  }
  {
    random_search s(space, {.deduplicate = true}, 1);
    ok &= line("random_search (deduplicate)", median_seconds(s, 1000, 2000, reps), 5e-6);
  }
  {
    regularized_evolution s(space, {.population_size = 100, .sample_size = 25}, 1);
    ok &= line("regularized_evolution (P=100, S=25)", median_seconds(s, 1000, 20000, reps), 5e-6);
  }
  {
    one_plus_one_evolution s(space, 1);
    ok &= line("one_plus_one_evolution", median_seconds(s, 1000, 20000, reps), 5e-6);
  }
  {
    reinforce s(space, 1);
    ok &= line("reinforce", median_seconds(s, 1000, 20000, reps), 20e-6);
  }
  {
    lstm_controller s(space, 1);  // hidden size 32
    ok &= line("lstm_controller (hidden 32)", median_seconds(s, 100, 200, reps), 1e-3);
  }
  {
    // Informational: the 1 ms target is for the default hidden size; cost grows as hidden^2.
    lstm_controller s(space, {.hidden_size = 64}, 1);
    (void)line("lstm_controller (hidden 64, no target)", median_seconds(s, 50, 100, reps), 1e-3);
  }
  return ok ? 0 : 1;
}
