// Example 7 (the main job) killed again and again, resumed with --resume each time: the final
// result is the one an uninterrupted run gives, and no kill loses a checkpointed trial.
//
// A reference run of a reduced example 7 (few trials, a short final training) goes to its end.
// Then chains of sessions run, each in its own --out: the first session without --resume, the
// later ones with it, each SIGKILLed after a random delay inside the reference run's duration
// (so kills land while the data is made, the reference model trains, trials train, checkpoints
// are written, and the finalists retrain). After two kills (a resumed run killed again) the chain
// is resumed to its end and compared; a session that finishes before its kill ends its chain
// early. Fresh chains keep the kills spread over the whole run: once a chain's search is done,
// its later kills could only hit the final training. Compared: the trial log without wall
// times, and the program's report from "best of the search" on (best model, final trainings,
// claim) without the line that gives seconds. Kills: QNAS_KILL_ROUNDS (default 3; the report's
// stress mode runs 20).
//
// Also checked after every kill: the checkpoint never holds fewer trials than after the kill
// before (nothing checkpointed is lost), and a resumed session's first trial is the
// checkpoint's next one (it continues rather than starting again from trial 0).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// A reduced run of a few seconds that still has every phase, most of it the search: 12 trials
// in batches of 2 (2 threads), then 1-epoch final trainings of 3 finalists with one seed each.
constexpr std::size_t trials = 12;
constexpr int kills_per_chain = 2;
// Synthetic images: the test needs no data set installed.
const std::vector<std::string> reduced_args = {"--synthetic", "--trials", std::to_string(trials), "--final-epochs", "1",
                                               "--final-seeds", "1", "--threads", "2"};

struct session {
  pid_t pid;
  fs::path output;
};

/// Starts example 7 with `--out dir` (and --resume) writing stdout and stderr to `output`.
session start(const fs::path& dir, bool resume, const fs::path& output) {
  std::vector<std::string> args = {QNAS_EXAMPLE_07};
  args.insert(args.end(), reduced_args.begin(), reduced_args.end());
  args.insert(args.end(), {"--out", dir.string()});
  if (resume) args.emplace_back("--resume");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "posix_spawn(" << argv[0] << ") failed: " << rc);
  return {pid, output};
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

/// What must not depend on interruptions: the log without wall times, and the report from
/// "best of the search" on without the seconds, with the folder's name replaced.
struct outcome {
  std::vector<nlohmann::json> log;
  std::string report;
  int exit_status = -1;
  bool operator==(const outcome&) const = default;
};

outcome outcome_of(const fs::path& dir, const fs::path& output, int status) {
  outcome o;
  REQUIRE_MESSAGE(WIFEXITED(status), "example 7 did not exit:\n" << file_text(output));
  o.exit_status = WEXITSTATUS(status);
  std::ifstream log(dir / "log.jsonl");
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("wall_s");
    if (j.contains("metrics")) j["metrics"].erase("train_s");
    o.log.push_back(std::move(j));
  }
  const std::string text = file_text(output);
  const auto from = text.find("\nbest of the search:");
  REQUIRE_MESSAGE(from != std::string::npos, "no report in the output of example 7:\n" << text);
  std::istringstream rest(text.substr(from + 1));
  for (std::string line; std::getline(rest, line);) {
    if (line.starts_with("search: ")) continue;  // "search: 12 trials (...), 4.2 s; whole run 9.1 s"
    for (std::size_t at; (at = line.find(dir.string())) != std::string::npos;) line.replace(at, dir.string().size(), "<out>");
    o.report += line + '\n';
  }
  return o;
}

/// Trials in the checkpoint of `dir` (0 when there is none yet).
std::size_t checkpoint_trials(const fs::path& dir) {
  const fs::path file = dir / "checkpoint.json";
  if (!fs::exists(file)) return 0;
  const auto j = nlohmann::json::parse(file_text(file));
  return j.at("payload").at("runner").at("trials").get<std::size_t>();
}

/// The index of the first "trial N" line a session printed, if any.
std::optional<std::size_t> first_trial_printed(const fs::path& output) {
  static const std::regex trial_line(R"(^trial +([0-9]+) )");
  std::ifstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, trial_line)) return std::stoul(m[1]);
  }
  return std::nullopt;
}

struct fresh_dir {
  fs::path path;
  explicit fresh_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("qnas_example_resume_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~fresh_dir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("example 7 killed at random moments and resumed with --resume gives the uninterrupted result") {
  fresh_dir work("work");
  const fs::path ref_dir = work.path / "reference";
  const auto t0 = clock_type::now();
  const session ref_session = start(ref_dir, false, work.path / "reference.out");
  const int ref_status = wait_for(ref_session.pid);
  const double ref_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  const outcome reference = outcome_of(ref_dir, ref_session.output, ref_status);
  REQUIRE_MESSAGE(reference.exit_status <= 1, file_text(ref_session.output));
  REQUIRE(reference.log.size() == trials);

  const char* env = std::getenv("QNAS_KILL_ROUNDS");
  const int kills = env ? std::max(1, std::atoi(env)) : 3;
  const auto seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> when(0.05, 0.95);
  MESSAGE("reference run " << ref_s << " s; " << kills << " kills; kill-time seed " << seed);

  // Where the kills landed, by the checkpoint they left: none yet (data, reference training, first
  // batch), part of the search, the whole search (the final training).
  int landed = 0, chains = 0, sessions = 0, resumed_mid_search = 0, before_search = 0, mid_search = 0, after_search = 0;
  while (landed < kills) {
    CAPTURE(chains);
    const fs::path dir = work.path / ("chain" + std::to_string(chains));
    std::size_t checkpointed = 0;  // trials in the checkpoint after the last kill of this chain
    bool first = true, finished = false;
    int chain_kills = 0;
    outcome got;
    while (!finished) {
      const bool last = landed == kills || chain_kills == kills_per_chain;  // then resume to the end
      const fs::path output = work.path / ("session" + std::to_string(sessions++) + ".out");
      const session s = start(dir, !first, output);
      int status = 0;
      if (last) {
        status = wait_for(s.pid);
      } else {
        std::this_thread::sleep_for(std::chrono::duration<double>(when(rng) * ref_s));
        ::kill(s.pid, SIGKILL);
        status = wait_for(s.pid);
      }
      // A resumed session continues after the checkpoint's last trial.
      if (const auto t = first_trial_printed(output); t && !first) {
        CHECK_MESSAGE(*t == checkpointed, "a session resumed from a checkpoint of " << checkpointed
                                                                                   << " trials printed trial " << *t
                                                                                   << " first");
        if (checkpointed > 0) ++resumed_mid_search;
      }
      first = false;
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        ++landed;
        ++chain_kills;
        const std::size_t now = checkpoint_trials(dir);
        CHECK_MESSAGE(now >= checkpointed, "the checkpoint went back from " << checkpointed << " to " << now << " trials");
        checkpointed = now;
        ++(now == 0 ? before_search : now < reference.log.size() ? mid_search : after_search);
        continue;
      }
      finished = true;
      got = outcome_of(dir, output, status);
    }
    CHECK(got.exit_status == reference.exit_status);
    CHECK(got.log == reference.log);
    CHECK(got.report == reference.report);
    ++chains;
  }
  MESSAGE(landed << " kills in " << chains << " chain(s) of " << sessions << " sessions: " << before_search
                 << " before the first checkpoint, " << mid_search << " within the search, " << after_search
                 << " after it; " << resumed_mid_search << " sessions resumed from a checkpoint with trials in it");
}

TEST_CASE("example 7 stopped by SIGTERM finishes the batch, says how to resume, and --resume gives the uninterrupted result") {
  fresh_dir work("term");
  const fs::path ref_dir = work.path / "reference", dir = work.path / "stopped";
  const session ref_session = start(ref_dir, false, work.path / "reference.out");
  const outcome reference = outcome_of(ref_dir, ref_session.output, wait_for(ref_session.pid));

  const session s = start(dir, false, work.path / "stopped.out");
  std::size_t logged = 0;  // trials in the log when the signal went out
  for (int i = 0; i < 60000 && logged == 0; ++i) {  // until the search has begun (at most a minute)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::ifstream log(dir / "log.jsonl");
    logged = static_cast<std::size_t>(std::count(std::istreambuf_iterator<char>(log), {}, '\n'));
  }
  REQUIRE(logged > 0);
  ::kill(s.pid, SIGTERM);
  const int status = wait_for(s.pid);
  const std::string text = file_text(s.output);
  INFO(text);
  REQUIRE(logged < trials);  // the signal reached the search, not the final training
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + SIGTERM);
  CHECK(text.find("stopped by signal 15 after the batch in flight") != std::string::npos);
  CHECK(text.find("rerun with the same options and --resume") != std::string::npos);
  CHECK(text.find("best of the search") == std::string::npos);  // no final training on half a search
  const std::size_t kept = checkpoint_trials(dir);
  CHECK(kept >= logged);
  CHECK(kept % 2 == 0);  // whole batches of 2

  const session rest = start(dir, true, work.path / "resumed.out");
  const outcome got = outcome_of(dir, rest.output, wait_for(rest.pid));
  CHECK(first_trial_printed(rest.output) == std::optional<std::size_t>(kept));
  CHECK(got == reference);
}
