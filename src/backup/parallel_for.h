// Parallel loops for the data paths (backup, verification, restore): how
// many worker threads to use, and ParallelFor, which runs a loop body on
// them and returns the first error. Thread-safe: the body runs on several
// threads at once and must be safe for that.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/status.h"

namespace backy::backup {

// `requested`, or when 0 the number of CPUs (at least 2, so reads overlap
// with hashing even on one core).
inline unsigned WorkerCount(unsigned requested) {
  if (requested) return requested;
  return std::max(2u, std::thread::hardware_concurrency());
}

// What ParallelFor does after an item failed.
enum class OnError {
  kStop,      // claim no further items
  kContinue,  // run every item anyway (checks that report all damage)
};

// Calls fn(worker, i) once for each i in [0, count), on
// min(workers, count) threads, and returns when all calls have returned.
// Items are claimed in increasing order; `worker` in [0, workers) names the
// calling thread (for per-thread buffers). Before each claim a thread
// stops when `stop` (if set) returns true, or with OnError::kStop once an
// item failed; items never claimed are not run, and the caller tells a
// stop apart by its own state. Returns the first error an item returned
// (first in time), else OK.
inline Status ParallelFor(
    size_t count, unsigned workers,
    const std::function<Status(unsigned worker, size_t i)>& fn,
    const std::function<bool()>& stop = {}, OnError on_error = OnError::kStop) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;  // GUARDED_BY(mu)
  auto run = [&](unsigned worker) {
    while (true) {
      if (on_error == OnError::kStop && failed.load(std::memory_order_relaxed))
        return;
      if (stop && stop()) return;
      const size_t i = next.fetch_add(1);
      if (i >= count) return;
      Status s = fn(worker, i);
      if (s.ok()) continue;
      std::lock_guard<std::mutex> l(mu);
      if (first_error.ok()) first_error = std::move(s);
      failed = true;
    }
  };
  const unsigned n =
      static_cast<unsigned>(std::min<size_t>(std::max(workers, 1u), count));
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(run, t);
  for (auto& t : threads) t.join();
  return first_error;
}

}  // namespace backy::backup
