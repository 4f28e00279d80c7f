// A Pareto archive: the candidates no other candidate beats on every objective (accuracy up, energy, latency, bits down).
//
// A single reward hides the trade-off a hardware engineer actually chooses from; the archive
// keeps every non-dominated trial so the report can show the whole accuracy/energy front.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/csv.hpp"
#include "qnas/search/objectives.hpp"

namespace qnas::search {

enum class direction { maximize, minimize };

/// One objective of the archive: a metric name and whether more or less of it is better.
struct pareto_axis {
  std::string metric;
  direction dir = direction::maximize;
  bool operator==(const pareto_axis&) const = default;
};

/// A point of the archive: who (trial id and a label such as the candidate's decisions) and
/// its values, one per axis, in the archive's axis order.
struct pareto_point {
  std::size_t id = 0;
  std::vector<double> values;
  std::string label;
  bool operator==(const pareto_point&) const = default;
};

/// Maintains the non-dominated set under insertion. a dominates b when a is at least as good on
/// every axis and strictly better on one. Points with identical values do not dominate each
/// other, so two candidates that tie exactly are both kept (neither is a worse choice).
/// Insertion is O(front size); fronts in NAS stay small (tens to hundreds of points).
class pareto_archive {
 public:
  /// accuracy (max) against energy_pj (min): the trade-off of the search report.
  static std::vector<pareto_axis> accuracy_energy() {
    return {{std::string(metric_names::accuracy), direction::maximize},
            {std::string(metric_names::energy_pj), direction::minimize}};
  }
  /// accuracy up; energy, latency (cycles) and bits down.
  static std::vector<pareto_axis> all_four() {
    return {{std::string(metric_names::accuracy), direction::maximize},
            {std::string(metric_names::energy_pj), direction::minimize},
            {std::string(metric_names::latency_cycles), direction::minimize},
            {std::string(metric_names::bits), direction::minimize}};
  }

  /// An archive over `axes` (at least one; metric names unique).
  explicit pareto_archive(std::vector<pareto_axis> axes = accuracy_energy()) : axes_(std::move(axes)) {
    constexpr const char* where = "qnas::search::pareto_archive";
    if (axes_.empty()) throw invalid_argument(where, "needs at least one axis");
    for (std::size_t i = 0; i < axes_.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (axes_[i].metric == axes_[j].metric)
          throw invalid_argument(where, qnas::detail::cat("axis '", axes_[i].metric, "' appears twice"));
  }

  [[nodiscard]] const std::vector<pareto_axis>& axes() const noexcept { return axes_; }

  /// True when `a` dominates `b` (both in axis order).
  [[nodiscard]] bool dominates(const std::vector<double>& a, const std::vector<double>& b) const {
    check_width(a), check_width(b);
    bool strictly = false;
    for (std::size_t i = 0; i < axes_.size(); ++i) {
      const bool max = axes_[i].dir == direction::maximize;
      const double x = a[i], y = b[i];
      if (max ? x < y : x > y) return false;
      if (x != y) strictly = true;
    }
    return strictly;
  }

  /// The axis values of `m`, in axis order; qnas::invalid_argument naming a missing metric.
  [[nodiscard]] std::vector<double> project(const metrics& m) const {
    std::vector<double> v;
    v.reserve(axes_.size());
    for (const auto& a : axes_) v.push_back(m.at(a.metric));
    return v;
  }

  /// Inserts a point; returns true when it joins the front (it is not dominated), removing the
  /// points it dominates.
  bool insert(pareto_point p) {
    check_width(p.values);
    for (const auto& q : front_)
      if (dominates(q.values, p.values) || (q.values == p.values && !p.label.empty() && q.label == p.label))
        return false;
    std::erase_if(front_, [&](const pareto_point& q) { return dominates(p.values, q.values); });
    front_.push_back(std::move(p));
    return true;
  }
  /// Inserts trial `id` with its metrics (only the axis metrics are kept).
  bool insert(std::size_t id, const metrics& m, std::string label = {}) {
    return insert(pareto_point{id, project(m), std::move(label)});
  }

  /// The current front, sorted by the first axis from best to worst, ties by id.
  [[nodiscard]] std::vector<pareto_point> front() const {
    auto f = front_;
    const bool max = axes_[0].dir == direction::maximize;
    std::sort(f.begin(), f.end(), [&](const pareto_point& a, const pareto_point& b) {
      if (a.values[0] != b.values[0]) return max ? a.values[0] > b.values[0] : a.values[0] < b.values[0];
      return a.id < b.id;
    });
    return f;
  }
  [[nodiscard]] std::size_t size() const noexcept { return front_.size(); }
  [[nodiscard]] bool empty() const noexcept { return front_.empty(); }
  void clear() noexcept { front_.clear(); }

  /// The front as a table: id, one column per axis (named after its metric), label.
  [[nodiscard]] io::csv_table to_csv() const {
    std::vector<std::string> header{"trial"};
    for (const auto& a : axes_) header.push_back(a.metric);
    header.push_back("candidate");
    io::csv_table t(std::move(header));
    for (const auto& p : front()) {
      std::vector<std::string> row{std::to_string(p.id)};
      for (double v : p.values) row.push_back(io::csv_number(v));
      row.push_back(p.label);
      t.add_row(std::move(row));
    }
    return t;
  }
  /// Writes to_csv() to `path` atomically.
  void save_csv(const std::filesystem::path& path) const { to_csv().save(path); }

 private:
  void check_width(const std::vector<double>& v) const {
    if (v.size() != axes_.size())
      throw invalid_argument("qnas::search::pareto_archive",
                             qnas::detail::cat("a point has ", v.size(), " values, the archive has ", axes_.size(), " axes"));
  }

  std::vector<pareto_axis> axes_;
  std::vector<pareto_point> front_;
};

}  // namespace qnas::search
