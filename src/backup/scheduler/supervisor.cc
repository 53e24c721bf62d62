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
#include <cstring>
#include <map>
#include <vector>

namespace backy::backup::scheduler {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

}  // namespace

const char* StepName(Step step) {
  switch (step) {
    case Step::kBackup:
      return "backup";
    case Step::kExpire:
      return "expire";
    case Step::kPurge:
      return "purge";
  }
  return "purge";
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
    std::string job;
    std::string dir;
    std::set<std::string> tags;
    Step step = Step::kBackup;
    pid_t pid = -1;
    bool exited = false;
    bool eof = false;
    int wait_status = 0;
    std::shared_ptr<asio::posix::stream_descriptor> err;
    std::shared_ptr<std::string> err_text;
    RunResult result = RunResult::kOk;
    std::string message;
  };

  asio::io_context& ioc;
  std::string backy_binary;
  bool verbose;
  OnEnd on_end;
  std::map<std::string, std::shared_ptr<JobRun>> runs;
  bool stopping = false;

  std::vector<std::string> StepArgs(const JobRun& run) const {
    std::vector<std::string> args = {"backy"};
    if (verbose) args.push_back("-v");
    args.insert(args.end(), {"-l", run.dir + "/backy.log", "-b", run.dir});
    switch (run.step) {
      case Step::kBackup:
        args.insert(args.end(),
                    {"backup", fmt::format("{}", fmt::join(run.tags, ","))});
        break;
      case Step::kExpire:
        args.push_back("expire");
        break;
      case Step::kPurge:
        args.push_back("purge");
        break;
    }
    return args;
  }

  void SpawnStep(const std::shared_ptr<JobRun>& run) {
    run->exited = run->eof = false;
    run->err_text = std::make_shared<std::string>();
    const auto args = StepArgs(*run);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      FinishStep(run, 1, "pipe: " + std::string(std::strerror(errno)));
      return;
    }
    const pid_t parent = ::getpid();
    const char* exe = backy_binary.c_str();
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
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(fds[1], 2);
      // Close everything else (API sockets, the scheduler lock).
      if (::syscall(SYS_close_range, 3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; ++fd) ::close(fd);
      }
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      ::execv(exe, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    run->pid = pid;
    run->err = std::make_shared<asio::posix::stream_descriptor>(ioc, fds[0]);
    spdlog::debug("job {}: {} started, pid {}", run->job, StepName(run->step),
                  pid);
    ReadStderr(run);
    // The child may have exited before the SIGCHLD handler is armed again.
    Reap();
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

  void FinishStep(const std::shared_ptr<JobRun>& run, int code,
                  const std::string& message) {
    const char* step = StepName(run->step);
    const std::string failure =
        message.empty()
            ? std::string(step) + " exited with " + std::to_string(code)
            : message;
    if (run->step == Step::kBackup) {
      if (code != 0) {
        run->result = (code == 130 || stopping) ? RunResult::kInterrupted
                                                : RunResult::kFailed;
        run->message = failure;
        EndRun(run);
        return;
      }
      spdlog::info("job {}: backup {} done", run->job,
                   fmt::join(run->tags, ","));
    } else if (code != 0 && stopping) {
      // Stopped by our own SIGTERM: the revision is complete; expire and
      // purge run again after the next backup.
      spdlog::info("job {}: {} stopped by the shutdown", run->job, step);
    } else if (code != 0) {
      // The revision is safe; a failing expire or purge is a warning.
      run->result = RunResult::kWarning;
      run->message += (run->message.empty() ? "" : "; ") + failure;
      spdlog::warn("job {}: {} failed: {}", run->job, step, failure);
    }
    if (run->step == Step::kPurge || stopping) {
      EndRun(run);
      return;
    }
    run->step = run->step == Step::kBackup ? Step::kExpire : Step::kPurge;
    SpawnStep(run);
  }

  void EndRun(const std::shared_ptr<JobRun>& run) {
    runs.erase(run->job);
    on_end(RunEnd{run->job, run->tags, run->result, run->message});
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

void Supervisor::Start(const std::string& job, const std::string& dir,
                       const std::set<std::string>& tags) {
  auto run = std::make_shared<Impl::JobRun>();
  run->job = job;
  run->dir = dir;
  run->tags = tags;
  impl_->runs[job] = run;
  spdlog::info("job {}: starting backup {}", job, fmt::join(tags, ","));
  impl_->SpawnStep(run);
}

void Supervisor::Reap() { impl_->Reap(); }

void Supervisor::Stop() {
  impl_->stopping = true;
  for (auto& [job, run] : impl_->runs) {
    if (run->pid > 0 && !run->exited) ::kill(run->pid, SIGTERM);
  }
}

size_t Supervisor::size() const { return impl_->runs.size(); }

}  // namespace backy::backup::scheduler
