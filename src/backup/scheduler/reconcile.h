// Bringing the disk in line with a (re)loaded scheduler config: the
// owner-only base-dir and status directory, one repository per job (its
// config rewritten when the job's source or schedule changed), and each
// job's history (newest revision per tag) read back into the Planner. Also
// the log lines that say which jobs a reload added, changed or removed.
// Plain functions on the caller's thread; the Planner is not thread-safe.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "backup/scheduler/config.h"
#include "backup/scheduler/plan.h"
#include "store/repository_lock.h"
#include "store/revision.h"
#include "store/schedule.h"
#include "store/status.h"

namespace backy::backup::scheduler {

// Creates `dir` mode 0700 (its missing parents with the umask's mode). An
// existing directory is kept as it is; with `warn`, a warning says so when
// other users may read it. InvalidArgument when `dir` is not a directory.
Status MakePrivateDir(const std::string& dir, bool warn);

// Creates the file `path` mode 0600 if missing, and makes an existing one
// of ours 0600, before another library opens it with the umask's mode.
// Never follows a symlink there. InvalidArgument for a non-regular file.
Status MakePrivateFile(const std::string& path);

// The base-dir and the status file's directory, owner-only. The error
// names the config key ("global.base-dir: ...").
Status PrepareDirectories(const DaemonConfig& config);

// Logs "job X: added/changed/removed" for each difference (a reload).
void LogJobChanges(const DaemonConfig& before, const DaemonConfig& after);

// Whether the job's next run must `backy upgrade` `dir` before its backup:
// a repository backy 2.x wrote (store::IsLegacyRepository), or one whose
// upgrade was interrupted after it wrote the current config, before it
// removed the last 2.x file (2.x's lock .backup goes last; running it
// again removes the rest). False when there is no repository or its config
// cannot be read (the backup then says why).
bool NeedsUpgrade(const std::string& dir);

// Creates the job's repository, or rewrites its config when the job's
// source or schedule changed, so `backy -b BASE/JOB expire` by hand
// applies the same schedule. A backy 2.x repository is left as it is (a
// current config would make it look upgraded): the run upgrades it first,
// then calls this again. Errors are logged: the job then fails when it
// runs, the other jobs go on.
void EnsureRepository(const DaemonConfig& config, const std::string& name,
                      const JobConfig& job);

// The tags of `start` still due once the job's history was read again from
// its repository (another host may have just run it): empty when none is.
// Opens the repository and, for a rados: base-dir, takes the job's lease
// (Repository::LockJob) into `*lease` first; Busy when another host holds it.
Result<std::set<std::string>> ClaimRun(const DaemonConfig& config,
                                       const std::string& name,
                                       Planner* planner, int64_t now_us,
                                       store::RepositoryLock* lease);

// Reads the newest revision per tag from the job's repository (what ran)
// into `planner`, and its figures for the status (RepositoryFigures). The
// disk use walks the whole repository (a stat per chunk), so it is
// measured only with `measure_disk` or when the job has no measurement
// yet; otherwise the last one stays. A missing repository leaves the
// history as it is.
void LoadHistory(const DaemonConfig& config, const std::string& name,
                 Planner* planner, bool measure_disk = true);

// The revisions of `source` (oldest first) a copy sends to a target that
// holds `target` and keeps by `schedule`: those it lacks that are not
// older than its newest one (every one when it is empty), except those
// whose every tag `schedule` keeps 0 of (its expire would remove them at
// once). Older ones it lacks are left out: they are what the target's own
// schedule expired (sending them again would send their chunks again each
// run), or a revision the copy could not read. Pure.
std::vector<std::string> NewRevisionsFor(
    const std::vector<store::Revision>& source,
    const std::vector<store::Revision>& target,
    const store::Schedule& schedule);

// For the copy step (off the daemon's thread: it may open a remote store):
// creates the repository at `target` with `source_dir`'s config and
// `schedule`, or writes `schedule` into its config when it differs, so
// `backy -b TARGET expire` by hand applies it too; then returns
// NewRevisionsFor(source, target). Errors name the target or the source.
// Thread-safe (it touches no Planner).
Result<std::vector<std::string>> PrepareCopyTarget(
    const std::string& source_dir, const std::string& target,
    const store::Schedule& schedule,
    const store::RepositoryOptions& options = {});

// Configures `planner` with `config`, then ensures every job's repository
// and loads its history (measuring the disk use of new jobs only: a reload
// stays cheap).
void ReconcileJobs(const DaemonConfig& config, Planner* planner);

}  // namespace backy::backup::scheduler
