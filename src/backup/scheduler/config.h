// The scheduler's config file (/etc/backy.conf, YAML): global settings, the
// control API, named schedules and the jobs. See man/backy.conf.5 for every
// key and its default. Plain value types and a pure loader; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/repository.h"
#include "store/status.h"

namespace backy::backup::scheduler {

struct ApiConfig {
  // "127.0.0.1:PORT", "[::1]:PORT" or "unix:/path/to.sock". Empty: no API.
  std::string listen;
  // The bearer token every request must carry; read from `token-file` when
  // that is set. Empty: the API is not started.
  std::string token;
  std::string token_file;
  // GET /metrics is answered without the token (a Prometheus server then
  // needs no secret; the metrics name the jobs, nothing more).
  bool metrics_public = false;
};

// copy-schedule (global or per job): the keep of the tags it lists, and
// min-keep, in the copy's target; every other tag of the job's schedule
// keeps what it keeps in the job's own repository.
struct CopySchedule {
  std::map<std::string, uint32_t> keep;
  std::optional<uint32_t> min_keep;
  bool operator==(const CopySchedule&) const = default;
};

struct JobConfig {
  std::string schedule_name;
  store::Schedule schedule;
  // The source section as written to the repository config (type, filename
  // or pool/image, ...).
  std::map<std::string, std::string> source;
  // Where each successful run copies the new revisions: a repository
  // location (an absolute directory or rados:POOL[/NS]/NAME), resolved
  // from the job's copy-to or global.copy-to; "" for no copy.
  std::string copy_to;
  // The target's retention: `schedule` with copy-schedule's keeps (the
  // job's own, else global.copy-schedule). Written into the target's
  // config, so `backy -b TARGET expire` by hand does the same.
  store::Schedule copy_schedule;
  bool operator==(const JobConfig&) const = default;
};

struct DaemonConfig {
  std::string path;  // the file it was read from, for messages
  // An absolute directory holding one repository directory per job, or
  // rados:POOL[/NAMESPACE]: each job's repository is rados:POOL[/NS]/JOB,
  // shared by every host running the scheduler on this config.
  std::string base_dir = "/srv/backy";
  // Where this host keeps what is its own (status file, lock, metrics,
  // its log, the job logs): base-dir for a directory, else global.state-dir
  // (default /var/lib/backy).
  std::string state_dir;
  // global.ceph-conf and global.client-id, for a rados: base-dir.
  store::RadosOptions rados;
  int worker_limit = 1;
  // global.backup-completed-callback (backy 2.5): run as `CALLBACK JOB`
  // after each successful backup, `backy -b REPO status --yaml` on its
  // stdin. An absolute path or a name looked up in PATH; "" for none.
  std::string callback;
  int64_t callback_timeout_s = 60;  // then SIGTERM, 5 s later SIGKILL
  std::string status_file;          // default: BASE/status
  int64_t status_interval_s = 30;
  std::string log_file;          // default: BASE/scheduler.log; "-": none
  int64_t backoff_base_s = 120;  // first retry of a failed job
  int64_t backoff_max_s = 6 * 3600;
  // global.copy-to: a base location (an absolute directory or
  // rados:POOL[/NS]); each job's target is BASE/JOB. "" for none.
  std::string copy_to;
  CopySchedule copy_schedule;  // global.copy-schedule
  ApiConfig api;
  std::map<std::string, store::Schedule> schedules;
  std::map<std::string, JobConfig> jobs;
  // "PATH:LINE: ..." for each key of a backy 2.x config that is accepted
  // but does nothing here (telnet-port, a flyingcircus source's Consul
  // freeze, ...): the caller logs them, once per read of the file.
  std::vector<std::string> warnings;

  bool RadosBase() const {
    return store::RepositoryLocation::IsRados(base_dir);
  }
  // The job's repository location: BASE/JOB, or rados:POOL[/NS]/JOB.
  std::string JobDir(const std::string& job) const {
    return base_dir + "/" + job;
  }
  // The local directory of the job's log (backy.log): the repository
  // directory, or STATE/JOB for a repository in a pool.
  std::string JobStateDir(const std::string& job) const {
    return RadosBase() ? state_dir + "/" + job : JobDir(job);
  }
  // What every Repository::Open/Init/WriteConfig of a job's repository
  // gets (the cluster of a rados: base-dir).
  store::RepositoryOptions RepoOptions() const { return {rados}; }
  // `--ceph-conf FILE --client-id ID` (those set) for the backy children.
  std::vector<std::string> GlobalArgs() const;
  // The lock one scheduler per state-dir holds.
  std::string LockFile() const { return state_dir + "/scheduler.lock"; }
  // global.log-file when it is not given.
  std::string DefaultLogFile() const { return state_dir + "/scheduler.log"; }
  // The Prometheus textfile (metrics.h), in the status file's directory.
  std::string MetricsFile() const;
};

// The allowed ranges of the numeric values (InvalidArgument outside them,
// naming file, line and range; see man/backy.conf.5).
inline constexpr int64_t kMaxWorkerLimit = 256;
inline constexpr int64_t kMaxStatusInterval = 86400;   // 1d
inline constexpr int64_t kMaxBackoff = 4 * 7 * 86400;  // 4w
inline constexpr int64_t kMaxInterval = 3650 * 86400;  // 3650d
inline constexpr int64_t kMaxKeep = 1'000'000;         // keep, min-keep
inline constexpr int64_t kMaxCallbackTimeout = 3600;   // 1h

// Job names the scheduler refuses because it creates files of these names
// in base-dir (besides whatever status-file, log-file and api.listen name;
// backy.prom is the metrics file next to the default status file).
inline constexpr const char* kReservedJobNames[] = {
    "status", "scheduler.lock", "scheduler.log", "api.sock", "backy.prom"};

// Spelled as a job name may be (it names the job's repository directory):
// letters, digits, '.', '_', '-', not starting with '.' or '-'. The config
// also refuses names longer than NAME_MAX and kReservedJobNames.
bool IsJobNameSpelling(std::string_view name);

// A job's copy target under global.copy-to `base`: BASE/JOB for a
// directory, rados:POOL[/NS]/JOB for rados:POOL[/NS].
std::string CopyTargetUnder(const std::string& base, const std::string& job);

// The target's schedule: `schedule` with the keeps and min-keep of `copy`
// (tags of `copy` not in `schedule` are left out).
store::Schedule TargetSchedule(const store::Schedule& schedule,
                               const CopySchedule& copy);

// Parses `text` (the content of `path`). Every error is InvalidArgument
// with a message "PATH:LINE: what is wrong" (LINE 1-based). A backy 2.4 or
// 2.5 config is read as it is: its keys without an equivalent here add a
// line to `warnings` instead (see man/backy.conf.5, "BACKY 2.X"); a
// `flyingcircus` source becomes the ceph-rbd source of its pool/image. Pure
// (reads no file), so it is also the entry point of the config fuzz target.
// A non-empty `state_dir` (--state-dir) replaces global.state-dir.
Result<DaemonConfig> ParseDaemonConfig(const std::string& text,
                                       const std::string& path,
                                       const std::string& state_dir = "");
// Reads and parses the file at `path` (and the API token file, if any).
Result<DaemonConfig> LoadDaemonConfig(const std::string& path,
                                      const std::string& state_dir = "");

// The default location of the config file.
inline constexpr const char* kDefaultConfigPath = "/etc/backy.conf";
// global.state-dir when base-dir is rados: and it is not given.
inline constexpr const char* kDefaultStateDir = "/var/lib/backy";

}  // namespace backy::backup::scheduler
