// Kill -9 at a random moment, resume: no trial lost, none run twice beyond the one in flight, and
// the same log and result as an uninterrupted run.
//
// The search runs in a separate process (search_child.cpp: the cheap search, checkpoint after
// every trial, resume when a checkpoint exists). Each round starts it, SIGKILLs it after a random
// delay inside the reference run's duration, reads the last checkpoint, resumes to the end and
// compares. Rounds: QNAS_KILL_ROUNDS (default 3; the report's stress mode runs 20 in a row).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cheap_search.hpp"
#include "qnas/search/checkpoint.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t trials = 40;
constexpr int sleep_us = 8000;

pid_t spawn_child(const fs::path& dir) {
  const std::string exe = QNAS_SEARCH_CHILD, d = dir.string(), n = std::to_string(trials), s = std::to_string(sleep_us);
  const std::string out = (dir / "child.out").string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(d.c_str()), const_cast<char*>(n.c_str()),
                  const_cast<char*>(s.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "posix_spawn(" << exe << ") failed: " << rc);
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) FAIL("waitpid failed");
  return status;
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Runs the child to completion in `dir`; returns its wall time.
double run_to_end(const fs::path& dir) {
  const auto t0 = clock_type::now();
  const int status = wait_for(spawn_child(dir));
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the search child failed:\n" << file_text(dir / "child.out"));
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::map<std::size_t, int> ledger_counts(const fs::path& dir) {
  std::map<std::size_t, int> counts;
  std::ifstream in(dir / "evaluations.txt");
  for (std::size_t t; in >> t;) ++counts[t];
  return counts;
}

std::vector<nlohmann::json> comparable_history(const fs::path& dir) {
  const auto st = qnas::search::load_checkpoint(dir / "checkpoint.json", cheap::space());
  std::vector<nlohmann::json> out;
  for (const auto& r : st.history) out.push_back(cheap::comparable(to_json(r, cheap::space())));
  return out;
}

struct fresh_dir {
  fs::path path;
  explicit fresh_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("qnas_kill_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~fresh_dir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("SIGKILL at a random moment, then resume: repeated rounds match an uninterrupted run") {
  fresh_dir ref("reference");
  const double ref_s = run_to_end(ref.path);
  const auto ref_log = cheap::comparable_log(ref.path / "log.jsonl");
  const auto ref_hist = comparable_history(ref.path);
  REQUIRE(ref_log.size() == trials);
  REQUIRE(ref_hist == ref_log);
  for (const auto& [t, n] : ledger_counts(ref.path)) REQUIRE(n == 1);

  const char* env = std::getenv("QNAS_KILL_ROUNDS");
  const int rounds = env ? std::max(1, std::atoi(env)) : 3;
  const auto seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> when(0.05, 0.95);
  MESSAGE("reference run " << ref_s << " s; " << rounds << " rounds; kill-time seed " << seed);

  int landed = 0, retried_in_flight = 0;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    fresh_dir dir("round" + std::to_string(round));
    // Kill inside the run; a child that finished before the kill does not count: try again.
    std::size_t at_kill = 0;
    bool killed = false;
    for (int attempt = 0; attempt < 10 && !killed; ++attempt) {
      fs::remove_all(dir.path);
      fs::create_directories(dir.path);
      const double delay = when(rng) * ref_s * (attempt < 5 ? 1.0 : 0.5);
      const pid_t pid = spawn_child(dir.path);
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      ::kill(pid, SIGKILL);
      const int status = wait_for(pid);
      killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }
    REQUIRE_MESSAGE(killed, "the child finished before every kill attempt");
    ++landed;
    if (fs::exists(dir.path / "checkpoint.json")) {
      // The last checkpoint is a complete, valid one (atomic write), whatever the kill hit.
      const auto st = qnas::search::load_checkpoint(dir.path / "checkpoint.json", cheap::space());
      at_kill = st.history.size();
    }
    const auto before = ledger_counts(dir.path);

    run_to_end(dir.path);

    // Same log and history as the uninterrupted run: nothing lost, nothing told twice.
    CHECK(cheap::comparable_log(dir.path / "log.jsonl") == ref_log);
    CHECK(comparable_history(dir.path) == ref_hist);
    // Every trial evaluated; only the one in flight at the kill (trial at_kill) may have run twice.
    const auto counts = ledger_counts(dir.path);
    REQUIRE(counts.size() == trials);
    for (const auto& [t, n] : counts) {
      CAPTURE(t);
      CAPTURE(at_kill);
      if (t == at_kill) {
        CHECK(n >= 1);
        CHECK(n <= 2);
        if (n == 2) ++retried_in_flight;
      } else {
        CHECK(n == 1);
      }
    }
    // Nothing beyond the checkpoint + the one in flight had started before the kill.
    for (const auto& [t, n] : before) CHECK(t <= at_kill);
  }
  MESSAGE(landed << " kills landed mid-run; " << retried_in_flight << " of them interrupted an evaluation, which ran again");
}
