// Child supervision for the scheduler: a job's run is child processes in a
// row (`backy -b DIR upgrade` for a backy 2.x repository, `backup TAGS`,
// `expire`, `purge`; with a copy target `copy --to TARGET -r ID...`, then
// `-b TARGET expire` and `purge`; then the backup-completed-callback), each
// forked and
// exec'd with its stderr read through a pipe, reaped on SIGCHLD, and
// SIGTERM'd on shutdown. The job's log DIR/backy.log gets each step's start
// (with its command line), its outcome (with the one-line error of a
// failure) and the run's end. The Supervisor owns the children, their pipes and
// the callback's time limit, and reports each run's end once. Asio stays in
// supervisor.cc. Used from the io_context's thread only.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backup/scheduler/plan.h"
#include "store/repository_lock.h"
#include "store/status.h"

namespace boost::asio {
class io_context;
}

namespace backy::backup::scheduler {

// The steps of a run, in order. kUpgrade only for a backy 2.x repository,
// kCallback only with a callback and after a successful backup.
// kCopy, kCopyExpire and kCopyPurge only with a copy target and after a
// successful backup; the target's expire and purge only after a copy that
// succeeded.
enum class Step {
  kUpgrade,
  kBackup,
  kExpire,
  kPurge,
  kCopy,
  kCopyExpire,
  kCopyPurge,
  kCallback
};
const char* StepName(Step step);

// What one run does.
struct RunSpec {
  std::string job;
  std::string dir;  // the job's repository
  // The local directory of the job's log, LOG_DIR/backy.log: `dir` for a
  // directory repository, STATE/JOB for one in a pool.
  std::string log_dir;
  // Global options every backy child gets before -b (--ceph-conf ...).
  std::vector<std::string> global_args;
  // The job's lease (Repository::LockJob), held until the run ends.
  store::RepositoryLock lease;
  std::set<std::string> tags;
  // The repository is still backy 2.x's: `backy upgrade` it first (its
  // output, the last kLoggedOutputMax bytes, goes to DIR/backy.log); a
  // failed upgrade fails the run. `upgraded` (if set) is called once it
  // succeeded, before the backup starts (the daemon writes the job's source
  // and schedule into the now current config there).
  bool upgrade = false;
  std::function<void()> upgraded;
  // global.backup-completed-callback: run as `CALLBACK JOB` with `backy -b
  // DIR status --yaml` on its stdin after expire and purge, when the backup
  // succeeded. Its exit status and the last kLoggedOutputMax bytes of its
  // output go to DIR/backy.log; after `callback_timeout_s` its process
  // group gets SIGTERM, 5 s later SIGKILL. It never changes the result.
  std::string callback;
  int64_t callback_timeout_s = 60;
  // The copy target (a repository location; "" for none) and what the
  // copy step calls first, on a thread of its own (it may talk to a remote
  // store): it makes the target exist with its schedule and returns the
  // revision ids to send (none: nothing is new, the copy is done). An
  // error fails the copy like a failed `backy copy`.
  std::string copy_to;
  std::function<Result<std::vector<std::string>>()> prepare_copy;
};
// Of an upgrade's or a callback's output, the job's log gets this much (its
// end).
inline constexpr size_t kLoggedOutputMax = 4096;

// How a run ended: kOk, kWarning (expire, purge, the copy or the target's
// expire or purge failed; the revision is safe), kFailed (the upgrade or the
// backup failed) or kInterrupted (stopped by SIGTERM). The callback's outcome
// is only logged. A failed copy makes the run kWarning (the revision is safe in
// the job's repository) and is reported in `copy` as well.
struct RunEnd {
  std::string job;
  std::set<std::string> tags;
  RunResult result = RunResult::kOk;
  std::string message;  // the failing step's error line, "" when ok
  struct Copy {
    bool ran = false;  // the copy step ran (it had a target and a backup)
    bool ok = false;
    std::string message;  // its error line when it failed
  } copy;
};

// The error line of a failed child's stderr: the last "backy: ..." line
// without that prefix ("backy: backup: no such file (x)" becomes
// "backup: no such file (x)"), else the last non-empty line.
std::string ErrorLine(const std::string& stderr_text);

class Supervisor {
 public:
  using OnEnd = std::function<void(const RunEnd&)>;

  // Children run `backy_binary` (with -v when `verbose`); `on_end` is
  // called on the io_context's thread after a run's last step, when the run
  // no longer counts in size().
  Supervisor(boost::asio::io_context& ioc, std::string backy_binary,
             bool verbose, OnEnd on_end);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the run `spec` with its first step (upgrade or backup).
  // REQUIRES: no run of `spec.job` is in progress.
  void Start(RunSpec spec);

  // Reaps the children that exited (on SIGCHLD; no signal is lost: every
  // running child is polled).
  void Reap();

  // Shutdown: SIGTERM to every running child; no further step starts, and
  // a backup stopped this way ends kInterrupted.
  void Stop();

  // Runs in progress.
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backy::backup::scheduler
