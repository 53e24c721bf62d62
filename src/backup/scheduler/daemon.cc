#include "backup/scheduler/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>

#include "backup/scheduler/config.h"
#include "backup/scheduler/http_api.h"
#include "backup/scheduler/plan.h"
#include "backup/scheduler/status.h"
#include "store/duration.h"
#include "store/fs_util.h"
#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup::scheduler {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

std::string Join(const std::set<std::string>& tags) {
  std::string out;
  for (const auto& t : tags) out += (out.empty() ? "" : ",") + t;
  return out;
}

// The error line of a failed child: "backy: backup: no such file (x)"
// becomes "backup: no such file (x)".
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

// Creates `dir` mode 0700 (its missing parents with the umask's mode). An
// existing directory is kept as it is; with `warn`, a warning says so when
// other users may read it.
Status MakePrivateDir(const std::string& dir, bool warn) {
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  if (!parent.empty() && parent != dir) {
    Status s = store::MakeDirs(parent);
    if (!s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), 0700) == 0) {
    ::chmod(dir.c_str(), 0700);
    return Status::OK();
  }
  if (errno != EEXIST) return Status::FromErrno(errno, "mkdir", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return Status::FromErrno(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("not a directory", dir);
  }
  if (warn && (st.st_mode & 0077) != 0) {
    spdlog::warn("{} is mode {:o}: other users may read it (chmod 0700)", dir,
                 st.st_mode & 07777);
  }
  return Status::OK();
}

// Creates the file `path` mode 0600 if missing, and makes an existing one
// of ours 0600, before another library opens it with the umask's mode.
// Never follows a symlink there.
Status MakePrivateFile(const std::string& path) {
  const int fd =
      ::open(path.c_str(),
             O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::FromErrno(errno, "stat", path);
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::InvalidArgument("not a regular file", path);
  } else if (st.st_uid == ::geteuid() && (st.st_mode & 0077) != 0 &&
             ::fchmod(fd, 0600) != 0) {
    s = Status::FromErrno(errno, "chmod", path);
  }
  ::close(fd);
  return s;
}

class Daemon {
 public:
  explicit Daemon(DaemonOptions options)
      : options_(std::move(options)),
        stop_signals_(ioc_, SIGTERM, SIGINT),
        hup_(ioc_, SIGHUP),
        chld_(ioc_, SIGCHLD),
        tick_(ioc_),
        status_timer_(ioc_) {}

  Status Run() {
    auto config = LoadDaemonConfig(options_.config_path);
    if (!config.ok()) return config.status();
    Status s = MakePrivateDir(config->base_dir, /*warn=*/true);
    if (!s.ok()) return s.WithContext("global.base-dir");
    s = MakePrivateFile(config->base_dir + "/scheduler.lock");
    if (!s.ok()) return s.WithContext("the scheduler lock");
    auto lock = store::FileLock::Acquire(
        config->base_dir + "/scheduler.lock", store::FileLock::Mode::kExclusive,
        "scheduler pid " + std::to_string(::getpid()));
    if (!lock.ok()) {
      return lock.status().WithContext("another scheduler uses this base-dir");
    }
    lock_ = std::move(*lock);
    AddLogFile(config->log_file);
    s = ApplyConfig(std::move(*config), /*initial=*/true);
    if (!s.ok()) return s;
    spdlog::info("scheduler started (pid {}): {} jobs, worker-limit {}",
                 ::getpid(), config_.jobs.size(), config_.worker_limit);

    stop_signals_.async_wait(
        [this](error_code ec, int sig) { OnStop(ec, sig); });
    hup_.async_wait([this](error_code ec, int) { OnHup(ec); });
    chld_.async_wait([this](error_code ec, int) { OnChild(ec); });
    Tick();
    WriteStatus();
    ArmStatusTimer();
    ioc_.run();
    spdlog::info("scheduler stopped");
    return Status::OK();
  }

 private:
  struct JobRun {
    std::string job;
    std::string dir;
    std::set<std::string> tags;
    int step = 0;  // 0 backup, 1 expire, 2 purge
    pid_t pid = -1;
    bool exited = false;
    bool eof = false;
    int wait_status = 0;
    std::shared_ptr<asio::posix::stream_descriptor> err;
    std::shared_ptr<std::string> err_text;
    RunResult result = RunResult::kOk;
    std::string message;
  };

  static int64_t Now() { return store::NowMicros(); }

  void AddLogFile(const std::string& path) {
    if (path == "-" || path.empty()) return;
    Status s = MakePrivateFile(path);
    if (!s.ok()) {
      spdlog::warn("cannot open the scheduler log: {}", s.Message());
      return;
    }
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
      file->set_pattern("%Y-%m-%d %H:%M:%S.%e [%P] %l %v");
      file->set_level(spdlog::level::info);
      spdlog::default_logger()->sinks().push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      spdlog::warn("cannot open the scheduler log {}: {}", path, e.what());
    }
  }

  Status ApplyConfig(DaemonConfig config, bool initial) {
    Status s = MakePrivateDir(config.base_dir, /*warn=*/false);
    if (!s.ok()) return s.WithContext("global.base-dir");
    const auto status_dir =
        std::filesystem::path(config.status_file).parent_path().string();
    if (!status_dir.empty() && status_dir != config.base_dir) {
      s = MakePrivateDir(status_dir, /*warn=*/false);
      if (!s.ok()) return s.WithContext("global.status-file");
    }
    // The API first: at start, a listener that cannot bind is fatal.
    if (config.api.token.empty()) {
      if (api_) api_->Stop();
      api_.reset();
      if (initial || !config_.api.token.empty()) {
        spdlog::warn("no api.token or api.token-file: the control API is off");
      }
    } else if (!api_ || config.api.listen != config_.api.listen) {
      if (api_) api_->Stop();
      api_.reset();
      auto api =
          ApiServer::Start(ioc_, config.api.listen, config.api.token,
                           [this](const std::string& m, const std::string& p) {
                             return Handle(m, p);
                           });
      if (!api.ok()) {
        if (initial) return api.status();
        spdlog::error("api: {}", api.status().Message());
      } else {
        api_ = std::move(*api);
        spdlog::info("api: listening on {}", config.api.listen);
      }
    } else {
      api_->SetToken(config.api.token);
    }
    if (!initial) {
      for (const auto& [name, job] : config_.jobs) {
        if (!config.jobs.count(name)) spdlog::info("job {}: removed", name);
      }
      for (const auto& [name, job] : config.jobs) {
        auto it = config_.jobs.find(name);
        if (it == config_.jobs.end()) {
          spdlog::info("job {}: added", name);
        } else if (!(it->second == job)) {
          spdlog::info("job {}: changed", name);
        }
      }
    }
    config_ = std::move(config);
    planner_.Configure(config_);
    for (const auto& [name, job] : config_.jobs) {
      EnsureRepository(name, job);
      LoadHistory(name);
    }
    return Status::OK();
  }

  // Creates the job's repository, or rewrites its config when the job's
  // source or schedule changed, so `backy -b BASE/JOB expire` by hand
  // applies the same schedule.
  void EnsureRepository(const std::string& name, const JobConfig& job) {
    const std::string dir = config_.JobDir(name);
    auto repo = store::Repository::Open(dir);
    if (!repo.ok() && repo.status().IsNotFound()) {
      store::RepositoryConfig rc;
      rc.source = job.source;
      rc.schedule = job.schedule;
      Status s = store::Repository::Init(dir, rc);
      if (!s.ok()) {
        spdlog::error("job {}: cannot create the repository: {}", name,
                      s.Message());
      } else {
        spdlog::info("job {}: created repository {}", name, dir);
      }
      return;
    }
    if (!repo.ok()) {
      spdlog::error("job {}: {}", name, repo.status().Message());
      return;
    }
    const auto& current = (*repo)->config();
    if (current.source == job.source && current.schedule == job.schedule) {
      return;
    }
    store::RepositoryConfig rc = current;
    rc.source = job.source;
    rc.schedule = job.schedule;
    Status s = store::Repository::WriteConfig(dir, rc);
    if (!s.ok()) {
      spdlog::error("job {}: cannot update the repository config: {}", name,
                    s.Message());
    } else {
      spdlog::info("job {}: updated the source and schedule in {}/config", name,
                   dir);
    }
  }

  // Reads the newest revision per tag from the repository: what ran.
  void LoadHistory(const std::string& name) {
    auto repo = store::Repository::Open(config_.JobDir(name));
    if (!repo.ok()) return;
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) {
      spdlog::warn("job {}: {}", name, revs.status().Message());
      return;
    }
    std::map<std::string, int64_t> last;
    std::optional<int64_t> newest;
    for (const auto& r : *revs) {
      for (const auto& t : r.tags) {
        auto& v = last[t];
        v = std::max(v, r.timestamp_us);
      }
      if (!newest || r.timestamp_us > *newest) newest = r.timestamp_us;
    }
    planner_.SetHistory(name, std::move(last), newest);
  }

  void ArmTick(std::chrono::milliseconds after) {
    tick_.expires_after(after);
    tick_.async_wait([this](error_code ec) {
      if (!ec) Tick();
    });
  }

  void Tick() {
    if (stopping_) return;
    for (auto& start : planner_.Start(Now())) StartRun(start);
    ArmTick(std::chrono::milliseconds(500));
  }

  void ArmStatusTimer() {
    status_timer_.expires_after(
        std::chrono::seconds(config_.status_interval_s));
    status_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      WriteStatus();
      ArmStatusTimer();
    });
  }

  void WriteStatus() {
    Status s =
        WriteStatusFile(config_.status_file, MakeStatus(planner_, Now()));
    if (!s.ok()) spdlog::warn("status file: {}", s.Message());
  }

  void StartRun(const RunStart& start) {
    auto run = std::make_shared<JobRun>();
    run->job = start.job;
    run->dir = config_.JobDir(start.job);
    run->tags = start.tags;
    runs_[start.job] = run;
    spdlog::info("job {}: starting backup {}", run->job, Join(run->tags));
    SpawnStep(run);
  }

  std::vector<std::string> StepArgs(const JobRun& run) const {
    std::vector<std::string> args = {"backy"};
    if (options_.verbose) args.push_back("-v");
    args.insert(args.end(), {"-l", run.dir + "/backy.log", "-b", run.dir});
    switch (run.step) {
      case 0:
        args.insert(args.end(), {"backup", Join(run.tags)});
        break;
      case 1:
        args.push_back("expire");
        break;
      default:
        args.push_back("purge");
        break;
    }
    return args;
  }

  static const char* StepName(int step) {
    return step == 0 ? "backup" : step == 1 ? "expire" : "purge";
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
    const char* exe = options_.backy_binary.c_str();
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
    run->err = std::make_shared<asio::posix::stream_descriptor>(ioc_, fds[0]);
    spdlog::debug("job {}: {} started, pid {}", run->job, StepName(run->step),
                  pid);
    ReadStderr(run);
    // The child may have exited before the SIGCHLD handler is armed again.
    ReapChildren();
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

  void ReapChildren() {
    for (auto& [job, run] : runs_) {
      if (run->exited || run->pid <= 0) continue;
      int st = 0;
      const pid_t r = ::waitpid(run->pid, &st, WNOHANG);
      if (r == run->pid) {
        run->exited = true;
        run->wait_status = st;
        // Posted: MaybeStepDone may erase from runs_.
        asio::post(ioc_, [this, run = run] { MaybeStepDone(run); });
      }
    }
  }

  void OnChild(error_code ec) {
    if (ec) return;
    ReapChildren();
    chld_.async_wait([this](error_code e, int) { OnChild(e); });
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
    if (run->step == 0) {
      if (code != 0) {
        run->result = (code == 130 || stopping_) ? RunResult::kInterrupted
                                                 : RunResult::kFailed;
        run->message = message.empty() ? std::string(step) + " exited with " +
                                             std::to_string(code)
                                       : message;
        EndRun(run);
        return;
      }
      spdlog::info("job {}: backup {} done", run->job, Join(run->tags));
    } else if (code != 0 && stopping_) {
      // Stopped by our own SIGTERM: the revision is complete; expire and
      // purge run again after the next backup.
      spdlog::info("job {}: {} stopped by the shutdown", run->job, step);
    } else if (code != 0) {
      // The revision is safe; a failing expire or purge is a warning.
      run->result = RunResult::kWarning;
      const std::string m =
          message.empty()
              ? std::string(step) + " exited with " + std::to_string(code)
              : message;
      run->message += (run->message.empty() ? "" : "; ") + m;
      spdlog::warn("job {}: {} failed: {}", run->job, step, m);
    }
    if (run->step == 2 || stopping_) {
      EndRun(run);
      return;
    }
    ++run->step;
    SpawnStep(run);
  }

  void EndRun(const std::shared_ptr<JobRun>& run) {
    const int64_t now = Now();
    planner_.Finish(run->job, now, run->result, run->message);
    const auto& jobs = planner_.jobs();
    auto it = jobs.find(run->job);
    if (it != jobs.end()) {
      LoadHistory(run->job);
      const JobState& st = it->second;
      if (run->result == RunResult::kFailed) {
        spdlog::warn("job {}: failed ({} in a row), retry in {}s: {}", run->job,
                     st.failures, (st.retry_at_us - now) / kMicros,
                     run->message);
      } else {
        spdlog::info("job {}: {} in {:.1f}s{}", run->job,
                     RunResultName(run->result), st.last_duration_s,
                     run->message.empty() ? "" : ": " + run->message);
      }
    } else {
      spdlog::info("job {}: {} (removed from the config)", run->job,
                   RunResultName(run->result));
    }
    runs_.erase(run->job);
    WriteStatus();
    if (stopping_) {
      if (runs_.empty()) Shutdown();
      return;
    }
    // A worker is free.
    asio::post(ioc_, [this] {
      if (!stopping_) {
        for (auto& start : planner_.Start(Now())) StartRun(start);
      }
    });
  }

  void OnStop(error_code ec, int sig) {
    if (ec) return;
    if (!stopping_) {
      spdlog::info("{}: stopping; {} jobs running",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT", runs_.size());
    }
    stopping_ = true;
    tick_.cancel();
    for (auto& [job, run] : runs_) {
      if (run->pid > 0 && !run->exited) ::kill(run->pid, SIGTERM);
    }
    if (runs_.empty()) {
      Shutdown();
      return;
    }
    // A second signal is passed on again (backy stops at once then).
    stop_signals_.async_wait([this](error_code e, int s) { OnStop(e, s); });
  }

  void OnHup(error_code ec) {
    if (ec) return;
    auto config = LoadDaemonConfig(options_.config_path);
    if (!config.ok()) {
      spdlog::error("SIGHUP: config not reloaded, the old one stays: {}",
                    config.status().Message());
    } else {
      if (config->log_file != config_.log_file) {
        spdlog::warn("global.log-file changes need a restart");
      }
      Status s = ApplyConfig(std::move(*config), /*initial=*/false);
      if (!s.ok()) {
        spdlog::error("SIGHUP: {}", s.Message());
      } else {
        spdlog::info("SIGHUP: config reloaded: {} jobs", config_.jobs.size());
      }
      WriteStatus();
      status_timer_.cancel();
      ArmStatusTimer();
    }
    hup_.async_wait([this](error_code e, int) { OnHup(e); });
  }

  void Shutdown() {
    WriteStatus();
    if (api_) api_->Stop();
    error_code ignored;
    tick_.cancel();
    status_timer_.cancel();
    stop_signals_.cancel(ignored);
    hup_.cancel(ignored);
    chld_.cancel(ignored);
    ioc_.stop();
  }

  ApiResponse Handle(const std::string& method, const std::string& path) {
    if (path == "/v1/status") {
      if (method != "GET") return {405, "{\"error\":\"use GET\"}\n"};
      return {200, MakeStatus(planner_, Now()).ToJson()};
    }
    if (path == "/v1/jobs") {
      if (method != "GET") return {405, "{\"error\":\"use GET\"}\n"};
      return {200, JobsJson()};
    }
    const std::string prefix = "/v1/jobs/", suffix = "/run";
    if (path.starts_with(prefix) && path.ends_with(suffix) &&
        path.size() > prefix.size() + suffix.size()) {
      if (method != "POST") return {405, "{\"error\":\"use POST\"}\n"};
      const std::string job = path.substr(
          prefix.size(), path.size() - prefix.size() - suffix.size());
      auto it = planner_.jobs().find(job);
      if (it == planner_.jobs().end() || it->second.removed) {
        return {404, "{\"error\":" + JsonQuote("no job '" + job + "'") + "}\n"};
      }
      if (stopping_)
        return {503, "{\"error\":\"the scheduler is stopping\"}\n"};
      if (it->second.running) {
        return {409, "{\"error\":" + JsonQuote("job '" + job + "' is running") +
                         "}\n"};
      }
      planner_.Request(job);
      spdlog::info("job {}: run requested over the API", job);
      asio::post(ioc_, [this] {
        if (!stopping_) {
          for (auto& start : planner_.Start(Now())) StartRun(start);
        }
      });
      const int running = planner_.Running();
      return {202, "{\"job\":" + JsonQuote(job) + ",\"queued\":" +
                       (running >= config_.worker_limit ? "true" : "false") +
                       "}\n"};
    }
    return {404, "{\"error\":" + JsonQuote("no such path " + path) + "}\n"};
  }

  std::string JobsJson() {
    const StatusDoc doc = MakeStatus(planner_, Now());
    std::string o = "{\"jobs\":[";
    bool first = true;
    for (const auto& [name, js] : doc.jobs) {
      const JobConfig& jc = planner_.jobs().at(name).config;
      if (!first) o += ",";
      first = false;
      o += "{\"name\":" + JsonQuote(name);
      o += ",\"schedule\":" + JsonQuote(js.schedule);
      o += ",\"tags\":{";
      bool f2 = true;
      for (const auto& [tag, e] : jc.schedule.tags) {
        if (!f2) o += ",";
        f2 = false;
        o += JsonQuote(tag) + ":{\"interval\":" +
             JsonQuote(store::FormatDuration(e.interval_seconds)) +
             ",\"keep\":" + std::to_string(e.keep) + "}";
      }
      o += "},\"source\":{";
      f2 = true;
      for (const auto& [k, v] : jc.source) {
        if (!f2) o += ",";
        f2 = false;
        o += JsonQuote(k) + ":" + JsonQuote(v);
      }
      o += "},\"state\":" + JsonQuote(js.state);
      o += ",\"last-time\":" + JsonQuote(js.last_time);
      o += ",\"last-result\":" + JsonQuote(js.last_result);
      o += ",\"next-time\":" + JsonQuote(js.next_time);
      o += ",\"next-tags\":[";
      f2 = true;
      for (const auto& t : js.next_tags) {
        o += (f2 ? "" : ",") + JsonQuote(t);
        f2 = false;
      }
      o += "],\"sla\":" + JsonQuote(js.sla) + "}";
    }
    return o + "]}\n";
  }

  DaemonOptions options_;
  asio::io_context ioc_;
  asio::signal_set stop_signals_;
  asio::signal_set hup_;
  asio::signal_set chld_;
  asio::steady_timer tick_;
  asio::steady_timer status_timer_;
  store::FileLock lock_;
  DaemonConfig config_;
  Planner planner_;
  std::unique_ptr<ApiServer> api_;
  std::map<std::string, std::shared_ptr<JobRun>> runs_;
  bool stopping_ = false;
};

}  // namespace

Status RunDaemon(const DaemonOptions& options) {
  Daemon daemon(options);
  return daemon.Run();
}

}  // namespace backy::backup::scheduler
