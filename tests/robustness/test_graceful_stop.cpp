// A search asked to stop (SIGTERM / SIGINT) finishes the batch in flight, writes a final
// checkpoint and resumes to the uninterrupted result; a second signal ends the process at once;
// an evaluator that throws either ends the run or, when asked, fails only its trial.
#include <doctest/doctest.h>

#include <csignal>
#include <sstream>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#include "cheap_search.hpp"
#include "qnas/search/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::search;

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("qnas_test_graceful_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// The cheap evaluator that sends its own process `sig` when it starts the trials in `at`
/// (as a user's Ctrl-C or a scheduler's SIGTERM arriving during an evaluation).
struct signalling_evaluator {
  int sig = SIGTERM;
  std::size_t at = 0;
  std::size_t again_at = static_cast<std::size_t>(-1);
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if (ctx.trial == at || ctx.trial == again_at) ::kill(::getpid(), sig);
    return cheap::evaluator_fn{}(c, ctx);
  }
};

/// Throws for every trial whose index is a multiple of 5.
struct flaky_evaluator {
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if (ctx.trial % 5 == 0) throw std::runtime_error("out of memory in trial " + std::to_string(ctx.trial));
    return cheap::evaluator_fn{}(c, ctx);
  }
};

}  // namespace

TEST_CASE("SIGTERM or SIGINT: the batch in flight finishes, a final checkpoint is written, resume is exact") {
  for (const int sig : {SIGTERM, SIGINT}) {
    CAPTURE(sig);
    scratch ref("ref"), cut("cut");
    auto s_ref = cheap::make_strategy();
    runner_options o_ref = cheap::options(24, ref.dir);
    o_ref.batch_size = 4;
    run_search(s_ref, cheap::evaluator_fn{}, cheap::objective_fn{}, o_ref);

    struct sigaction before {};
    sigaction(sig, nullptr, &before);
    auto s1 = cheap::make_strategy();
    runner_options o1 = cheap::options(24, cut.dir);
    o1.batch_size = 4;
    o1.threads = 2;
    o1.checkpoint_every = 100;  // only the final checkpoint can hold the stopped session's trials
    const search_result r1 = run_search(s1, signalling_evaluator{sig, 9}, cheap::objective_fn{}, o1);
    CHECK(r1.reason == stop_reason::signal);
    CHECK(r1.stop_signal == sig);
    CHECK(r1.history.size() == 12);  // trial 9 is in the batch 8..11, which completes
    const checkpoint_state st = load_checkpoint(o1.checkpoint_path, cheap::space());
    CHECK(st.trials == 12);

    // The runner's handler is gone after the run: what was there before is back.
    struct sigaction now {};
    sigaction(sig, nullptr, &now);
    CHECK((now.sa_handler == before.sa_handler));

    auto s2 = cheap::make_strategy();
    const search_result r2 = run_search(s2, cheap::evaluator_fn{}, cheap::objective_fn{}, o1);
    CHECK(r2.reason == stop_reason::max_trials);
    CHECK(cheap::comparable_log(o1.log_path) == cheap::comparable_log(o_ref.log_path));
  }
}

TEST_CASE("a program's own signal handlers are back after the search") {
  static volatile std::sig_atomic_t seen = 0;
  struct sigaction mine {}, old {};
  mine.sa_handler = [](int) { seen = 1; };
  sigemptyset(&mine.sa_mask);
  REQUIRE(sigaction(SIGTERM, &mine, &old) == 0);
  auto s = cheap::make_strategy();
  const search_result r = run_search(s, cheap::evaluator_fn{}, cheap::objective_fn{}, cheap::options(5, {}));
  CHECK(r.reason == stop_reason::max_trials);
  ::kill(::getpid(), SIGTERM);
  CHECK(seen == 1);
  sigaction(SIGTERM, &old, nullptr);
}

TEST_CASE("stop_on_signals = false leaves the signals alone") {
  static volatile std::sig_atomic_t seen = 0;
  struct sigaction mine {}, old {};
  mine.sa_handler = [](int) { seen = 1; };
  sigemptyset(&mine.sa_mask);
  REQUIRE(sigaction(SIGINT, &mine, &old) == 0);
  auto s = cheap::make_strategy();
  runner_options o = cheap::options(8, {});
  o.stop_on_signals = false;
  const search_result r = run_search(s, signalling_evaluator{SIGINT, 2}, cheap::objective_fn{}, o);
  CHECK(r.reason == stop_reason::max_trials);
  CHECK(r.history.size() == 8);
  CHECK(seen == 1);
  sigaction(SIGINT, &old, nullptr);
}

TEST_CASE("a second signal ends the process at once") {
  scratch dir("second");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto s = cheap::make_strategy();
    runner_options o = cheap::options(40, dir.dir);
    o.batch_size = 8;
    // SIGTERM at trial 1 and again at trial 3, both inside the first batch: the second one kills.
    try {
      run_search(s, signalling_evaluator{SIGTERM, 1, 3}, cheap::objective_fn{}, o);
    } catch (...) {
    }
    ::_exit(0);  // reached only when the second signal did not end the process
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGTERM);
  // It died inside the first batch: no checkpoint holds any trial of it.
  CHECK_FALSE(fs::exists(dir.dir / "checkpoint.json"));
}

TEST_CASE("on_evaluator_error: stop ends the run with the evaluator's exception") {
  auto s = cheap::make_strategy();
  runner_options o = cheap::options(12, {});
  CHECK_THROWS_WITH_AS(run_search(s, flaky_evaluator{}, cheap::objective_fn{}, o), "out of memory in trial 0",
                       std::runtime_error);
}

TEST_CASE("on_evaluator_error: record fails the trial, tells rejected_reward, logs it and resumes") {
  scratch a("record_a"), b("record_b");
  auto run = [](const fs::path& dir, std::size_t trials) {
    auto s = cheap::make_strategy();
    runner_options o = cheap::options(trials, dir);
    o.batch_size = 3;
    o.threads = 2;
    o.rejected_reward = -1.0;
    o.on_evaluator_error = evaluator_error_policy::record;
    return run_search(s, flaky_evaluator{}, cheap::objective_fn{}, o);
  };
  const search_result whole = run(a.dir, 20);
  REQUIRE(whole.history.size() == 20);
  CHECK(whole.failed == 4);
  CHECK(whole.rejected == 0);
  for (const auto& r : whole.history) {
    CAPTURE(r.index);
    CHECK(r.failed() == (r.index % 5 == 0));
    if (r.failed()) {
      CHECK(*r.error == "out of memory in trial " + std::to_string(r.index));
      CHECK(*r.reward == -1.0);
      CHECK_FALSE(r.trained());
    }
  }
  CHECK(whole.best_trial().index % 5 != 0);
  const auto log = io::read_jsonl(a.dir / "log.jsonl");
  CHECK(log[5]["error"] == "out of memory in trial 5");
  std::ostringstream report;
  whole.print_report(report);
  CHECK(report.str().find("(0 rejected, 4 failed)") != std::string::npos);

  // Interrupted at 12 trials and resumed: the same log, the same failure count.
  run(b.dir, 12);
  const search_result resumed = run(b.dir, 20);
  CHECK(resumed.failed == 4);
  CHECK(cheap::comparable_log(b.dir / "log.jsonl") == cheap::comparable_log(a.dir / "log.jsonl"));
}
