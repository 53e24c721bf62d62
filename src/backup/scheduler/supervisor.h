// Child supervision for the scheduler: a job's run is three child
// processes in a row (`backy -b DIR backup TAGS`, then `expire`, then
// `purge`), each forked and exec'd with its stderr read through a pipe,
// reaped on SIGCHLD, and SIGTERM'd on shutdown. The Supervisor owns the
// children and their pipes and reports each run's end once. Asio stays in
// supervisor.cc. Used from the io_context's thread only.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "backup/scheduler/plan.h"

namespace boost::asio {
class io_context;
}

namespace backy::backup::scheduler {

// The steps of a run, in order.
enum class Step { kBackup, kExpire, kPurge };
const char* StepName(Step step);

// How a run ended: kOk, kWarning (expire or purge failed; the revision is
// safe), kFailed (the backup failed) or kInterrupted (stopped by SIGTERM).
struct RunEnd {
  std::string job;
  std::set<std::string> tags;
  RunResult result = RunResult::kOk;
  std::string message;  // the failing step's error line, "" when ok
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

  // Starts the run of `job` (repository `dir`) with its backup step.
  // REQUIRES: no run of `job` is in progress.
  void Start(const std::string& job, const std::string& dir,
             const std::set<std::string>& tags);

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
