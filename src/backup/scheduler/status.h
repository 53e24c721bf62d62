// The scheduler's status document: per job the last run (time, tags,
// duration, result), the next run (time, tags) and the SLA state. Written
// as YAML to the status file (atomically) and served as JSON by
// GET /v1/status — both from the same StatusDoc, so they agree. Plain value
// types and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "backup/scheduler/plan.h"
#include "store/status.h"

namespace backy::backup::scheduler {

struct JobStatus {
  std::string schedule;
  std::string state;      // idle, running, waiting (backoff)
  std::string last_time;  // ISO 8601 UTC, "" if never run
  std::set<std::string> last_tags;
  double last_duration_s = 0;
  std::string last_result;  // none, ok, warning, failed, interrupted
  std::string last_message;
  int failures = 0;
  std::string next_time;
  std::set<std::string> next_tags;
  std::string newest_revision;  // time of the newest revision, "" if none
  std::string sla;              // ok, late
  int64_t sla_age_s = 0;
  int64_t sla_limit_s = 0;
};

struct StatusDoc {
  std::string time;  // when it was made
  int pid = 0;
  int worker_limit = 0;
  int running = 0;
  std::map<std::string, JobStatus> jobs;

  std::string ToYaml() const;
  std::string ToJson() const;
};

StatusDoc MakeStatus(const Planner& planner, int64_t now_us);

// A JSON string literal for `s` (quotes and escapes).
std::string JsonQuote(std::string_view s);

// Writes the document to `path` atomically (temporary file in the same
// directory, fsync, rename), mode 0600 whatever the umask.
Status WriteStatusFile(const std::string& path, const StatusDoc& doc);

}  // namespace backy::backup::scheduler
