// The command line, the proxy-task data and two small helpers that the search examples (07, 09,
// 10) share; example 08, whose options differ, uses the number parsers.
//
// Every search example takes the same options: --mnist DIR, --out DIR, --full, --trials N,
// --epochs N, --threads N, --seed N; an example adds its own through `extra`. Copying an example
// into your project means copying this header with it (or replacing it with your own flags).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include <qnas/data/dataset.hpp>
#include <qnas/data/idx.hpp>
#include <qnas/data/synthetic.hpp>
#include <qnas/nn/blas.hpp>

namespace qnas::examples {

struct search_cli {
  std::string program;           ///< the example's name, for messages
  std::string usage;             ///< its usage line(s)
  bool full = false;             ///< --full: the full claim's run
  std::filesystem::path mnist;   ///< --mnist DIR (empty: not given)
  std::filesystem::path out;     ///< --out DIR
  std::size_t trials = 0;        ///< --trials N (0: the mode's default)
  std::size_t epochs = 0;        ///< --epochs N (0: the mode's default)
  std::size_t threads = 2;       ///< --threads N: candidates trained at once
  std::uint64_t seed = 1;        ///< --seed N

  /// Prints why, then the usage, and exits with status 2.
  [[noreturn]] void fail(const std::string& why) const {
    std::cerr << program << ": " << why << "\nusage: " << usage << "\n";
    std::exit(2);
  }
};

/// `text` as a positive integer; nothing when it is empty, signed, not a whole number, or 0.
inline std::optional<std::size_t> positive_integer(const std::string& text) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || n == 0) return std::nullopt;
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
  cli_value(const search_cli& cli, std::string option, int& i, int argc, char** argv)
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
  const search_cli& cli_;
  std::string option_;
  int& i_;
  int argc_;
  char** argv_;
};

/// Parses argv into a search_cli. `extra(option, value)` is offered every option the common set
/// does not know and returns whether it took it; `value` reads the option's argument.
inline search_cli parse_search_cli(int argc, char** argv, std::string program, std::string usage,
                                   std::filesystem::path default_out,
                                   const std::function<bool(const std::string&, const cli_value&)>& extra = {}) {
  search_cli s;
  s.program = std::move(program);
  s.usage = std::move(usage);
  s.out = std::move(default_out);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const cli_value value(s, a, i, argc, argv);
    if (a == "--full") s.full = true;
    else if (a == "--mnist") s.mnist = value();
    else if (a == "--out") s.out = value();
    else if (a == "--trials") s.trials = value.number();
    else if (a == "--epochs") s.epochs = value.number();
    else if (a == "--threads") s.threads = value.number();
    else if (a == "--seed") s.seed = value.number();
    else if (!extra || !extra(a, value)) s.fail("unknown argument '" + a + "'");
  }
  return s;
}

/// Where the MNIST test set is: --mnist DIR when given; with --full, $QNAS_SHARED_DATA/mnist or
/// else ../shared/data/mnist when it exists; otherwise empty (the synthetic data set is used).
inline std::filesystem::path find_mnist(const search_cli& s) {
  if (!s.mnist.empty()) return s.mnist;
  if (!s.full) return {};
  if (const char* shared = std::getenv("QNAS_SHARED_DATA"); shared && std::filesystem::exists(std::filesystem::path(shared) / "mnist"))
    return std::filesystem::path(shared) / "mnist";
  if (std::filesystem::exists("../shared/data/mnist")) return "../shared/data/mnist";
  return {};
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

/// 2^e, for format parameters given as powers of two (ternary thresholds, po2 maxima) in
/// template arguments.
constexpr double pow2(int e) { return e >= 0 ? static_cast<double>(1 << e) : 1.0 / static_cast<double>(1 << -e); }

/// Prints nn::blas_advice() (how to get a faster BLAS set-up on this machine) when there is any.
inline void print_blas_advice(std::ostream& os = std::cout) {
  if (const std::string advice = nn::blas_advice(); !advice.empty()) os << "note: " << advice << "\n";
}

}  // namespace qnas::examples
