// Counts the bytes live on the heap and their peak, by replacing the global operator new and
// delete. Include it in exactly one translation unit of a benchmark program (every bench_*.cpp
// is one), before anything allocates.
//
//   qnas_bench::heap::reset_peak();      // peak := live now
//   step();
//   qnas_bench::heap::peak() - before    // bytes a step needed on top of what was live
#pragma once

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace qnas_bench::heap {
inline std::atomic<long long> live_bytes{0}, peak_bytes{0};
inline void note(long long d) {
  const long long now = live_bytes.fetch_add(d) + d;
  long long p = peak_bytes.load();
  while (now > p && !peak_bytes.compare_exchange_weak(p, now)) {
  }
}
inline long long live() { return live_bytes.load(); }
inline long long peak() { return peak_bytes.load(); }
inline void reset_peak() { peak_bytes.store(live_bytes.load()); }
}  // namespace qnas_bench::heap

// GCC pairs the replaced operator new/delete below with malloc/free and warns although they match.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  qnas_bench::heap::note(static_cast<long long>(malloc_usable_size(p)));
  return p;
}
void* operator new(std::size_t n, std::align_val_t a) {
  const auto al = static_cast<std::size_t>(a);
  void* p = std::aligned_alloc(al, (n + al - 1) / al * al);
  if (!p) throw std::bad_alloc();
  qnas_bench::heap::note(static_cast<long long>(malloc_usable_size(p)));
  return p;
}
void operator delete(void* p) noexcept {
  if (p) qnas_bench::heap::note(-static_cast<long long>(malloc_usable_size(p)));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
