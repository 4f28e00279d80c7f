// CSV output (RFC 4180 quoting) for Pareto fronts and tables that spreadsheets and pandas read.
#pragma once

#include <charconv>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/atomic_file.hpp"

namespace qnas::io {

/// Quotes a field when it holds a comma, a quote or a line break (quotes doubled), as RFC 4180 says.
inline std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + '"';
}

/// A double in the shortest form that reads back to the same value ("0.1", not "0.10000000000000001").
inline std::string csv_number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// A table built row by row, then rendered or written (atomically) as CSV.
class csv_table {
 public:
  explicit csv_table(std::vector<std::string> header) : header_(std::move(header)) {}

  /// Adds a row; qnas::invalid_argument when its width differs from the header's.
  void add_row(std::vector<std::string> row) {
    if (row.size() != header_.size())
      throw invalid_argument("qnas::io::csv_table::add_row",
                             qnas::detail::cat("row has ", row.size(), " fields, the header has ", header_.size()));
    rows_.push_back(std::move(row));
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_.size(); }

  [[nodiscard]] std::string str() const {
    std::string s;
    auto line = [&](const std::vector<std::string>& r) {
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (i) s += ',';
        s += csv_field(r[i]);
      }
      s += '\n';
    };
    line(header_);
    for (const auto& r : rows_) line(r);
    return s;
  }

  /// Writes the table to `path` atomically (write_file_atomic).
  void save(const std::filesystem::path& path) const { write_file_atomic(path, str()); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace qnas::io
