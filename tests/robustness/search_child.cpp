// The search program the kill-and-resume test runs and kills: the cheap search, resumed from
// <dir>/checkpoint.json when it exists, checkpointing after every trial.
//
// usage: qnas_robustness_search_child <dir> <trials> <sleep_us>
// Appends one line per evaluation started to <dir>/evaluations.txt; exits 0 when the search
// completed, 1 with the error on stderr otherwise.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "cheap_search.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <dir> <trials> <sleep_us>\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    const auto trials = static_cast<std::size_t>(std::stoul(argv[2]));
    const int ledger = ::open((dir / "evaluations.txt").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ledger < 0) throw qnas::io_error("search_child", "cannot open the evaluation ledger");
    auto strategy = cheap::make_strategy();
    const auto res = qnas::search::run_search(strategy, cheap::evaluator_fn{std::stoi(argv[3]), ledger},
                                              cheap::objective_fn{}, cheap::options(trials, dir));
    ::close(ledger);
    std::printf("best trial %zu reward %.17g\n", res.best_trial().index, *res.best_trial().reward);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_child: %s\n", e.what());
    return 1;
  }
}
