// io: atomic writes, JSON/JSONL round trips and errors that name the file, CSV quoting, SVG plots.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <csignal>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qnas/io/atomic_file.hpp"
#include "qnas/io/csv.hpp"
#include "qnas/io/json.hpp"
#include "qnas/io/jsonl.hpp"
#include "qnas/io/svg_plot.hpp"

namespace fs = std::filesystem;
using namespace qnas::io;

namespace {
/// A fresh scratch directory per test case, removed afterwards.
struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("qnas_test_io_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch() {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }
};
}  // namespace

TEST_CASE("write_file_atomic replaces content and leaves no temporary file") {
  scratch s("atomic");
  const auto p = s.dir / "state.json";
  write_file_atomic(p, "first");
  CHECK(read_file(p) == "first");
  write_file_atomic(p, "second, longer content");
  CHECK(read_file(p) == "second, longer content");
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(s.dir)) ++n;
  CHECK(n == 1);
}

TEST_CASE("write_file_atomic into a missing or read-only directory names the file and keeps the old content") {
  scratch s("atomic_fail");
  CHECK_THROWS_WITH_AS(write_file_atomic(s.dir / "no_such_dir" / "x.json", "x"),
                       doctest::Contains("no_such_dir/x.json"), qnas::io_error);
  const auto p = s.dir / "keep.json";
  write_file_atomic(p, "good");
  // A path through a regular file fails even for root (ENOTDIR).
  CHECK_THROWS_WITH_AS(write_file_atomic(p / "inner.json", "x"), doctest::Contains("keep.json/inner.json"),
                       qnas::io_error);
  CHECK(read_file(p) == "good");
  if (::geteuid() != 0) {  // root ignores directory permissions
    fs::permissions(s.dir, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_THROWS_WITH_AS(write_file_atomic(p, "bad"), doctest::Contains("Permission denied"), qnas::io_error);
    fs::permissions(s.dir, fs::perms::owner_all);
    CHECK(read_file(p) == "good");
  }
  CHECK_THROWS_WITH_AS(read_file(s.dir / "absent.json"), doctest::Contains("absent.json"), qnas::io_error);
}

namespace {
/// A pid that no process has now: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}
void touch(const fs::path& p) { std::ofstream(p) << "partial checkpoint"; }
}  // namespace

TEST_CASE("write_file_atomic removes the temporary files that killed writers of the same file left behind") {
  scratch s("stale_tmp");
  const auto target = s.dir / "checkpoint.json";
  const std::string base = target.string() + ".tmp.";
  const pid_t dead = dead_pid();
  const pid_t dead2 = dead_pid();
  touch(base + std::to_string(dead));                      // a writer killed mid-write: removed
  touch(base + std::to_string(::getppid()));               // a live process (ours' parent): maybe writing, kept
  touch(s.dir / ("other.json.tmp." + std::to_string(dead)));  // another file's temporary: not ours to judge
  touch(base + "notapid");                                 // not a temporary name of this writer: kept
  // A dead pid but a held lock: a writer in another pid namespace, invisible to kill(): kept.
  const fs::path locked = base + std::to_string(dead2);
  touch(locked);
  const int held = ::open(locked.c_str(), O_RDONLY);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX) == 0);

  write_file_atomic(target, "new");
  CHECK(read_file(target) == "new");
  CHECK_FALSE(fs::exists(base + std::to_string(dead)));
  CHECK(fs::exists(base + std::to_string(::getppid())));
  CHECK(fs::exists(s.dir / ("other.json.tmp." + std::to_string(dead))));
  CHECK(fs::exists(base + "notapid"));
  CHECK(fs::exists(locked));

  ::close(held);  // that writer is gone now: the next write removes its file
  write_file_atomic(target, "newer");
  CHECK_FALSE(fs::exists(locked));
  CHECK(read_file(target) == "newer");
  CHECK_FALSE(fs::exists(base + std::to_string(::getpid())));
}

TEST_CASE("JSON parsing errors name the source; get_field names the key") {
  CHECK_THROWS_WITH_AS(parse_json("{\"a\": [1, 2", "ckpt.json"), doctest::Contains("'ckpt.json' is not valid JSON"),
                       qnas::io_error);
  const auto j = parse_json(R"({"a": 3, "b": "x"})", "mem");
  CHECK(get_field<int>(j, "a", "mem") == 3);
  CHECK_THROWS_WITH_AS(get_field<int>(j, "c", "mem"), doctest::Contains("missing field 'c'"), qnas::io_error);
  CHECK_THROWS_WITH_AS(get_field<int>(j, "b", "mem"), doctest::Contains("field 'b' has the wrong type (string)"),
                       qnas::io_error);
  // integers are never converted from floats or out of range (that would be undefined behaviour)
  const auto k = parse_json(R"({"big": 1e65, "neg": -1, "frac": 2.5, "ok": 7, "huge": 5000000000})", "mem");
  CHECK_THROWS_WITH_AS(get_field<std::size_t>(k, "big", "mem"), doctest::Contains("field 'big' must be an integer"),
                       qnas::io_error);
  CHECK_THROWS_WITH_AS(get_field<std::size_t>(k, "neg", "mem"), doctest::Contains("must not be negative"), qnas::io_error);
  CHECK_THROWS_WITH_AS(get_field<int>(k, "frac", "mem"), doctest::Contains("must be an integer"), qnas::io_error);
  CHECK_THROWS_WITH_AS(get_field<int>(k, "huge", "mem"), doctest::Contains("is out of range"), qnas::io_error);
  CHECK(get_field<std::size_t>(k, "ok", "mem") == 7);
  CHECK(get_field<long long>(k, "huge", "mem") == 5000000000LL);
  // a number beyond double's range is a parse error, not an escaping nlohmann exception
  CHECK_THROWS_WITH_AS(parse_json(R"({"a": 1e400})", "big.json"), doctest::Contains("'big.json' is not valid JSON"),
                       qnas::io_error);
  CHECK_THROWS_AS(finite_number(std::nan(""), "reward"), qnas::invalid_argument);
  CHECK(finite_number(0.25, "reward") == json(0.25));
}

TEST_CASE("JSONL writes flushed lines that parse back; a bad line is reported by number") {
  scratch s("jsonl");
  const auto p = s.dir / "log.jsonl";
  {
    jsonl_writer w(p);
    w.write({{"trial", 0}, {"reward", 0.5}});
    w.write({{"trial", 1}, {"reward", 0.1}, {"note", "a \"quoted\"\nline"}});
    // flushed: readable before the writer closes
    CHECK(read_jsonl(p).size() == 2);
  }
  {
    jsonl_writer w(p, jsonl_writer::mode::append);
    w.write({{"trial", 2}});
  }
  const auto lines = read_jsonl(p);
  REQUIRE(lines.size() == 3);
  CHECK(lines[1]["note"] == "a \"quoted\"\nline");
  CHECK(lines[2]["trial"] == 2);
  { std::ofstream(p, std::ios::app) << "{\"trial\": 3, \"rew\n"; }
  CHECK_THROWS_WITH_AS(read_jsonl(p), doctest::Contains("line 4"), qnas::io_error);
  CHECK_THROWS_WITH_AS(jsonl_writer(s.dir / "missing" / "log.jsonl"), doctest::Contains("missing/log.jsonl"),
                       qnas::io_error);
}

namespace {
/// Runs `f` in a forked process whose files may not grow beyond `limit` bytes (a full disk
/// without privileges: writes past it fail with EFBIG, as ENOSPC would); returns the child's
/// exit code (0 ok, 3 qnas::io_error, 4 other) and what() of its error.
template <class F>
std::pair<int, std::string> with_file_size_limit(rlim_t limit, F&& f) {
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
      f();
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

TEST_CASE("JSONL: a disk that fills in the middle of a line leaves whole lines only, and the error says why") {
  scratch s("jsonl_full");
  const auto p = s.dir / "log.jsonl";
  {
    jsonl_writer w(p);
    w.write({{"trial", 0}, {"reward", 0.5}});
  }
  const auto before = read_file(p);
  // Room for 20 more bytes: the next record (about 60) is cut after them by the kernel.
  const auto [code, msg] = with_file_size_limit(static_cast<rlim_t>(before.size() + 20), [&] {
    jsonl_writer w(p, jsonl_writer::mode::append);
    w.write({{"trial", 1}, {"reward", 0.25}, {"note", "a record longer than the room left"}});
  });
  INFO("child said: " << msg);
  CHECK(code == 3);
  CHECK(msg.find(p.string()) != std::string::npos);
  CHECK(msg.find("File too large") != std::string::npos);  // strerror(EFBIG)
  CHECK(read_file(p) == before);                           // the torn part was removed
  CHECK(read_jsonl(p).size() == 1);
  // With room again, appending goes on after the last whole line.
  {
    jsonl_writer w(p, jsonl_writer::mode::append);
    w.write({{"trial", 1}});
  }
  CHECK(read_jsonl(p).size() == 2);
}

TEST_CASE("JSONL: writing to a full device reports the system's reason") {
  if (!fs::exists("/dev/full")) return;
  jsonl_writer w("/dev/full", jsonl_writer::mode::append);
  CHECK_THROWS_WITH_AS(w.write({{"trial", 0}}), doctest::Contains("No space left on device"), qnas::io_error);
}

TEST_CASE("CSV quoting and shortest round-trip numbers") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_number(0.1) == "0.1");
  CHECK(csv_number(1e-7) == "1e-07");
  csv_table t({"x", "y"});
  t.add_row({"1", "2"});
  CHECK_THROWS_AS(t.add_row({"1"}), qnas::invalid_argument);
  CHECK(t.str() == "x,y\n1,2\n");
}

TEST_CASE("SVG plot: labelled axes with nice ticks, series, errors for bad points") {
  CHECK(detail::nice_ticks(0.0, 1.0) == std::vector<double>{0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0});
  const auto t = detail::nice_ticks(13.0, 87.0);
  CHECK(t.front() == 20.0);
  CHECK(t.back() == 80.0);
  CHECK(detail::tick_label(400000.0) == "400k");
  CHECK(detail::tick_label(1.5e6) == "1.5M");
  CHECK(detail::tick_label(0.25) == "0.25");
  CHECK(detail::tick_label(-2000.0) == "-2k");
  svg_plot p;
  p.title = "accuracy vs energy";
  p.x_label = "energy (pJ)";
  p.y_label = "accuracy";
  p.add({"all trials", {{100, 0.5}, {200, 0.7}, {400, 0.8}}, plot_series::style::scatter});
  p.add({"Pareto front", {{100, 0.5}, {400, 0.8}}, plot_series::style::line_and_points, "#d62728"});
  const auto svg = p.str();
  CHECK(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK(svg.find(">energy (pJ)</text>") != std::string::npos);
  CHECK(svg.find(">accuracy</text>") != std::string::npos);
  CHECK(svg.find("<polyline") != std::string::npos);
  CHECK(svg.find("class=\"xtick\"") != std::string::npos);
  CHECK(svg.find(">Pareto front</text>") != std::string::npos);
  std::size_t circles = 0;
  for (auto pos = svg.find("<circle"); pos != std::string::npos; pos = svg.find("<circle", pos + 1)) ++circles;
  CHECK(circles == 5);
  CHECK(svg.ends_with("</svg>\n"));
  p.log_x = true;
  CHECK_NOTHROW((void)p.str());
  p.add({"bad", {{0.0, 1.0}}});
  CHECK_THROWS_WITH_AS((void)p.str(), doctest::Contains("log axis"), qnas::invalid_argument);
  svg_plot q;
  q.add({"nan", {{std::nan(""), 1.0}}});
  CHECK_THROWS_AS((void)q.str(), qnas::invalid_argument);
}
