// JSON Lines: one JSON value per line, appended and flushed one record at a time.
//
// A search log must survive a crash up to the last completed trial and be readable by any tool
// (`jq`, pandas) while the search still runs, so each record is one compact line, flushed at once.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/json.hpp"

namespace qnas::io {

/// Writes one compact JSON value per line. Every write is flushed and checked, so an I/O failure
/// (disk full, directory removed) surfaces at the record that failed, as qnas::io_error.
class jsonl_writer {
 public:
  enum class mode { truncate, append };

  jsonl_writer() = default;
  /// Opens (creating or truncating, or appending to) `path`; qnas::io_error when it cannot.
  explicit jsonl_writer(std::filesystem::path path, mode m = mode::truncate) : path_(std::move(path)) {
    out_.open(path_, std::ios::binary | (m == mode::append ? std::ios::app : std::ios::trunc));
    if (!out_)
      throw io_error("qnas::io::jsonl_writer",
                     qnas::detail::cat("cannot open '", path_.string(), "' for writing (does its directory exist and is it writable?)"));
  }

  [[nodiscard]] bool is_open() const noexcept { return out_.is_open(); }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// Appends `j` as one line and flushes it.
  void write(const json& j) {
    if (!out_.is_open()) throw io_error("qnas::io::jsonl_writer", "write on a writer that is not open");
    out_ << j.dump() << '\n';
    out_.flush();
    if (!out_) throw io_error("qnas::io::jsonl_writer", qnas::detail::cat("writing to '", path_.string(), "' failed"));
  }

  void close() { out_.close(); }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

/// Reads a JSON Lines file: one value per non-empty line. A malformed line throws
/// qnas::io_error naming the file and the line number.
inline std::vector<json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("qnas::io::read_jsonl", qnas::detail::cat("cannot open '", path.string(), "'"));
  std::vector<json> out;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::parse_error& e) {
      throw io_error("qnas::io::read_jsonl", qnas::detail::cat("'", path.string(), "' line ", n, ": ", e.what()));
    }
  }
  return out;
}

}  // namespace qnas::io
