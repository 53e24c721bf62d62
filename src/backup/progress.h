// Progress: a status line on stderr ("backup: 1.2 GiB / 4.0 GiB 30%
// 512 MiB/s ETA 0:05") refreshed twice a second while an operation runs,
// only when stderr is a terminal. Counters are atomics, updated by workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace backy::backup {

class Progress {
 public:
  // `label` starts the line; `total` is the expected byte count.
  Progress(std::string label, uint64_t total);
  ~Progress();  // stops the display and clears the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t bytes) {
    done_.fetch_add(bytes, std::memory_order_relaxed);
  }

 private:
  void Run();
  void Draw(bool final);

  const std::string label_;
  const uint64_t total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
  int64_t start_us_;
};

// "1.5 GiB", "512 MiB", "4.0 KiB", "17 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace backy::backup
