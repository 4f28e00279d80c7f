// A full disk or an unwritable log/checkpoint location mid-search: a clear qnas::io_error naming
// the file and the system's reason, and the last good checkpoint stays loadable and resumes to
// the same result as an uninterrupted run.
//
// "Full disk" is RLIMIT_FSIZE (no privileges needed; a tmpfs of fixed size would need root): in a
// forked process the limit makes any write past N bytes fail with EFBIG, as ENOSPC would.
#include <doctest/doctest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cheap_search.hpp"
#include "qnas/search/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
constexpr std::size_t trials = 30;

struct fresh_dir {
  fs::path path;
  explicit fresh_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("qnas_disk_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~fresh_dir() { fs::remove_all(path); }
};

qnas::search::search_result run(const qnas::search::runner_options& o) {
  auto s = cheap::make_strategy();
  return qnas::search::run_search(s, cheap::evaluator_fn{}, cheap::objective_fn{}, o);
}

/// Runs the search in a forked process whose files may not grow beyond `limit` bytes; returns
/// the child's exit code (3 = qnas::io_error) and what() of the error it caught.
std::pair<int, std::string> run_with_file_size_limit(const fs::path& dir, rlim_t limit) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process instead of failing the write
    const rlimit rl{limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    int code = 0;
    std::string msg;
    try {
      run(cheap::options(trials, dir));
    } catch (const qnas::io_error& e) {
      code = 3, msg = e.what();
    } catch (const std::exception& e) {
      code = 4, msg = e.what();
    }
    if (::write(fds[1], msg.data(), msg.size()) < 0) code = 5;
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), msg};
}

}  // namespace

TEST_CASE("a full disk mid-run: io_error naming the file and reason; the last good checkpoint resumes exactly") {
  fresh_dir ref("reference");
  const auto reference = run(cheap::options(trials, ref.path));
  const auto ref_log = cheap::comparable_log(ref.path / "log.jsonl");
  const auto full_size = fs::file_size(ref.path / "checkpoint.json");

  fresh_dir dir("full");
  const auto [code, msg] = run_with_file_size_limit(dir.path, static_cast<rlim_t>(full_size / 2));
  INFO("child said: " << msg);
  REQUIRE(code == 3);
  // The message names the file that could not be written and the system's reason.
  const bool names_file = msg.find("checkpoint.json") != std::string::npos || msg.find("log.jsonl") != std::string::npos;
  CHECK(names_file);
  CHECK(msg.find("File too large") != std::string::npos);
  // No temporary file is left behind, and the checkpoint on disk is the last complete one.
  for (const auto& e : fs::directory_iterator(dir.path))
    CHECK_MESSAGE(e.path().string().find(".tmp.") == std::string::npos, e.path());
  const auto st = qnas::search::load_checkpoint(dir.path / "checkpoint.json", cheap::space());
  CHECK(st.history.size() > 0);
  CHECK(st.history.size() < trials);

  // Space freed: resuming finishes the search with the uninterrupted run's log and best trial.
  const auto resumed = run(cheap::options(trials, dir.path));
  CHECK(cheap::comparable_log(dir.path / "log.jsonl") == ref_log);
  CHECK(resumed.best_trial().index == reference.best_trial().index);
  CHECK(resumed.best_trial().cand == reference.best_trial().cand);
}

TEST_CASE("a log or checkpoint location that cannot be written: clear error, the last checkpoint is kept") {
  fresh_dir dir("unwritable");
  // A first session of 10 trials leaves a good checkpoint.
  run(cheap::options(10, dir.path));
  const auto good = fs::file_size(dir.path / "checkpoint.json");

  SUBCASE("the log's directory does not exist") {
    auto o = cheap::options(trials, dir.path);
    o.log_path = dir.path / "no_such_dir" / "log.jsonl";
    CHECK_THROWS_WITH_AS(run(o), doctest::Contains("no_such_dir/log.jsonl"), qnas::io_error);
  }
  SUBCASE("the log's directory is a regular file") {
    { std::ofstream(dir.path / "plain_file") << "x"; }
    auto o = cheap::options(trials, dir.path);
    o.log_path = dir.path / "plain_file" / "log.jsonl";
    CHECK_THROWS_WITH_AS(run(o), doctest::Contains("Not a directory"), qnas::io_error);
  }
  SUBCASE("the log's directory is read-only (skipped as root, who may write anyway)") {
    if (::geteuid() != 0) {
      fs::create_directories(dir.path / "ro");
      fs::permissions(dir.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
      auto o = cheap::options(trials, dir.path);
      o.log_path = dir.path / "ro" / "log.jsonl";
      CHECK_THROWS_WITH_AS(run(o), doctest::Contains("Permission denied"), qnas::io_error);
      fs::permissions(dir.path / "ro", fs::perms::owner_all);
    }
  }
  SUBCASE("the checkpoint's directory does not exist (a fresh run fails at the first checkpoint)") {
    auto o = cheap::options(trials, dir.path);
    o.checkpoint_path = dir.path / "gone" / "checkpoint.json";
    o.log_path = dir.path / "fresh_log.jsonl";
    CHECK_THROWS_WITH_AS(run(o), doctest::Contains("gone/checkpoint.json"), qnas::io_error);
  }
  // Whatever failed, the checkpoint of the first session is intact and resumes.
  const auto st = qnas::search::load_checkpoint(dir.path / "checkpoint.json", cheap::space());
  CHECK(st.history.size() == 10);
  CHECK(fs::file_size(dir.path / "checkpoint.json") == good);
  const auto done = run(cheap::options(trials, dir.path));
  CHECK(done.history.size() == trials);
}
