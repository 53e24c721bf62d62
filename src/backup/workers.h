// Worker threads for the data paths (backup, verification, restore): how
// many, and running a function on all of them. Thread-safe.
#pragma once

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

namespace backy::backup {

// `requested`, or when 0 the number of CPUs (at least 2, so reads overlap
// with hashing even on one core).
inline unsigned WorkerCount(unsigned requested) {
  if (requested) return requested;
  return std::max(2u, std::thread::hardware_concurrency());
}

// Runs `fn` on `n` threads and waits for all of them.
inline void RunWorkers(unsigned n, const std::function<void()>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(fn);
  for (auto& t : threads) t.join();
}

}  // namespace backy::backup
