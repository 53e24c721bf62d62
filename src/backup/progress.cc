#include "backup/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "store/duration.h"

namespace backy::backup {

namespace {
int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B",
                  static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v,
                  kUnits[u]);
  }
  return buf;
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO)),
      start_us_(NowUs()) {
  if (enabled_) thread_ = std::thread([this] { Run(); });
}

Progress::~Progress() {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

void Progress::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!cv_.wait_for(l, std::chrono::milliseconds(500),
                       [this] { return stop_; })) {
    Draw(false);
  }
}

void Progress::Draw(bool) {
  const uint64_t done = done_.load(std::memory_order_relaxed);
  const double secs = (NowUs() - start_us_) / 1e6;
  const double rate = secs > 0 ? done / secs : 0;
  std::string line = "\r\033[K" + label_ + ": " + FormatBytes(done) + " / " +
                     FormatBytes(total_);
  if (total_ > 0) {
    line += "  " + std::to_string(done * 100 / total_) + "%";
  }
  line += "  " + FormatBytes(static_cast<uint64_t>(rate)) + "/s";
  if (rate > 0 && total_ > done) {
    line += "  ETA " + store::FormatDuration((total_ - done) / rate,
                                             store::DurationFormat::kClock);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace backy::backup
