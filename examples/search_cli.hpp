// What the examples share: main's error handling, the command line, the output folder of a
// search, the proxy-task data and two small helpers.
//
// Every example's main is `return run_main(program, [&] { ... })`: an exception ends it with its
// what() on stderr and exit status 1, a command-line mistake with the reason and the usage and
// status 2, --help with the usage on stdout and status 0. An example that searches with the
// runner (04, 07, 09, 10) takes --resume and refuses an --out that is not empty without it
// (check_out), so a rerun cannot truncate an earlier run's log.
//
// The search examples (07, 09, 10) take the same options: --mnist DIR, --out DIR, --resume,
// --full, --trials N, --epochs N, --threads N, --seed N; an example adds its own through `extra`.
// The others parse their few options with parse_cli and the number parsers. Copying an example
// into your project means copying this header with it (or replacing it with your own flags).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <qnas/data/dataset.hpp>
#include <qnas/data/fashion_mnist.hpp>
#include <qnas/data/idx.hpp>
#include <qnas/data/synthetic.hpp>
#include <qnas/io/atomic_file.hpp>
#include <qnas/nn/blas.hpp>

namespace qnas::examples {

/// A mistake on the command line (unknown option, malformed value, an --out that would be
/// overwritten): run_main prints it with the usage and returns 2.
class usage_error : public std::runtime_error {
 public:
  usage_error(const std::string& why, std::string usage) : std::runtime_error(why), usage_(std::move(usage)) {}
  [[nodiscard]] const std::string& usage() const noexcept { return usage_; }

 private:
  std::string usage_;
};

/// Thrown by --help (not an error, so not a std::exception): run_main prints the usage on stdout
/// and returns 0.
struct help_request {
  std::string usage;
};

/// Thrown when a search stopped on SIGTERM or SIGINT (the runner finished the batch in flight and
/// wrote its checkpoint): run_main says how to continue and returns 128 + the signal, the status
/// a shell expects from a program ended by that signal.
struct search_interrupted {
  int signal = 0;
  std::string how_to_resume;
};

/// Throws search_interrupted when `stopped_by` (search_result::stop_signal) is a signal, so that
/// an example does not go on to its final training with half a search.
inline void stop_if_interrupted(int stopped_by, const std::filesystem::path& out) {
  if (stopped_by)
    throw search_interrupted{stopped_by, "the checkpoint in '" + out.string() +
                                             "' holds every finished trial; rerun with the same options and --resume "
                                             "to continue"};
}

/// Runs an example's body and turns what it throws into a message and an exit status: 0 after
/// --help, 2 for a usage_error, 1 for any other exception, whose what() names what failed (a
/// truncated IDX file, an unwritable --out). Without it an exception would end the program in
/// std::terminate (exit status 134, a core dump) with the message left to the runtime.
template <class Body>
int run_main(const std::string& program, Body&& body) {
  try {
    return static_cast<Body&&>(body)();
  } catch (const help_request& h) {
    std::cout << "usage: " << h.usage << "\n";
    return 0;
  } catch (const search_interrupted& i) {
    std::cout.flush();
    std::cerr << program << ": stopped by signal " << i.signal << " after the batch in flight; " << i.how_to_resume
              << "\n";
    return 128 + i.signal;
  } catch (const usage_error& e) {
    std::cout.flush();  // the program's output so far, then the reason
    std::cerr << program << ": " << e.what() << "\n";
    if (!e.usage().empty()) std::cerr << "usage: " << e.usage() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cout.flush();
    std::cerr << program << ": error: an exception that is not a std::exception\n";
    return 1;
  }
}

/// A program's name and usage, for messages.
struct cli_info {
  std::string program;  ///< the example's name
  std::string usage;    ///< its usage line(s)

  /// Throws usage_error(why): run_main prints why and the usage and returns 2.
  [[noreturn]] void fail(const std::string& why) const { throw usage_error(why, usage); }
};

struct search_cli : cli_info {
  bool full = false;             ///< --full: the full claim's run
  bool resume = false;           ///< --resume: continue the run in --out from its checkpoint
  std::filesystem::path mnist;   ///< --mnist DIR (empty: not given)
  std::filesystem::path out;     ///< --out DIR
  std::size_t trials = 0;        ///< --trials N (0: the mode's default)
  std::size_t epochs = 0;        ///< --epochs N (0: the mode's default)
  std::size_t threads = 2;       ///< --threads N: candidates trained at once
  std::uint64_t seed = 1;        ///< --seed N
};

/// `text` as a positive integer; nothing when it is empty, signed, not a whole number, 0 or too
/// large for the type.
inline std::optional<std::size_t> positive_integer(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;  // strtoull accepts "-5" and " 5"
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  if (*end != '\0' || n == 0 || errno == ERANGE) return std::nullopt;
  return static_cast<std::size_t>(n);
}

/// `text` as a finite positive real number; nothing otherwise.
inline std::optional<double> positive_real(const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(x > 0.0) || !std::isfinite(x)) return std::nullopt;
  return x;
}

/// The argument of the option being parsed: `value()` reads it as text, `value.number()` as a
/// positive integer and `value.real()` as a positive real number; a missing or malformed
/// argument fails with a message naming the option.
class cli_value {
 public:
  cli_value(const cli_info& cli, std::string option, int& i, int argc, char** argv)
      : cli_(cli), option_(std::move(option)), i_(i), argc_(argc), argv_(argv) {}

  std::string operator()() const {
    if (i_ + 1 >= argc_) cli_.fail(option_ + " needs a value");
    return argv_[++i_];
  }
  std::size_t number() const {
    const std::string v = (*this)();
    const std::optional<std::size_t> n = positive_integer(v);
    if (!n) cli_.fail(option_ + " needs a positive integer, got '" + v + "'");
    return *n;
  }
  double real() const {
    const std::string v = (*this)();
    const std::optional<double> x = positive_real(v);
    if (!x) cli_.fail(option_ + " needs a positive number, got '" + v + "'");
    return *x;
  }

 private:
  const cli_info& cli_;
  std::string option_;
  int& i_;
  int argc_;
  char** argv_;
};

/// What an option handler gets: the argument and a reader of its value; it returns whether it
/// knew the argument.
using option_handler = std::function<bool(const std::string&, const cli_value&)>;

/// Parses argv: --help (or -h) asks for the usage; every other argument is offered to `take`,
/// and one it does not know is a usage error (nothing on the command line is silently ignored).
inline void parse_cli(int argc, char** argv, const cli_info& info, const option_handler& take) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") throw help_request{info.usage};
    if (!take || !take(a, cli_value(info, a, i, argc, argv))) info.fail("unknown argument '" + a + "'");
  }
}

/// Parses argv into a search_cli. `extra(option, value)` is offered every option the common set
/// does not know and returns whether it took it; `value` reads the option's argument.
inline search_cli parse_search_cli(int argc, char** argv, std::string program, std::string usage,
                                   std::filesystem::path default_out, const option_handler& extra = {}) {
  search_cli s;
  s.program = std::move(program);
  s.usage = std::move(usage);
  s.out = std::move(default_out);
  parse_cli(argc, argv, s, [&](const std::string& a, const cli_value& value) {
    if (a == "--full") s.full = true;
    else if (a == "--resume") s.resume = true;
    else if (a == "--mnist") s.mnist = value();
    else if (a == "--out") s.out = value();
    else if (a == "--trials") s.trials = value.number();
    else if (a == "--epochs") s.epochs = value.number();
    else if (a == "--threads") s.threads = value.number();
    else if (a == "--seed") s.seed = value.number();
    else return extra && extra(a, value);
    return true;
  });
  return s;
}

/// What shapes a search's trial sequence (data, epochs, strategy, seed, ...), as name and value.
using run_settings = std::vector<std::pair<std::string, std::string>>;

/// Checks `out` for a search that writes its log and checkpoint there, and creates it, before
/// anything slow runs. Without `resume` a folder that is not empty is refused: rerunning a
/// search must not truncate the log of an earlier one (hours of trials), so continuing it takes
/// --resume, and a fresh run another --out. With `resume` the run must have the `settings` the
/// folder's run started with (keep_settings wrote them to <out>/settings.txt), since the runner
/// checks only the strategy, batch size and seed, and a resumed log that mixed two proxy tasks
/// would look whole. Both refusals are usage errors that name the folder and what to do.
inline void check_out(const cli_info& cli, const std::filesystem::path& out, bool resume,
                      const run_settings& settings) {
  namespace fs = std::filesystem;
  const fs::path file = out / "settings.txt";
  if (fs::exists(out) && !fs::is_directory(out)) cli.fail("--out '" + out.string() + "' is a file, not a folder");
  if (!resume && fs::exists(out) && !fs::is_empty(out))
    cli.fail("--out '" + out.string() + "' is not empty (an earlier run's log and checkpoint?); pass --resume to "
             "continue that run, or choose another --out");
  if (resume && fs::exists(file)) {
    std::ifstream in(file);
    std::map<std::string, std::string> before;
    for (std::string line; std::getline(in, line);)
      if (const auto eq = line.find(" = "); eq != std::string::npos) before[line.substr(0, eq)] = line.substr(eq + 3);
    if (in.bad()) throw io_error(file.string(), "cannot read the settings of the run to resume");
    // The first setting that differs, named as on the command line.
    for (const auto& [name, value] : settings) {
      const auto it = before.find(name);
      if (it == before.end() || it->second != value)
        cli.fail("--resume: the run in '" + out.string() + "' was started with " + name + " " +
                 (it == before.end() ? "unset" : "'" + it->second + "'") + ", this one has '" + value +
                 "'; resume with the options it was started with, or choose another --out");
    }
    if (before.size() != settings.size())
      cli.fail("--resume: '" + file.string() + "' lists settings this example does not have; choose another --out");
  }
  // Now, so that a folder that cannot be made fails before the slow part (an empty folder left
  // behind by a run that fails later does not stand in the way of the next).
  fs::create_directories(out);
}

/// Writes the run's settings to <out>/settings.txt once the data has loaded and the search is
/// about to start, so a run that failed before leaves the folder empty.
inline void keep_settings(const std::filesystem::path& out, const run_settings& settings) {
  std::string text;
  for (const auto& [name, value] : settings) text += name + " = " + value + "\n";
  io::write_file_atomic(out / "settings.txt", text);
}

/// The exit status of an example whose data set is absent: ctest's SKIP_RETURN_CODE for the
/// examples (and the automake convention), so a missing data set shows as skipped, never passed.
inline constexpr int skipped_status = 77;

/// The shared MNIST folder: $QNAS_SHARED_DATA/mnist, else ../shared/data/mnist, when it exists;
/// empty otherwise.
inline std::filesystem::path shared_mnist() {
  if (const char* shared = std::getenv("QNAS_SHARED_DATA"); shared && std::filesystem::exists(std::filesystem::path(shared) / "mnist"))
    return std::filesystem::path(shared) / "mnist";
  if (std::filesystem::exists("../shared/data/mnist")) return "../shared/data/mnist";
  return {};
}

/// Where the MNIST test set is: --mnist DIR when given; with --full, $QNAS_SHARED_DATA/mnist or
/// else ../shared/data/mnist when it exists; otherwise empty (the synthetic data set is used).
inline std::filesystem::path find_mnist(const search_cli& s) {
  if (!s.mnist.empty()) return s.mnist;
  if (!s.full) return {};
  return shared_mnist();
}

/// The images of a proxy task and where they came from.
struct proxy_data {
  data::dataset all;
  std::string source;
};

/// The MNIST test set from `mnist`, or `synthetic_size` synthetic images (seed 7) when it is empty.
inline proxy_data load_proxy_data(const std::filesystem::path& mnist, std::size_t synthetic_size) {
  if (!mnist.empty()) return {data::load_mnist_test(mnist), "MNIST test set (" + mnist.string() + ")"};
  return {data::make_synthetic({.size = synthetic_size, .seed = 7}), "synthetic images (qnas::data::make_synthetic)"};
}

/// The images of a training example (05, 06): Fashion-MNIST, or MNIST with --mnist DIR.
struct training_data {
  data::dataset train;       ///< what the network is trained on
  data::dataset validation;  ///< held out from training, evaluated after every epoch
  data::dataset test;        ///< Fashion-MNIST's 10,000 test images, evaluated once at the end (empty for MNIST)
  bool fashion = true;       ///< Fashion-MNIST (else MNIST)
  std::string source;        ///< where the images came from, for the report
};

/// Loads the data of a training example. Fashion-MNIST (the default) is found by
/// data::locate_fashion_mnist(data_dir); its training set is split 54,000 train / 6,000
/// validation (stratified, seed 1), and the reduced mode keeps the first `reduced_train` and
/// 2,000 of those. With `mnist` not empty: the MNIST test set there, split 8,000 / 2,000, the
/// reduced mode keeping `reduced_train` for training. Returns nothing, after printing why and the
/// apt-get line, when Fashion-MNIST is absent and neither --data nor $QNAS_DATA named a folder
/// (the caller exits with skipped_status); a folder the user named must hold the data (io_error).
inline std::optional<training_data> load_training_data(const cli_info& cli, const std::filesystem::path& data_dir,
                                                       const std::filesystem::path& mnist, bool full,
                                                       std::size_t reduced_train) {
  if (!data_dir.empty() && !mnist.empty()) cli.fail("--data and --mnist choose different data sets; give one");
  training_data d;
  if (!mnist.empty()) {
    auto parts = data::split(data::load_mnist_test(mnist), 2000, /*seed=*/1);
    d.train = full ? std::move(parts.train) : data::head(parts.train, reduced_train);
    d.validation = std::move(parts.validation);
    d.fashion = false;
    d.source = "MNIST test set (" + mnist.string() + ")";
    return d;
  }
  data::data_location where;
  try {
    where = data::locate_fashion_mnist(data_dir);
  } catch (const data::data_missing& e) {
    const char* env = std::getenv("QNAS_DATA");
    if (!data_dir.empty() || (env != nullptr && *env != '\0')) throw;  // only the default may be absent
    std::cout << "skipped: " << e.what() << "\n";
    return std::nullopt;
  }
  auto sets = data::load_fashion_mnist(where.folder);
  auto parts = data::split(sets.train, 6000, /*seed=*/1);
  sets.train = {};
  d.train = full ? std::move(parts.train) : data::head(parts.train, reduced_train);
  d.validation = full ? std::move(parts.validation) : data::head(parts.validation, 2000);
  d.test = std::move(sets.test);
  d.source = "Fashion-MNIST (" + where.folder.string() + ", chosen by " + where.chosen_by + ")";
  return d;
}

/// 2^e, for format parameters given as powers of two (ternary thresholds, po2 maxima) in
/// template arguments.
constexpr double pow2(int e) { return e >= 0 ? static_cast<double>(1 << e) : 1.0 / static_cast<double>(1 << -e); }

/// Prints nn::blas_advice() (how to get a faster BLAS set-up on this machine) when there is any.
inline void print_blas_advice(std::ostream& os = std::cout) {
  if (const std::string advice = nn::blas_advice(); !advice.empty()) os << "note: " << advice << "\n";
}

}  // namespace qnas::examples
