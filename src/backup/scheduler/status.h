// The scheduler's status document: per job the last run (time, tags,
// duration, result), the next run (time, tags), the SLA state, the
// repository's figures (revisions, the newest one's bytes, disk use) and
// the last copy to the job's copy-to. Written
// as YAML to the status file (atomically) and served as JSON by
// GET /v1/status — both from the same StatusDoc and the same field list
// (VisitFields), so they agree key for key; the Prometheus metrics
// (metrics.h) are made from the same document. Plain value types and pure
// functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

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
  int64_t failures_total = 0;  // failed runs since the daemon started
  int64_t revisions = 0;
  int64_t newest_bytes_read = 0;  // the newest revision's stats
  int64_t newest_bytes_written = 0;
  int64_t repository_bytes = 0;  // allocated on disk
  // The copy (JobConfig::copy_to, "" for none): the last one's result
  // (none, ok, failed), the end of the last good one, its error, and the
  // failed ones since the daemon started.
  std::string copy_to;
  std::string last_copy_result;
  std::string last_copy_time;
  std::string last_copy_message;
  int64_t copy_failures_total = 0;
  // Not fields of the documents: newest_revision and last_copy_time in
  // seconds since the epoch (0 if none), for the metrics.
  int64_t newest_revision_s = 0;
  int64_t last_copy_success_s = 0;
};

struct StatusDoc {
  std::string time;  // when it was made
  int pid = 0;
  int worker_limit = 0;
  int running = 0;
  int queued = 0;  // due, waiting for a free worker
  std::map<std::string, JobStatus> jobs;

  std::string ToYaml() const;
  std::string ToJson() const;
};

// A number of seconds written with one decimal ("3.0"), in YAML and JSON.
struct Seconds1 {
  double value = 0;
};

// The field list of both documents: calls visit(key, value) for each field
// of `j` in document order. `value` is a const std::string&, a const
// std::set<std::string>& (a flow sequence / array), an int64_t or Seconds1.
template <typename Visitor>
void VisitFields(const JobStatus& j, Visitor&& visit) {
  visit("schedule", j.schedule);
  visit("state", j.state);
  visit("last-time", j.last_time);
  visit("last-tags", j.last_tags);
  visit("last-duration", Seconds1{j.last_duration_s});
  visit("last-result", j.last_result);
  visit("last-message", j.last_message);
  visit("failures", int64_t{j.failures});
  visit("next-time", j.next_time);
  visit("next-tags", j.next_tags);
  visit("newest-revision", j.newest_revision);
  visit("sla", j.sla);
  visit("sla-age", j.sla_age_s);
  visit("sla-limit", j.sla_limit_s);
  visit("failures-total", j.failures_total);
  visit("revisions", j.revisions);
  visit("newest-bytes-read", j.newest_bytes_read);
  visit("newest-bytes-written", j.newest_bytes_written);
  visit("repository-bytes", j.repository_bytes);
  visit("copy-to", j.copy_to);
  visit("last-copy-result", j.last_copy_result);
  visit("last-copy-time", j.last_copy_time);
  visit("last-copy-message", j.last_copy_message);
  visit("copy-failures-total", j.copy_failures_total);
}

// The same for the document's own fields (before "jobs").
template <typename Visitor>
void VisitFields(const StatusDoc& d, Visitor&& visit) {
  visit("time", d.time);
  visit("pid", int64_t{d.pid});
  visit("worker-limit", int64_t{d.worker_limit});
  visit("running", int64_t{d.running});
  visit("queued", int64_t{d.queued});
}

StatusDoc MakeStatus(const Planner& planner, int64_t now_us);

// Writes the document to `path` atomically (temporary file in the same
// directory, fsync, rename), mode 0600 whatever the umask.
Status WriteStatusFile(const std::string& path, const StatusDoc& doc);

}  // namespace backy::backup::scheduler
