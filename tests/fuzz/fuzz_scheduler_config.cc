// Fuzzes ParseDaemonConfig (src/backup/scheduler/config.cc) on the text of
// a scheduler config file: any text is parsed or refused with an error
// naming the file, never a crash, an exception or undefined behaviour. A
// config that parses must be one the daemon can run: at least one worker,
// positive intervals that fit in microseconds (the daemon's clock), a
// positive status interval and backoff.
#include <cstdint>
#include <limits>
#include <string>

#include "backup/scheduler/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = backy::backup::scheduler::ParseDaemonConfig(text, "fuzz.conf");
  if (!config.ok()) {
    FUZZ_CHECK(
        config.status().ToString().find("fuzz.conf") != std::string::npos,
        "config error does not name the file");
    return 0;
  }
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1000000;
  FUZZ_CHECK(config->worker_limit >= 1, "worker-limit below 1 accepted");
  FUZZ_CHECK(
      config->status_interval_s > 0 && config->status_interval_s <= kMaxSeconds,
      "status-interval out of range accepted");
  FUZZ_CHECK(
      config->backoff_base_s > 0 && config->backoff_base_s <= kMaxSeconds,
      "backoff-base out of range accepted");
  FUZZ_CHECK(config->backoff_max_s > 0 && config->backoff_max_s <= kMaxSeconds,
             "backoff-max out of range accepted");
  for (const auto& [job, jc] : config->jobs) {
    for (const auto& [tag, entry] : jc.schedule.tags) {
      FUZZ_CHECK(
          entry.interval_seconds > 0 && entry.interval_seconds <= kMaxSeconds,
          "schedule interval out of range accepted");
    }
  }
  for (const auto& [name, schedule] : config->schedules) {
    for (const auto& [tag, entry] : schedule.tags) {
      FUZZ_CHECK(
          entry.interval_seconds > 0 && entry.interval_seconds <= kMaxSeconds,
          "schedule interval out of range accepted");
    }
  }
  return 0;
}
