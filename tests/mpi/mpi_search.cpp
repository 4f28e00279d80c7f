// MPI runner acceptance test, launched as `mpirun -np 3 mpi_search <same|faults> <dir>`.
//
// same:   the cheap search over MPI (2 workers, batches of 4) gives the same log, checkpoint
//         history and best candidate as the thread runner with the same options.
// faults: worker rank 2 stops answering after 2 trials and worker rank 1 is slow once (3x the
//         timeout); the search still completes, every trial is in the log exactly once with
//         the thread runner's values, the event log shows the timeouts and the retry, and the
//         retried trial carries "mpi_retries".
// crash:  run under tools/qnas-mpi-restart: on the first launch the worker rank that gets
//         trial 9 SIGKILLs itself (which rank that is depends on scheduling), and Open MPI ends the whole job; the relaunched job resumes from the
//         checkpoint and finishes with every trial in the log exactly once and the thread
//         runner's values; the ledger shows the trials the first launch evaluated.
// Rank 0 checks and exits non-zero on a mismatch (mpirun then fails).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <filesystem>
#include <string>
#include <thread>

#include "../robustness/cheap_search.hpp"
#include "qnas/search/checkpoint.hpp"
#include "qnas/search/mpi_runner.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::search;

namespace {

constexpr std::size_t trials = 24;

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "mpi_search: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

/// The cheap evaluator, slow once on rank 1 (trial `slow_trial`) in the faults mode; in the
/// crash mode the worker evaluating trial `crash_trial` dies unless `crash_marker` exists (it
/// creates it first, so only the first launch dies). Any worker may get that trial: which one
/// does depends on timing, so tying the crash to one rank would make the test flaky.
struct maybe_slow {
  cheap::evaluator_fn base{1000, -1};
  int rank = 0;
  std::size_t slow_trial = static_cast<std::size_t>(-1);
  double slow_s = 0;
  std::size_t crash_trial = static_cast<std::size_t>(-1);
  fs::path crash_marker;
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if (rank == 1 && ctx.trial == slow_trial)
      std::this_thread::sleep_for(std::chrono::duration<double>(slow_s));
    if (rank != 0 && ctx.trial == crash_trial && !fs::exists(crash_marker)) {
      std::ofstream(crash_marker) << "worker rank " << rank << " killed itself in trial " << ctx.trial << "\n";
      std::raise(SIGKILL);
    }
    return base(c, ctx);
  }
};

std::vector<nlohmann::json> without(std::vector<nlohmann::json> log, const char* metric) {
  for (auto& j : log) j["metrics"].erase(metric);
  return log;
}

}  // namespace

int main(int argc, char** argv) {
  mpi::session mpi_session(argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: mpirun -np 3 %s <same|faults> <dir>\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const fs::path dir = argv[2];
  const int rank = mpi_session.rank();
  const bool crash = mode == "crash";
  if (rank == 0) {
    if (!crash) fs::remove_all(dir);  // the crash mode's relaunch resumes from what is there
    fs::remove_all(dir / "threads");
    fs::create_directories(dir / "mpi");
    fs::create_directories(dir / "threads");
  }
  MPI_Barrier(MPI_COMM_WORLD);

  auto opt = cheap::options(trials, dir / "mpi");
  opt.batch_size = 4;
  opt.checkpoint_every = 4;
  mpi::mpi_options mo;
  mo.event_log = dir / "mpi" / "events.jsonl";
  mpi::worker_options wo;
  maybe_slow eval;
  eval.rank = rank;
  if (mode == "faults") {
    mo.timeout_s = 0.5;
    if (rank == 2) wo.stop_answering_after = 2;
    eval.slow_trial = 13;
    eval.slow_s = 1.5;
  }
  int ledger = -1;
  if (crash) {
    opt.checkpoint_every = 1;
    eval.crash_trial = 9;
    eval.crash_marker = dir / "crashed";
    ledger = ::open((dir / "mpi" / "evaluations.txt").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    eval.base.ledger_fd = ledger;
  }
  auto strategy = cheap::make_strategy();
  std::optional<search_result> res;
  try {
    res = mpi::run_search_mpi(strategy, eval, cheap::objective_fn{}, opt, mo, wo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_search: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank != 0) return 0;

  // The thread runner with the same options (2 threads, as many as workers).
  auto topt = cheap::options(trials, dir / "threads");
  topt.batch_size = 4;
  topt.checkpoint_every = 4;
  topt.threads = 2;
  auto s2 = cheap::make_strategy();
  const auto ref = run_search(s2, cheap::evaluator_fn{1000, -1}, cheap::objective_fn{}, topt);

  const auto mpi_log = cheap::comparable_log(dir / "mpi" / "log.jsonl");
  const auto thr_log = cheap::comparable_log(dir / "threads" / "log.jsonl");
  expect(mpi_log.size() == trials, "every trial is in the MPI log once");
  for (std::size_t i = 0; i < mpi_log.size(); ++i)
    expect(mpi_log[i].at("trial").get<std::size_t>() == i, "trial " + std::to_string(i) + " in order");
  expect(res->best_trial().index == ref.best_trial().index && res->best_trial().cand == ref.best_trial().cand,
         "same best trial as the thread runner");
  const auto ckpt = load_checkpoint(dir / "mpi" / "checkpoint.json", cheap::space());
  expect(ckpt.history.size() == trials, "the checkpoint holds every trial");

  std::size_t timeouts = 0, retries = 0, retried_trials = 0;
  for (const auto& e : io::read_jsonl(dir / "mpi" / "events.jsonl")) {
    timeouts += e["event"] == "timeout";
    retries += e["event"] == "retry";
  }
  for (const auto& j : mpi_log) retried_trials += j["metrics"].contains("mpi_retries");
  if (crash) {
    // The relaunch found the checkpoint: the first launch got as far as the crash, then both
    // launches together evaluated every trial, the ones in flight at the crash twice at most.
    std::map<std::size_t, int> evaluated;
    std::ifstream in(dir / "mpi" / "evaluations.txt");
    for (std::size_t t; in >> t;) ++evaluated[t];
    std::size_t starts = 0;
    for (const auto& e : io::read_jsonl(dir / "mpi" / "events.jsonl")) starts += e["event"] == "start";
    expect(fs::exists(dir / "crashed"), "a worker rank died in the first launch");
    expect(starts == 2, "two launches in the event log, got " + std::to_string(starts));
    expect(evaluated.size() == trials, "every trial evaluated");
    for (const auto& [t, n] : evaluated) expect(n <= 2, "trial " + std::to_string(t) + " evaluated at most twice");
    expect(mpi_log == thr_log, "after the restart the MPI log equals the thread runner's (wall times aside)");
  } else if (mode == "same") {
    expect(mpi_log == thr_log, "the MPI log equals the thread runner's (wall times aside)");
    expect(timeouts == 0 && retries == 0, "no timeouts without faults");
  } else {
    expect(without(mpi_log, "mpi_retries") == thr_log,
           "with a silent and a slow worker, the log still equals the thread runner's (mpi_retries aside)");
    expect(timeouts >= 2, "the event log shows the silent worker's and the slow worker's timeouts");
    expect(retries >= 1, "the event log shows the retry");
    expect(retried_trials >= 1, "a retried trial carries mpi_retries in the trial log");
  }
  std::printf("mpi_search %s: %zu trials, best trial %zu, %zu timeouts, %zu retries, %d failures\n", mode.c_str(),
              mpi_log.size(), res->best_trial().index, timeouts, retries, failures);
  return failures == 0 ? 0 : 1;
}
