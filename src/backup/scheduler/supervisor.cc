#include "backup/scheduler/supervisor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "backup/logging.h"

namespace backy::backup::scheduler {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// After SIGTERM at the time limit, a callback has this long before SIGKILL,
// and then this long to close its output (a grandchild that left the
// process group may hold it) before the step ends without it.
constexpr auto kCallbackKillGrace = std::chrono::seconds(5);
constexpr auto kCallbackEofGrace = std::chrono::seconds(1);

// Appends `text` (each of its lines) to the job's log DIR/backy.log, in
// the format of the lines its children write there (logging.h); a log
// that cannot be written is a warning in the scheduler's log.
void AppendJobLog(const std::string& dir, spdlog::level::level_enum level,
                  const std::string& text) {
  Status s = AppendToLog(RepositoryLogName(dir), level, text);
  if (!s.ok()) spdlog::warn("job log: {}", s.Message());
}

// The program `name` names: itself when it has a '/', else the first
// executable PATH/name; "" when there is none.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* env = std::getenv("PATH");
  const std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    const std::string dir = path.substr(pos, end - pos);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  return "";
}

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// In a forked child: async-signal-safe calls only. Closes every descriptor
// from 3 up (API sockets, the scheduler lock), unblocks the signals.
void ChildCloseAndUnblock() {
  if (::syscall(SYS_close_range, 3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
}

[[noreturn]] void ChildExec(const char* exe, char* const* argv) {
  ChildCloseAndUnblock();
  ::execv(exe, argv);
  const char* msg = "backy scheduler: cannot execute ";
  ssize_t ignored = ::write(2, msg, std::strlen(msg));
  ignored = ::write(2, exe, std::strlen(exe));
  ignored = ::write(2, "\n", 1);
  (void)ignored;
  ::_exit(127);
}

// In the forked child of a backy step: stdin /dev/null (`null`), stdout
// `out`, stderr `err`.
[[noreturn]] void ExecStep(int null, int out, int err, const char* exe,
                           char* const* argv) {
  ::dup2(null, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ChildExec(exe, argv);
}

// In the forked child of the callback: as in 2.5, `backy status --yaml`
// (`backy`, `status_argv`; a second process, in the callback's process
// group, dying with it) writes into a pipe the callback reads as stdin.
// The callback's stdout and stderr, and the status process's stderr, are
// `out`. Without a pipe the callback reads an empty stdin.
[[noreturn]] void ExecCallback(int null, int out, const char* callback,
                               char* const* argv, const char* backy,
                               char* const* status_argv) {
  int yaml[2] = {null, -1};
  const pid_t self = ::getpid();
  if (::pipe(yaml) != 0) {
    yaml[0] = null;
  } else if (::fork() == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != self) ::_exit(130);
    ::dup2(null, 0);
    ::dup2(yaml[1], 1);
    ::dup2(out, 2);
    ChildExec(backy, status_argv);
  }
  ::dup2(yaml[0], 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  ChildExec(callback, argv);
}

}  // namespace

const char* StepName(Step step) {
  switch (step) {
    case Step::kUpgrade:
      return "upgrade";
    case Step::kBackup:
      return "backup";
    case Step::kExpire:
      return "expire";
    case Step::kPurge:
      return "purge";
    case Step::kCopy:
      return "copy";
    case Step::kCopyExpire:
      return "copy-expire";
    case Step::kCopyPurge:
      return "copy-purge";
    case Step::kCallback:
      return "callback";
  }
  return "callback";
}

std::string ErrorLine(const std::string& stderr_text) {
  std::string last, last_backy;
  size_t pos = 0;
  while (pos < stderr_text.size()) {
    size_t end = stderr_text.find('\n', pos);
    if (end == std::string::npos) end = stderr_text.size();
    std::string line = stderr_text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    last = line;
    if (line.starts_with("backy: ")) last_backy = line.substr(7);
  }
  return last_backy.empty() ? last : last_backy;
}

struct Supervisor::Impl {
  // Not in an anonymous namespace: this file is compiled in one unity
  // translation unit with the other Asio files (src/backup/CMakeLists.txt),
  // where a member of anonymous-namespace type warns (-Wsubobject-linkage).
  // One run: its current step's child and what it said on stderr.
  struct JobRun {
    RunSpec spec;
    Step step = Step::kBackup;
    pid_t pid = -1;
    std::chrono::steady_clock::time_point run_started, step_started;
    bool exited = false;
    bool eof = false;
    int wait_status = 0;
    std::shared_ptr<asio::posix::stream_descriptor> err;
    std::shared_ptr<std::string> err_text;  // its tail, at most 16 KiB
    uint64_t err_bytes = 0;                 // all it said
    // The callback's time limit: SIGTERM, SIGKILL, then giving up its
    // output (kill_stage 0, 1, 2).
    std::shared_ptr<asio::steady_timer> timer;
    int kill_stage = 0;
    RunResult result = RunResult::kOk;
    std::string message;
    std::vector<std::string> copy_ids;  // what the copy step sends
    RunEnd::Copy copy;
  };

  asio::io_context& ioc;
  std::string backy_binary;
  bool verbose;
  OnEnd on_end;
  std::map<std::string, std::shared_ptr<JobRun>> runs;
  bool stopping = false;

  // `backy [-v] -l DIR/backy.log -b REPO COMMAND...` for `command`: the
  // job's log gets every step's lines, also those of the copy's target.
  std::vector<std::string> BackyArgsAt(
      const JobRun& run, const std::string& repo,
      std::initializer_list<std::string> command) const {
    std::vector<std::string> args = {"backy"};
    if (verbose) args.push_back("-v");
    args.insert(args.end(), run.spec.global_args.begin(),
                run.spec.global_args.end());
    args.insert(args.end(),
                {"-l", RepositoryLogName(run.spec.log_dir), "-b", repo});
    args.insert(args.end(), command);
    return args;
  }

  std::vector<std::string> BackyArgs(
      const JobRun& run, std::initializer_list<std::string> command) const {
    return BackyArgsAt(run, run.spec.dir, command);
  }

  std::vector<std::string> StepArgs(const JobRun& run) const {
    switch (run.step) {
      case Step::kUpgrade:
        return BackyArgs(run, {"upgrade"});
      case Step::kBackup:
        return BackyArgs(
            run, {"backup", fmt::format("{}", fmt::join(run.spec.tags, ","))});
      case Step::kExpire:
        return BackyArgs(run, {"expire"});
      case Step::kPurge:
        return BackyArgs(run, {"purge"});
      case Step::kCopy: {
        auto args = BackyArgs(run, {"copy", "--to", run.spec.copy_to});
        for (const auto& id : run.copy_ids) args.insert(args.end(), {"-r", id});
        return args;
      }
      case Step::kCopyExpire:
        return BackyArgsAt(run, run.spec.copy_to, {"expire"});
      case Step::kCopyPurge:
        return BackyArgsAt(run, run.spec.copy_to, {"purge"});
      case Step::kCallback:
        break;
    }
    return {run.spec.callback, run.spec.job};
  }

  void SpawnStep(const std::shared_ptr<JobRun>& run) {
    run->exited = run->eof = false;
    run->step_started = std::chrono::steady_clock::now();
    run->err_text = std::make_shared<std::string>();
    run->err_bytes = 0;
    const bool callback = run->step == Step::kCallback;
    // Everything the child needs, made before fork.
    const auto args = StepArgs(*run);
    auto argv = Argv(args);
    const std::string program =
        callback ? FindProgram(run->spec.callback) : backy_binary;
    if (program.empty()) {
      FinishStep(run, 127, run->spec.callback + ": not found in PATH");
      return;
    }
    std::vector<std::string> status_args = {"backy"};
    status_args.insert(status_args.end(), run->spec.global_args.begin(),
                       run->spec.global_args.end());
    status_args.insert(status_args.end(),
                       {"-b", run->spec.dir, "status", "--yaml"});
    auto status_argv = Argv(status_args);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      FinishStep(run, 1, "pipe: " + std::string(std::strerror(errno)));
      return;
    }
    const pid_t parent = ::getpid();
    const char* exe = program.c_str();
    const char* backy = backy_binary.c_str();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      FinishStep(run, 1, "fork: " + std::string(std::strerror(errno)));
      return;
    }
    if (pid == 0) {
      // Child: async-signal-safe calls only. Dies with the daemon, so a
      // killed daemon leaves no backup running on its own.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(130);
      ::setpgid(0, 0);
      const int null = ::open("/dev/null", O_RDWR);
      if (callback) {
        ExecCallback(null, fds[1], exe, argv.data(), backy, status_argv.data());
      }
      // The upgrade's summary (stdout) goes to the job's log.
      ExecStep(null, run->step == Step::kUpgrade ? fds[1] : null, fds[1], exe,
               argv.data());
    }
    ::close(fds[1]);
    run->pid = pid;
    AppendJobLog(
        run->spec.log_dir, spdlog::level::info,
        fmt::format("scheduler: job {}: {} started (pid {}): {}", run->spec.job,
                    StepName(run->step), pid, fmt::join(args, " ")));
    run->err = std::make_shared<asio::posix::stream_descriptor>(ioc, fds[0]);
    spdlog::debug("job {}: {} started, pid {}", run->spec.job,
                  StepName(run->step), pid);
    if (callback) ArmCallbackTimer(run);
    ReadStderr(run);
    // The child may have exited before the SIGCHLD handler is armed again.
    Reap();
  }

  // The callback's time limit: SIGTERM to its process group, SIGKILL
  // kCallbackKillGrace later, and kCallbackEofGrace after that the step
  // ends even if a stray grandchild still holds its output open.
  void ArmCallbackTimer(const std::shared_ptr<JobRun>& run) {
    run->kill_stage = 0;
    run->timer = std::make_shared<asio::steady_timer>(ioc);
    run->timer->expires_after(
        std::chrono::seconds(run->spec.callback_timeout_s));
    WaitCallbackTimer(run);
  }

  void WaitCallbackTimer(const std::shared_ptr<JobRun>& run) {
    auto timer = run->timer;
    timer->async_wait([this, run, timer](error_code ec) {
      if (ec || timer != run->timer || run->pid <= 0) return;
      switch (run->kill_stage++) {
        case 0:
          ::kill(-run->pid, SIGTERM);
          timer->expires_after(kCallbackKillGrace);
          break;
        case 1:
          ::kill(-run->pid, SIGKILL);
          timer->expires_after(kCallbackEofGrace);
          break;
        default: {
          error_code ignored;
          run->err->close(ignored);  // the pending read ends: eof
          return;
        }
      }
      WaitCallbackTimer(run);
    });
  }

  void ReadStderr(const std::shared_ptr<JobRun>& run) {
    auto buf = std::make_shared<std::array<char, 4096>>();
    auto err = run->err;
    auto text = run->err_text;
    err->async_read_some(asio::buffer(*buf),
                         [this, run, buf, err, text](error_code ec, size_t n) {
                           if (text != run->err_text)
                             return;  // a later step owns the pipe
                           text->append(buf->data(), n);
                           run->err_bytes += n;
                           if (text->size() > 16384)
                             text->erase(0, text->size() - 8192);
                           if (ec) {
                             run->eof = true;
                             MaybeStepDone(run);
                             return;
                           }
                           ReadStderr(run);
                         });
  }

  void Reap() {
    for (auto& [job, run] : runs) {
      if (run->exited || run->pid <= 0) continue;
      int st = 0;
      const pid_t r = ::waitpid(run->pid, &st, WNOHANG);
      if (r == run->pid) {
        run->exited = true;
        run->wait_status = st;
        // Posted: MaybeStepDone may erase from runs.
        asio::post(ioc, [this, run = run] { MaybeStepDone(run); });
      }
    }
  }

  void MaybeStepDone(const std::shared_ptr<JobRun>& run) {
    if (!run->exited || !run->eof || run->pid <= 0) return;
    run->pid = -1;
    error_code ignored;
    run->err->close(ignored);
    const int st = run->wait_status;
    const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FinishStep(run, code, ErrorLine(*run->err_text));
  }

  // "; its output:\nTEXT" with the last kLoggedOutputMax bytes of what
  // the step's child wrote ("" when nothing).
  static std::string OutputTail(const JobRun& run) {
    std::string out = *run.err_text;
    if (out.size() > kLoggedOutputMax) {
      out.erase(0, out.size() - kLoggedOutputMax);
    }
    const size_t kept = out.size();
    const uint64_t cut =
        run.err_bytes - std::min<uint64_t>(run.err_bytes, kept);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (out.empty()) return "";
    return (cut > 0
                ? fmt::format("; the last {} bytes of its output ({} cut):\n",
                              kept, cut)
                : std::string("; its output:\n")) +
           out;
  }

  // The callback's end, in the job's log and the scheduler's; the run's
  // result stays what the backup, expire and purge made it.
  void FinishCallback(const std::shared_ptr<JobRun>& run, int code,
                      const std::string& message) {
    if (run->timer) run->timer->cancel();
    run->timer.reset();
    const std::string& job = run->spec.job;
    std::string how = fmt::format("exited with {}", code);
    if (run->kill_stage > 0 && code > 128) {
      how = fmt::format("was stopped at its time limit of {}s ({})",
                        run->spec.callback_timeout_s, ::strsignal(code - 128));
    } else if (run->kill_stage > 0) {
      how += fmt::format(
          ", but its output stayed open past its time limit of {}s (a "
          "process it left running?)",
          run->spec.callback_timeout_s);
    }
    std::string text = fmt::format("scheduler: callback {} {} {}",
                                   run->spec.callback, job, how);
    const std::string out = OutputTail(*run);
    text += !out.empty() || message.empty() ? out : ": " + message;
    const bool ok = code == 0 && run->kill_stage == 0;
    AppendJobLog(run->spec.log_dir,
                 ok ? spdlog::level::info : spdlog::level::warn, text);
    if (ok) {
      spdlog::info("job {}: callback done", job);
    } else {
      spdlog::warn("job {}: callback {} (see {})", job, how,
                   RepositoryLogName(run->spec.log_dir));
    }
    EndRun(run);
  }

  // The upgrade's end: a failed one fails the run; after a good one the
  // daemon updates the config, then the backup starts.
  void FinishUpgrade(const std::shared_ptr<JobRun>& run, int code,
                     const std::string& failure) {
    if (code != 0) {
      run->result = (code == 130 || stopping) ? RunResult::kInterrupted
                                              : RunResult::kFailed;
      run->message = failure;
      AppendJobLog(
          run->spec.log_dir, spdlog::level::err,
          "scheduler: backy upgrade failed: " + failure + OutputTail(*run));
      EndRun(run);
      return;
    }
    AppendJobLog(run->spec.log_dir, spdlog::level::info,
                 "scheduler: backy upgrade done" + OutputTail(*run));
    spdlog::info("job {}: upgraded the backy 2.x repository {}", run->spec.job,
                 run->spec.dir);
    if (run->spec.upgraded) run->spec.upgraded();
    if (stopping) {
      run->result = RunResult::kInterrupted;
      run->message = "stopped after the upgrade, before the backup";
      EndRun(run);
      return;
    }
    run->step = Step::kBackup;
    SpawnStep(run);
  }

  static double SecondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
        .count();
  }

  // The outcome of a backup, expire or purge in the job's log: done, or
  // its exit code and one-line error (an error for the backup, which fails
  // the run; a warning for expire and purge, which leave the revision).
  void LogStepEnd(const JobRun& run, int code,
                  const std::string& failure) const {
    const char* step = StepName(run.step);
    const double secs = SecondsSince(run.step_started);
    if (code == 0) {
      AppendJobLog(run.spec.log_dir, spdlog::level::info,
                   fmt::format("scheduler: {} done in {:.1f}s", step, secs));
    } else if (code == 130 || stopping) {
      AppendJobLog(
          run.spec.log_dir, spdlog::level::warn,
          fmt::format("scheduler: {} stopped after {:.1f}s (exit {}): {}", step,
                      secs, code, failure));
    } else {
      AppendJobLog(
          run.spec.log_dir,
          run.step == Step::kBackup || run.step == Step::kCopy
              ? spdlog::level::err
              : spdlog::level::warn,
          fmt::format("scheduler: {} failed after {:.1f}s (exit {}): {}", step,
                      secs, code, failure));
    }
  }

  void FinishStep(const std::shared_ptr<JobRun>& run, int code,
                  const std::string& message) {
    const char* step = StepName(run->step);
    const std::string failure =
        message.empty()
            ? std::string(step) + " exited with " + std::to_string(code)
            : message;
    if (run->step == Step::kCallback) {
      FinishCallback(run, code, message);
      return;
    }
    if (run->step == Step::kUpgrade) {
      FinishUpgrade(run, code, failure);
      return;
    }
    LogStepEnd(*run, code, failure);
    if (run->step == Step::kBackup) {
      if (code != 0) {
        run->result = (code == 130 || stopping) ? RunResult::kInterrupted
                                                : RunResult::kFailed;
        run->message = failure;
        EndRun(run);
        return;
      }
      spdlog::info("job {}: backup {} done", run->spec.job,
                   fmt::join(run->spec.tags, ","));
    } else if (code != 0 && stopping) {
      // Stopped by our own SIGTERM: the revision is complete; expire,
      // purge and the copy run again after the next backup.
      spdlog::info("job {}: {} stopped by the shutdown", run->spec.job, step);
    } else if (run->step == Step::kCopy) {
      run->copy = {true, code == 0, code == 0 ? "" : failure};
      if (code != 0) {
        // The revision is safe in the job's repository; the next run sends
        // what the target still lacks.
        run->result = RunResult::kWarning;
        run->message += (run->message.empty() ? "" : "; ") +
                        std::string("copy to ") + run->spec.copy_to + ": " +
                        failure;
        spdlog::warn("job {}: copy to {} failed: {}", run->spec.job,
                     run->spec.copy_to, failure);
      } else {
        spdlog::info("job {}: copied to {}", run->spec.job, run->spec.copy_to);
      }
    } else if (code != 0) {
      // The revision is safe; a failing expire or purge is a warning.
      run->result = RunResult::kWarning;
      run->message += (run->message.empty() ? "" : "; ") + failure;
      spdlog::warn("job {}: {} failed: {}", run->spec.job, step, failure);
    }
    const std::optional<Step> next = NextStep(*run);
    if (stopping || !next) {
      EndRun(run);
      return;
    }
    run->step = *next;
    if (run->step == Step::kCopy) {
      StartCopy(run);
    } else {
      SpawnStep(run);
    }
  }

  // The step after the current one (which ended as recorded in `run`), or
  // none: the run ends.
  static std::optional<Step> NextStep(const JobRun& run) {
    switch (run.step) {
      case Step::kBackup:
        return Step::kExpire;
      case Step::kExpire:
        return Step::kPurge;
      case Step::kPurge:
        if (!run.spec.copy_to.empty()) return Step::kCopy;
        break;
      case Step::kCopy:
        // A target the copy could not write is not expired either.
        if (run.copy.ok) return Step::kCopyExpire;
        break;
      case Step::kCopyExpire:
        return Step::kCopyPurge;
      case Step::kUpgrade:
      case Step::kCopyPurge:
      case Step::kCallback:
        break;
    }
    if (run.step != Step::kCallback && !run.spec.callback.empty()) {
      return Step::kCallback;
    }
    return std::nullopt;
  }

  // The copy step: prepare_copy on a thread of its own (opening a remote
  // target must not stall the other jobs), then `backy copy` for the ids
  // it chose. The run stays in `runs` meanwhile, so a shutdown waits for
  // it.
  void StartCopy(const std::shared_ptr<JobRun>& run) {
    run->step_started = std::chrono::steady_clock::now();
    auto prepare = run->spec.prepare_copy;
    std::thread([this, run, prepare] {
      Result<std::vector<std::string>> ids =
          prepare ? prepare() : std::vector<std::string>{};
      asio::post(ioc, [this, run, ids = std::move(ids)]() mutable {
        CopyPrepared(run, std::move(ids));
      });
    }).detach();
  }

  void CopyPrepared(const std::shared_ptr<JobRun>& run,
                    Result<std::vector<std::string>> ids) {
    if (stopping) {
      spdlog::info("job {}: copy skipped: the scheduler is stopping",
                   run->spec.job);
      EndRun(run);
      return;
    }
    if (!ids.ok()) {
      FinishStep(run, 1, ids.status().Message());
      return;
    }
    if (ids->empty()) {
      AppendJobLog(run->spec.log_dir, spdlog::level::info,
                   "scheduler: copy: " + run->spec.copy_to +
                       " has every new revision already");
      FinishStep(run, 0, "");
      return;
    }
    run->copy_ids = std::move(*ids);
    SpawnStep(run);
  }

  void EndRun(const std::shared_ptr<JobRun>& run) {
    AppendJobLog(
        run->spec.log_dir,
        run->result == RunResult::kOk       ? spdlog::level::info
        : run->result == RunResult::kFailed ? spdlog::level::err
                                            : spdlog::level::warn,
        fmt::format("scheduler: job {}: run {} ended {} after {:.1f}s{}",
                    run->spec.job, fmt::join(run->spec.tags, ","),
                    RunResultName(run->result), SecondsSince(run->run_started),
                    run->message.empty() ? "" : ": " + run->message));
    runs.erase(run->spec.job);
    // Another host may run the job from now on.
    run->spec.lease.Release();
    on_end(RunEnd{run->spec.job, run->spec.tags, run->result, run->message,
                  run->copy});
  }
};

Supervisor::Supervisor(asio::io_context& ioc, std::string backy_binary,
                       bool verbose, OnEnd on_end)
    : impl_(new Impl{ioc,
                     std::move(backy_binary),
                     verbose,
                     std::move(on_end),
                     {},
                     false}) {}

Supervisor::~Supervisor() = default;

void Supervisor::Start(RunSpec spec) {
  auto run = std::make_shared<Impl::JobRun>();
  run->spec = std::move(spec);
  run->step = run->spec.upgrade ? Step::kUpgrade : Step::kBackup;
  run->run_started = std::chrono::steady_clock::now();
  const std::string& job = run->spec.job;
  impl_->runs[job] = run;
  if (run->spec.upgrade) {
    spdlog::info("job {}: {} is a backy 2.x repository: upgrading it first",
                 job, run->spec.dir);
    AppendJobLog(run->spec.log_dir, spdlog::level::info,
                 "scheduler: a backy 2.x repository: running backy upgrade "
                 "before the backup");
  }
  spdlog::info("job {}: starting backup {}", job,
               fmt::join(run->spec.tags, ","));
  impl_->SpawnStep(run);
}

void Supervisor::Reap() { impl_->Reap(); }

void Supervisor::Stop() {
  impl_->stopping = true;
  for (auto& [job, run] : impl_->runs) {
    if (run->pid <= 0) continue;
    if (run->step == Step::kCallback) {
      // The callback's whole group (its `backy status`, what it started),
      // also once it exited while its output is still open.
      ::kill(-run->pid, SIGTERM);
    } else if (!run->exited) {
      ::kill(run->pid, SIGTERM);
    }
  }
}

size_t Supervisor::size() const { return impl_->runs.size(); }

}  // namespace backy::backup::scheduler
