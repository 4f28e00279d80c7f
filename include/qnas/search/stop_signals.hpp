// Graceful stop on SIGTERM / SIGINT: the first signal asks a running search to stop after the batch in flight; a second stops the process at once.
//
// A search is a long job that is usually ended from outside (Ctrl-C, a batch scheduler's
// SIGTERM before the wall-time limit, `kill`). Ending it at once loses every evaluation since
// the last checkpoint. While a `stop_signal_guard` is alive, the first SIGTERM or SIGINT only
// records that a stop was asked for; the runner finishes the batch in flight, writes a final
// checkpoint and returns with stop_reason::signal. A second signal (either of the two) restores
// the default action and re-raises itself, so an impatient user still stops the process at once.
//
// The handlers are process-wide: the first live guard installs them (saving the previous
// actions) and the last one to go restores what was there before, so a program's own handlers
// are back in place after a search. The POSIX parts compile away on systems without sigaction,
// where the guard does nothing.
#pragma once

#include <atomic>
#include <csignal>
#include <mutex>

#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#define QNAS_HAS_SIGACTION 1
#else
#define QNAS_HAS_SIGACTION 0
#endif

namespace qnas::search {

namespace detail {

/// The signal that asked for a stop (0: none). Lock-free, so the handler may touch it.
inline std::atomic<int> stop_signal_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the stop-signal flag must be usable in a signal handler");

#if QNAS_HAS_SIGACTION
extern "C" inline void qnas_stop_signal_handler(int sig) {
  int expected = 0;
  if (stop_signal_received.compare_exchange_strong(expected, sig)) return;
  // A second signal: the default action (terminate) at once. Both calls are async-signal-safe.
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

struct stop_signal_state {
  std::mutex m;
  int users = 0;
  struct sigaction old_term {}, old_int {};
};
inline stop_signal_state& stop_signal_registry() {
  static stop_signal_state s;
  return s;
}
#endif

}  // namespace detail

/// While alive (and constructed with `enabled`), SIGTERM and SIGINT ask for a graceful stop
/// instead of terminating the process; see the header comment.
class stop_signal_guard {
 public:
  explicit stop_signal_guard(bool enabled = true) : enabled_(enabled) {
#if QNAS_HAS_SIGACTION
    if (!enabled_) return;
    auto& reg = detail::stop_signal_registry();
    std::lock_guard lock(reg.m);
    if (reg.users++ > 0) return;
    detail::stop_signal_received.store(0);
    struct sigaction sa {};
    sa.sa_handler = detail::qnas_stop_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // file writes and waits in flight carry on
    sigaction(SIGTERM, &sa, &reg.old_term);
    sigaction(SIGINT, &sa, &reg.old_int);
#endif
  }
  stop_signal_guard(const stop_signal_guard&) = delete;
  stop_signal_guard& operator=(const stop_signal_guard&) = delete;
  ~stop_signal_guard() {
#if QNAS_HAS_SIGACTION
    if (!enabled_) return;
    auto& reg = detail::stop_signal_registry();
    std::lock_guard lock(reg.m);
    if (--reg.users > 0) return;
    sigaction(SIGTERM, &reg.old_term, nullptr);
    sigaction(SIGINT, &reg.old_int, nullptr);
    detail::stop_signal_received.store(0);
#endif
  }

  /// The signal that asked for a stop since the handlers were installed; 0 when none (or when
  /// the guard is disabled).
  [[nodiscard]] int received() const noexcept { return enabled_ ? detail::stop_signal_received.load() : 0; }

 private:
  bool enabled_;
};

}  // namespace qnas::search
