// JSON Lines: one JSON value per line, appended and flushed one record at a time.
//
// A search log must survive a crash up to the last completed trial and be readable by any tool
// (`jq`, pandas) while the search still runs, so each record is one compact line, written whole
// with one system call (and removed again if the write fails part-way).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/json.hpp"

namespace qnas::io {

/// Writes one compact JSON value per line. Each record is one write(2) of the whole line, and
/// a write that fails part-way (disk full, file size limit) is undone by truncating the file back
/// to where the line began: the log holds whole lines only, so it stays parseable and a resumed
/// search can append to it. Failures surface at the record that failed, as qnas::io_error
/// naming the file and the system's reason (strerror).
class jsonl_writer {
 public:
  enum class mode { truncate, append };

  jsonl_writer() = default;
  /// Opens (creating or truncating, or appending to) `path`; qnas::io_error when it cannot.
  explicit jsonl_writer(std::filesystem::path path, mode m = mode::truncate) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (m == mode::append ? O_APPEND : O_TRUNC), 0644);
    if (fd_ < 0) {
      const int e = errno;
      throw io_error("qnas::io::jsonl_writer",
                     qnas::detail::cat("cannot open '", path_.string(), "' for writing: ", std::strerror(e)));
    }
  }
  jsonl_writer(jsonl_writer&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}
  jsonl_writer& operator=(jsonl_writer&& o) noexcept {
    if (this != &o) {
      close();
      path_ = std::move(o.path_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  jsonl_writer(const jsonl_writer&) = delete;
  jsonl_writer& operator=(const jsonl_writer&) = delete;
  ~jsonl_writer() { close(); }

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// Appends `j` as one line. The line reaches the kernel before write returns (nothing is
  /// buffered in the process, so a crash afterwards loses nothing).
  void write(const json& j) {
    if (fd_ < 0) throw io_error("qnas::io::jsonl_writer", "write on a writer that is not open");
    const std::string line = j.dump() + '\n';
    const off_t start = ::lseek(fd_, 0, SEEK_END);
    if (start < 0) fail("finding the end of the file", errno, -1);
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const auto n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("writing a line", errno, start);
      }
      if (n == 0) fail("writing a line", EIO, start);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  /// Removes the part of the line that was written (so no torn record stays behind) and throws.
  [[noreturn]] void fail(std::string_view step, int e, off_t start) {
    std::string undo;
    if (start >= 0 && ::ftruncate(fd_, start) != 0)
      undo = qnas::detail::cat("; removing the partial line also failed (", std::strerror(errno), ")");
    throw io_error("qnas::io::jsonl_writer",
                   qnas::detail::cat("writing to '", path_.string(), "' failed (", step, "): ", std::strerror(e), undo));
  }

  std::filesystem::path path_;
  int fd_ = -1;
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
