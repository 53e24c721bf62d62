// The scheduler's policy, with no clock, processes or files: when each tag
// of a job is due, which tags a run carries, how a failed job backs off,
// whether a job is within its SLA, and the Planner — the state of every job
// and which jobs start now within the worker limit. Times are microseconds
// since the epoch, passed in by the caller (the daemon's wall clock, or a
// test clock). Not thread-safe: the daemon uses it from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backup/scheduler/config.h"
#include "store/repository.h"

namespace backy::backup::scheduler {

inline constexpr int64_t kMicros = 1'000'000;

// FNV-1a 64 of the job name: stable across runs, builds and machines.
uint64_t JobHash(std::string_view job);

// The job's offset in seconds within an interval, in [0, interval_s). A
// tag's runs fall on the grid k * interval + offset (seconds since the
// epoch), so jobs are spread over the interval by name. Because the offset
// is hash mod interval, a 1d grid lies on the 1h grid of the same job: the
// daily run is also an hourly run.
int64_t SpreadOffset(std::string_view job, int64_t interval_s);

// The first grid point of (interval_s, offset_s) strictly after `after_us`.
int64_t NextSlot(int64_t interval_s, int64_t offset_s, int64_t after_us);

// When `tag` (with interval_s) of `job` is due, given the time of the
// newest revision carrying it: the first grid point after that revision;
// 0 (due since forever) when no revision carries it yet. A due time in the
// past means the run was missed (the daemon was down, or the job failed)
// and is due at once.
int64_t TagDue(std::string_view job, int64_t interval_s,
               std::optional<int64_t> last_us, int64_t now_us);

struct NextRun {
  int64_t time_us = 0;
  std::set<std::string> tags;
};

// The job's next run: at the earliest due time of its tags (but not before
// `not_before_us`, the end of a backoff), carrying every tag due by then —
// or, when that time is past (an overdue run starts now), every tag due by
// `now_us`. time_us may be in the past: the run is due at once.
NextRun PlanNextRun(std::string_view job, const store::Schedule& schedule,
                    const std::map<std::string, int64_t>& last_by_tag,
                    int64_t now_us, int64_t not_before_us = 0);

// Seconds to wait after the n-th failure in a row (n >= 1):
// base, 2 base, 4 base, ... capped at max_s.
int64_t BackoffSeconds(int failures, int64_t base_s, int64_t max_s);

// A job is late when its newest revision is older than 1.5 times its
// smallest interval. A job with no revision yet is not late (as in
// backy 2), so a new job does not alert before its first backup.
struct Sla {
  bool late = false;
  int64_t age_s = 0;    // age of the newest revision (0 without one)
  int64_t limit_s = 0;  // 1.5 * smallest interval
};
Sla SlaOf(const store::Schedule& schedule, std::optional<int64_t> newest_us,
          int64_t now_us);

// What the last run of a job did.
enum class RunResult { kNone, kOk, kWarning, kFailed, kInterrupted };
std::string RunResultName(RunResult r);

// What the status and the metrics show of a job's repository, read with
// its history (reconcile.h, LoadHistory).
struct RepositoryFigures {
  int64_t revisions = 0;
  // The newest revision's stats (the last backup that succeeded).
  uint64_t newest_bytes_read = 0;
  uint64_t newest_bytes_written = 0;
  uint64_t disk_bytes = 0;  // the repository directory's allocated bytes
  bool disk_measured = false;
};

// Everything the scheduler knows about one job.
struct JobState {
  JobConfig config;
  // From the repository: newest revision per tag, newest revision overall.
  std::map<std::string, int64_t> last_by_tag;
  std::optional<int64_t> newest_us;
  RepositoryFigures figures;
  // Current run.
  bool running = false;
  bool removed = false;  // dropped from the config while running
  bool run_requested = false;
  int64_t started_us = 0;
  std::set<std::string> running_tags;
  // Last finished run.
  int64_t last_time_us = 0;  // start of the last run (0: none)
  double last_duration_s = 0;
  std::set<std::string> last_tags;
  RunResult last_result = RunResult::kNone;
  std::string last_message;
  // Backoff.
  int failures = 0;  // in a row
  // Failed runs since the daemon started (a Prometheus counter).
  int64_t failures_total = 0;
  int64_t retry_at_us = 0;
  // Another host held the job's lease (a rados: base-dir): not before
  // this is it tried again. Not a failure.
  int64_t claim_retry_us = 0;
  // The copy to config.copy_to: the last one's result and error, when one
  // last succeeded (0: never, since the daemon started) and how many
  // failed since the daemon started (a Prometheus counter).
  RunResult last_copy_result = RunResult::kNone;
  std::string last_copy_message;
  int64_t last_copy_success_us = 0;
  int64_t copy_failures_total = 0;
};

// A run to start now.
struct RunStart {
  std::string job;
  std::set<std::string> tags;
  bool requested = false;  // asked for (Request), not due by the schedule
};

class Planner {
 public:
  // Applies a (re)loaded config: adds new jobs, updates changed ones, drops
  // removed ones — or, when running, marks them `removed` so the run
  // finishes and Finish() drops them.
  void Configure(const DaemonConfig& config);

  // Sets the history read from the job's repository.
  void SetHistory(const std::string& job,
                  std::map<std::string, int64_t> last_by_tag,
                  std::optional<int64_t> newest_us);

  // Sets the figures read from the job's repository.
  void SetFigures(const std::string& job, const RepositoryFigures& figures);

  // The runs to start at `now_us`: requested runs first, then due jobs by
  // due time and name, while fewer than the worker limit run. Marks them
  // running.
  std::vector<RunStart> Start(int64_t now_us);

  // Records the end of a job's run. kFailed backs off exponentially;
  // kOk/kWarning reset the backoff and record the tags as taken at the
  // run's start (SetHistory afterwards refines this from the repository).
  void Finish(const std::string& job, int64_t now_us, RunResult result,
              const std::string& message);

  // Undoes Start() for a run that did not start because another host
  // runs the job or just ran it: nothing is recorded as run or failed;
  // the job is not tried before `retry_us`.
  void Unstart(const std::string& job, int64_t retry_us);

  // Records the end of a job's copy step (before Finish of its run).
  void FinishCopy(const std::string& job, int64_t now_us, bool ok,
                  const std::string& message);

  // Asks for a run of `job` as soon as a worker is free: the tags due now,
  // or else the tags of its next run. False when the job is unknown.
  bool Request(const std::string& job);

  // The job's next run as planned now (ignoring the worker limit).
  NextRun Next(const std::string& job, int64_t now_us) const;

  int Running() const;
  // The jobs due (or requested) at `now_us` that wait for a free worker.
  int Queued(int64_t now_us) const;
  const std::map<std::string, JobState>& jobs() const { return jobs_; }
  const DaemonConfig& config() const { return config_; }

 private:
  // A job that may start now: requested (priority 0) or due (1).
  struct StartCandidate {
    int priority = 1;
    int64_t due_us = 0;
    std::set<std::string> tags;
  };
  std::optional<StartCandidate> Candidate(const std::string& name,
                                          const JobState& st,
                                          int64_t now_us) const;

  DaemonConfig config_;
  std::map<std::string, JobState> jobs_;
};

}  // namespace backy::backup::scheduler
