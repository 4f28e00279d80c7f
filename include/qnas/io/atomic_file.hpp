// Whole-file writes that are atomic on POSIX: a reader (or a crash) sees the old file or the new one, never half.
//
// Checkpoints are rewritten many times during a long search; a power cut or a full disk in the
// middle of a plain overwrite would destroy the only copy of hours of work. Writing a temporary
// file in the same directory, fsync-ing it, renaming it over the target and fsync-ing the
// directory is the standard recipe: rename(2) within one file system replaces the name in one step.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

#include "qnas/core/diagnostics.hpp"

namespace qnas::io {

namespace detail {
inline std::string errno_text(int e) { return std::string(std::strerror(e)); }

/// Closes a file descriptor on every path out of a scope.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace detail

/// Writes `content` to `path` atomically: `<path>.tmp.<pid>` is written and fsync-ed, renamed
/// over `path`, and the directory is fsync-ed so the rename itself survives a crash.
/// On any failure the previous content of `path` is left untouched, the temporary file is
/// removed, and qnas::io_error names the file, the step that failed and the system's reason.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  constexpr const char* where = "qnas::io::write_file_atomic";
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const auto tmp = std::filesystem::path(path.string() + ".tmp." + std::to_string(::getpid()));
  auto fail = [&](std::string_view step, int e) {
    ::unlink(tmp.c_str());
    throw io_error(where, qnas::detail::cat("cannot write '", path.string(), "': ", step, " failed: ", detail::errno_text(e)));
  };
  {
    detail::fd_guard f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) {
      const int e = errno;  // nothing to unlink: the temporary was never created
      throw io_error(where, qnas::detail::cat("cannot write '", path.string(), "': creating the temporary file '",
                                              tmp.string(), "' failed: ", detail::errno_text(e)));
    }
    const char* p = content.data();
    std::size_t left = content.size();
    while (left > 0) {
      const auto n = ::write(f.fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write", errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) fail("fsync", errno);
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) fail("close", errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", errno);
  // Persist the directory entry; a failure here leaves a complete file, so it is not an error
  // worth losing the new content over, but it is reported like the others.
  detail::fd_guard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0 && ::fsync(d.fd) != 0 && errno != EINVAL)
    throw io_error(where, qnas::detail::cat("wrote '", path.string(), "' but fsync of its directory failed: ",
                                            detail::errno_text(errno)));
}

/// Reads a whole file into a string; qnas::io_error names the file when it cannot be opened or read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw io_error("qnas::io::read_file", qnas::detail::cat("cannot open '", path.string(), "': ",
                                                           detail::errno_text(errno)));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw io_error("qnas::io::read_file", qnas::detail::cat("error while reading '", path.string(), "'"));
  return s;
}

}  // namespace qnas::io
