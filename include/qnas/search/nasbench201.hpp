// nasbench201_table: the NAS-Bench-201 CIFAR-10 table as a tabular evaluator for search strategies.
//
// NAS-Bench-201 (Dong & Yang, ICLR 2020) trained every cell of a fixed skeleton: 4 nodes, 6
// edges (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), each edge one of 5 ops, 5^6 = 15,625 cells. The
// table read here (cifar10_avg.csv, from gabro8a/NAS-Landscapes, MIT) holds, per cell, the
// averages over 3 seeds of the 200-epoch results on the "cifar10-valid" split: `valid-accuracy`
// is measured on the validation half of the CIFAR-10 training set and `test-accuracy` on the
// CIFAR-10 test set, both by the network trained on the remaining training images (so the test
// numbers are NOT those of the paper's train+valid "cifar10" rows); `train-per-time` is the
// training time of one epoch in seconds (train-all-time = 200 x train-per-time).
//
// A search over the table reads the space() description (6 categorical decisions named after
// the edges, labelled with the op names) and looks candidates up with at().
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/search/strategy.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// One NAS-Bench-201 cell's results (averages over 3 seeds, 200 epochs, cifar10-valid).
struct nasbench201_entry {
  std::string arch;               ///< "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
  double valid_accuracy = 0;      ///< percent, validation split
  double test_accuracy = 0;       ///< percent, CIFAR-10 test set
  double valid_loss = 0;
  double test_loss = 0;
  double train_epoch_seconds = 0;  ///< `train-per-time`: seconds per training epoch
};

/// The NAS-Bench-201 table, indexed by candidate. Immutable after load(); cheap lookups.
class nasbench201_table {
 public:
  static constexpr std::array<std::string_view, 5> ops{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                       "avg_pool_3x3"};
  static constexpr std::array<std::string_view, 6> edges{"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"};
  static constexpr std::size_t num_cells = 15625;  // 5^6

  /// The search space: 6 categorical decisions (the edges), 5 ops each.
  static space_description space() {
    std::vector<decision_info> ds;
    for (auto e : edges)
      ds.push_back({std::string(e), decision_kind::categorical, ops.size(), {ops.begin(), ops.end()}});
    return space_description(ds);
  }

  /// The candidate of an architecture string, or throws qnas::invalid_argument saying what is wrong.
  static candidate candidate_of(std::string_view arch) {
    constexpr const char* where = "nasbench201_table::candidate_of";
    // Expected shape: |a~0|+|b~0|c~1|+|d~0|e~1|f~2|
    candidate c;
    std::size_t pos = 0;
    for (int node = 1; node <= 3; ++node) {
      if (node > 1) {
        if (arch.substr(pos, 1) != "+") throw invalid_argument(where, detail::cat("'", arch, "': expected '+' at ", pos));
        ++pos;
      }
      if (arch.substr(pos, 1) != "|") throw invalid_argument(where, detail::cat("'", arch, "': expected '|' at ", pos));
      ++pos;
      for (int from = 0; from < node; ++from) {
        const auto bar = arch.find('|', pos);
        if (bar == std::string_view::npos) throw invalid_argument(where, detail::cat("'", arch, "': unterminated edge"));
        const auto edge = arch.substr(pos, bar - pos);
        const auto tilde = edge.find('~');
        if (tilde == std::string_view::npos || edge.substr(tilde + 1) != std::to_string(from))
          throw invalid_argument(where, detail::cat("'", arch, "': edge '", edge, "' should end in ~", from));
        const auto op = edge.substr(0, tilde);
        std::size_t k = 0;
        while (k < ops.size() && ops[k] != op) ++k;
        if (k == ops.size()) throw invalid_argument(where, detail::cat("'", arch, "': unknown op '", op, "'"));
        c.choices.push_back(static_cast<std::uint32_t>(k));
        pos = bar + 1;
      }
    }
    if (pos != arch.size()) throw invalid_argument(where, detail::cat("'", arch, "': trailing characters"));
    return c;
  }

  /// The architecture string of a candidate of space().
  static std::string arch_string(const candidate& c) {
    check_candidate(c, space_ref(), "nasbench201_table::arch_string");
    std::string s;
    std::size_t i = 0;
    for (int node = 1; node <= 3; ++node) {
      s += node > 1 ? "+|" : "|";
      for (int from = 0; from < node; ++from, ++i) (s += ops[c[i]]) += "~" + std::to_string(from) + "|";
    }
    return s;
  }

  /// Reads and validates the CSV: the header must be NAS-Landscapes' (the columns this reader
  /// relies on, in order), every row must have every field, finite numbers, accuracies in
  /// [0, 100], a positive epoch time, a well-formed architecture, and every one of the 15,625
  /// cells must appear exactly once. Throws qnas::io_error "file:line: what" otherwise.
  static nasbench201_table load(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path.string(), "cannot open the NAS-Bench-201 table");
    static constexpr std::array<std::string_view, 20> header{
        "index",          "sol",           "name",           "C",          "N",
        "arch_str",       "num_classes",   "index2",         "train-loss", "train-accuracy",
        "train-per-time", "train-all-time", "valid-loss",    "valid-accuracy", "valid-per-time",
        "valid-all-time", "test-loss",     "test-accuracy",  "test-per-time", "test-all-time"};
    enum col : std::size_t { arch_col = 5, train_time_col = 10, valid_loss_col = 12, valid_acc_col = 13,
                             test_loss_col = 16, test_acc_col = 17 };
    nasbench201_table t;
    t.entries_.resize(num_cells);
    std::vector<bool> seen(num_cells, false);
    std::string line;
    std::vector<std::string_view> f;
    std::size_t lineno = 0, rows = 0;
    auto fail = [&](const std::string& what) -> io_error {
      return io_error(detail::cat(path.string(), ":", lineno), what);
    };
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      split(line, f);
      if (lineno == 1) {
        if (f.size() != header.size() || !std::equal(f.begin(), f.end(), header.begin()))
          throw fail("unexpected header; expected the NAS-Landscapes cifar10_avg.csv columns " + join(header));
        continue;
      }
      if (f.size() != header.size())
        throw fail(detail::cat("expected ", header.size(), " fields, found ", f.size()));
      candidate c;
      try {
        c = candidate_of(f[arch_col]);
      } catch (const invalid_argument& e) {
        throw fail(e.what());
      }
      nasbench201_entry e;
      e.arch = std::string(f[arch_col]);
      e.valid_accuracy = number(f[valid_acc_col], header[valid_acc_col], fail);
      e.test_accuracy = number(f[test_acc_col], header[test_acc_col], fail);
      e.valid_loss = number(f[valid_loss_col], header[valid_loss_col], fail);
      e.test_loss = number(f[test_loss_col], header[test_loss_col], fail);
      e.train_epoch_seconds = number(f[train_time_col], header[train_time_col], fail);
      for (double a : {e.valid_accuracy, e.test_accuracy})
        if (a < 0 || a > 100) throw fail(detail::cat("accuracy ", a, " is outside [0, 100]"));
      if (!(e.train_epoch_seconds > 0)) throw fail(detail::cat("train-per-time ", e.train_epoch_seconds, " must be > 0"));
      const auto k = code(c);
      if (seen[k]) throw fail("architecture " + e.arch + " appears twice");
      seen[k] = true;
      t.entries_[k] = std::move(e);
      ++rows;
    }
    if (lineno == 0) throw io_error(path.string(), "the file is empty");
    if (rows != num_cells)
      throw io_error(path.string(), detail::cat("has ", rows, " architectures, NAS-Bench-201 has ", num_cells));
    return t;
  }

  /// The results of a candidate of space().
  [[nodiscard]] const nasbench201_entry& at(const candidate& c) const {
    check_candidate(c, space_ref(), "nasbench201_table::at");
    return entries_[code(c)];
  }

  [[nodiscard]] const std::vector<nasbench201_entry>& entries() const noexcept { return entries_; }

 private:
  nasbench201_table() = default;

  static const space_description& space_ref() {
    static const space_description s = space();
    return s;
  }
  static std::size_t code(const candidate& c) noexcept {
    std::size_t k = 0;
    for (auto v : c.choices) k = k * ops.size() + v;
    return k;
  }
  static void split(std::string_view line, std::vector<std::string_view>& out) {
    out.clear();
    std::size_t b = 0;
    for (;;) {
      const auto e = line.find(',', b);
      out.push_back(line.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
      if (e == std::string_view::npos) return;
      b = e + 1;
    }
  }
  template <std::size_t N>
  static std::string join(const std::array<std::string_view, N>& a) {
    std::string s;
    for (auto x : a) (s += s.empty() ? "" : ",") += x;
    return s;
  }
  template <class Fail>
  static double number(std::string_view s, std::string_view column, Fail& fail) {
    double v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
      throw fail(detail::cat(column, ": '", s, "' is not a number"));
    if (!std::isfinite(v)) throw fail(detail::cat(column, ": ", s, " is not finite"));
    return v;
  }

  std::vector<nasbench201_entry> entries_;
};

/// The outcome of one simulated search over the table.
struct nasbench201_run_result {
  candidate best;              ///< the candidate with the highest reward (valid accuracy) seen
  nasbench201_entry best_entry;
  std::size_t evaluations = 0;
  double simulated_seconds = 0;
};

namespace detail {
/// One ask and tell against the table: reward = valid accuracy, cost = `epochs` epochs of the
/// cell's training time; keeps the best cell seen (the first of equals).
template <strategy S>
void table_step(S& s, const nasbench201_table& table, double epochs, nasbench201_run_result& r) {
  const auto c = s.ask();
  const auto& e = table.at(c);
  r.simulated_seconds += epochs * e.train_epoch_seconds;
  ++r.evaluations;
  s.tell(c, e.valid_accuracy);
  if (r.evaluations == 1 || e.valid_accuracy > r.best_entry.valid_accuracy) {
    r.best = c;
    r.best_entry = e;
  }
}
}  // namespace detail

/// Runs strategy `s` against the table as the NAS-Bench-201 paper's protocol does: the reward
/// is the valid accuracy, each evaluation costs `epochs` x the cell's seconds per training
/// epoch (12: the 12-epoch proxy), and the search stops once the simulated time reaches
/// `budget_seconds` (the evaluation that crosses the budget still counts, as in the reference
/// implementation's `while time < budget` loop). Asks and tells one candidate at a time.
template <strategy S>
nasbench201_run_result run_on_table(S& s, const nasbench201_table& table, double budget_seconds, double epochs = 12) {
  nasbench201_run_result r;
  while (r.simulated_seconds < budget_seconds) detail::table_step(s, table, epochs, r);
  return r;
}

/// Runs strategy `s` against the table for exactly `evaluations` asks and tells (a trial budget,
/// as a runner's max_trials, instead of simulated time); reward = valid accuracy. The simulated
/// seconds are still summed (12-epoch cost) for reference.
template <strategy S>
nasbench201_run_result run_on_table_for(S& s, const nasbench201_table& table, std::size_t evaluations,
                                        double epochs = 12) {
  nasbench201_run_result r;
  while (r.evaluations < evaluations) detail::table_step(s, table, epochs, r);
  return r;
}

}  // namespace qnas::search
