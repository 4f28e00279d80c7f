// Whole-file writes that are atomic on POSIX: a reader (or a crash) sees the old file or the new one, never half.
//
// Checkpoints are rewritten many times during a long search; a power cut or a full disk in the
// middle of a plain overwrite would destroy the only copy of hours of work. Writing a temporary
// file in the same directory, fsync-ing it, renaming it over the target and fsync-ing the
// directory is the standard recipe: rename(2) within one file system replaces the name in one step.
#pragma once

#include <cerrno>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
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

namespace detail {

/// The pid in a temporary file name `<target>.tmp.<pid>`, or 0 when `name` is not one of `target`'s.
inline pid_t temp_file_pid(std::string_view name, std::string_view target) {
  const std::string prefix = std::string(target) + ".tmp.";
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return 0;
  long long pid = 0;
  for (const char ch : name.substr(prefix.size())) {
    if (ch < '0' || ch > '9' || pid > 4'000'000'000LL) return 0;
    pid = pid * 10 + (ch - '0');
  }
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() ? static_cast<pid_t>(pid) : 0;
}

/// Removes the temporary files that earlier writers of `path` left behind when they were killed
/// between creating and renaming them (they would otherwise stay forever, one per pid). A file is
/// stale when the process it names no longer exists AND nobody holds its lock: every writer
/// holds an exclusive flock on its temporary file until the rename, so a live writer's file is
/// never taken, also when its pid is not visible here (another pid namespace sharing the folder)
/// or when the pid of a dead writer has been reused. Best effort: housekeeping never fails a write.
inline void remove_stale_temp_files(const std::filesystem::path& path) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const std::string target = path.filename().string();
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    const pid_t pid = temp_file_pid(name, target);
    if (pid == 0 || pid == ::getpid()) continue;  // not ours to judge, or our own (reused by O_TRUNC)
    if (::kill(pid, 0) == 0 || errno == EPERM) continue;  // that process lives: maybe writing now
    fd_guard f{::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
    if (f.fd < 0 || ::flock(f.fd, LOCK_EX | LOCK_NB) != 0) continue;  // locked: a writer we cannot see
    // Remove the file we locked, not one that replaced it under the same name meanwhile.
    struct stat held {}, now {};
    if (::fstat(f.fd, &held) == 0 && ::lstat(it->path().c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino && S_ISREG(now.st_mode))
      ::unlink(it->path().c_str());
  }
}

}  // namespace detail

/// Writes `content` to `path` atomically: `<path>.tmp.<pid>` is written and fsync-ed, renamed
/// over `path`, and the directory is fsync-ed so the rename itself survives a crash.
/// On any failure the previous content of `path` is left untouched, the temporary file is
/// removed, and qnas::io_error names the file, the step that failed and the system's reason.
/// Temporary files of `path` left by writers that were killed are removed first
/// (detail::remove_stale_temp_files), so they do not pile up over many interrupted sessions.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  constexpr const char* where = "qnas::io::write_file_atomic";
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const auto tmp = std::filesystem::path(path.string() + ".tmp." + std::to_string(::getpid()));
  // Before writing: on a full disk, the stale files may be what makes room.
  detail::remove_stale_temp_files(path);
  detail::fd_guard lock;
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
    // Held (through a second descriptor) until after the rename: tells remove_stale_temp_files
    // in other processes that this file is being written. Not every file system supports flock;
    // writing goes on without it (the pid check still protects a writer whose pid is visible).
    lock.fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock.fd >= 0) (void)::flock(lock.fd, LOCK_EX);
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
