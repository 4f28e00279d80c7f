// One parallel-for: run n independent items on up to T threads, every item runs, the first error (in item order) is rethrown after all threads joined.
//
// The runner evaluates a batch of trials this way, retraining (search/retrain.hpp) trains its
// (finalist, seed) pairs this way, and programs that need parallel work use it instead of
// writing their own pool. Its guarantees are the ones a deterministic search needs:
//   - every item in [0, n) runs exactly once, even when other items throw: a failed training
//     does not leave the others half done, and results that land in per-item slots are complete;
//   - which thread runs an item is unspecified, so `f` must not depend on it: write item i's
//     result to slot i, and seed item i's random draws from i (never from a thread id or a
//     clock); the results are then the same on any number of threads;
//   - an exception escaping `f(i)` is caught (one escaping a std::thread would call
//     std::terminate) and, after every thread has joined, the exception of the lowest item that
//     threw is rethrown unchanged; the others are dropped. Items are handed out in increasing
//     order, so with one thread this is also the first to throw.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "qnas/core/diagnostics.hpp"

namespace qnas::search {

/// Calls `f(i)` for every i in [0, n) on up to `threads` threads (never more than n; with one
/// thread, or one item, on the calling thread with no thread started). Blocks until every item
/// has run, then rethrows the exception of the lowest item that threw, if any. `f` is called
/// concurrently from several threads: it must be safe to call so (shared data read-only, or
/// written to per-item slots). Throws qnas::invalid_argument when `threads` is 0.
template <class F>
void parallel_for(std::size_t n, std::size_t threads, F&& f) {
  static_assert(std::is_invocable_v<F&, std::size_t>, "parallel_for(n, threads, f): f must be callable as f(std::size_t item)");
  if (threads == 0) throw invalid_argument("qnas::search::parallel_for", "threads must be >= 1");
  if (n == 0) return;
  std::vector<std::exception_ptr> errors(n);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      try {
        f(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const std::size_t nthreads = std::min(threads, n);
  if (nthreads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(nthreads - 1);
    for (std::size_t t = 1; t < nthreads; ++t) {
      try {
        pool.emplace_back(worker);
      } catch (const std::system_error&) {  // no more threads to be had: those running share the items
        break;
      }
    }
    worker();  // the calling thread is one of the `threads`
    for (auto& th : pool) th.join();
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace qnas::search
