// The glue of the scheduler daemon: one io_context, the signals (SIGTERM,
// SIGINT, SIGHUP, SIGUSR1, SIGCHLD), the planning tick and the status timer.
// The jobs are in the other files: reconcile.h (config -> disk and Planner),
// supervisor.h (the children), api_routes.h (the HTTP answers), plan.h
// (the policy), status.h (the status document).
#include "backup/scheduler/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <memory>

#include "backup/logging.h"
#include "backup/scheduler/api_routes.h"
#include "backup/scheduler/config.h"
#include "backup/scheduler/http_api.h"
#include "backup/scheduler/metrics.h"
#include "backup/scheduler/notify.h"
#include "backup/scheduler/plan.h"
#include "backup/scheduler/reconcile.h"
#include "backup/scheduler/status.h"
#include "backup/scheduler/supervisor.h"
#include "store/fs_util.h"
#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup::scheduler {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// How soon a job whose lease another host holds is tried again.
constexpr int64_t kClaimRetryS = 10;

class Daemon {
 public:
  explicit Daemon(DaemonOptions options)
      : options_(std::move(options)),
        stop_signals_(ioc_, SIGTERM, SIGINT),
        hup_(ioc_, SIGHUP),
        usr1_(ioc_, SIGUSR1),
        chld_(ioc_, SIGCHLD),
        tick_(ioc_),
        status_timer_(ioc_),
        children_(ioc_, options_.backy_binary, options_.verbose,
                  [this](const RunEnd& end) { EndRun(end); }) {}

  Status Run() {
    if (!options_.logfile.empty()) UseOneLog(options_.logfile);
    auto config = LoadDaemonConfig(options_.config_path, options_.state_dir);
    // A config that is missing or unreadable stops the start like one with
    // errors in it: exit 2 (backy(1) EXIT STATUS; the unit does not restart).
    if (!config.ok()) return Status::InvalidArgument(config.status().Message());
    Status s = MakePrivateDir(config->state_dir, /*warn=*/true);
    if (!s.ok()) {
      return s.WithContext(config->RadosBase() ? "global.state-dir"
                                               : "global.base-dir");
    }
    s = MakePrivateFile(config->LockFile());
    if (!s.ok()) return s.WithContext("the scheduler lock");
    auto lock = store::FileLock::Acquire(
        config->LockFile(), store::FileLock::Mode::kExclusive,
        "scheduler pid " + std::to_string(::getpid()));
    if (!lock.ok()) {
      return lock.status().WithContext(
          config->RadosBase() ? "another scheduler uses this state-dir"
                              : "another scheduler uses this base-dir");
    }
    lock_ = std::move(*lock);
    if (options_.logfile.empty()) {
      UseOneLog(ChooseDaemonLog(options_.logfile, config->log_file,
                                config->DefaultLogFile(), StderrIsJournal()));
    }
    LogConfigWarnings(*config);
    s = ApplyConfig(std::move(*config), /*initial=*/true);
    if (!s.ok()) return s;
    spdlog::info("scheduler started (pid {}): {} jobs, worker-limit {}",
                 ::getpid(), config_.jobs.size(), config_.worker_limit);

    stop_signals_.async_wait(
        [this](error_code ec, int sig) { OnStop(ec, sig); });
    hup_.async_wait([this](error_code ec, int) { OnHup(ec); });
    usr1_.async_wait([this](error_code ec, int) { OnUsr1(ec); });
    chld_.async_wait([this](error_code ec, int) { OnChild(ec); });
    Tick();
    WriteStatus();
    ArmStatusTimer();
    NotifyReady(JobsSummary());
    ioc_.run();
    spdlog::info("scheduler stopped");
    return Status::OK();
  }

 private:
  static int64_t Now() { return store::NowMicros(); }

  // The daemon's log goes to one place (ChooseDaemonLog): the -l file,
  // global.log-file, the journal or BASE/scheduler.log ("": stderr). Until
  // the config is read, what goes wrong goes to stderr (and to the -l file,
  // which is the only log from the start).
  void UseOneLog(const std::string& file) {
    const bool journal = StderrIsJournal();
    const auto level =
        options_.verbose ? spdlog::level::debug : spdlog::level::info;
    Status s = UseOnlyDaemonLog(file, level, journal);
    if (!s.ok()) {
      (void)UseOnlyDaemonLog("", level, journal);  // stderr: cannot fail
      spdlog::warn("the scheduler log: {}; logging to stderr", s.Message());
    }
  }

  // logrotate renamed the log file: lines from now on go to a new file
  // at its path (the repositories' logs are opened for each line or
  // command and need nothing).
  static void ReopenLog(const char* why) {
    Status s = ReopenLogFiles();
    if (!s.ok()) {
      spdlog::error("{}: the log stays the old file: {}", why, s.Message());
    } else {
      spdlog::info("{}: log file reopened", why);
    }
  }

  void OnUsr1(error_code ec) {
    if (ec) return;
    ReopenLog("SIGUSR1");
    usr1_.async_wait([this](error_code e, int) { OnUsr1(e); });
  }

  // For `systemctl status`.
  std::string JobsSummary() const {
    return std::to_string(config_.jobs.size()) + " jobs, worker-limit " +
           std::to_string(config_.worker_limit);
  }

  // The backy 2.x keys that do nothing here, once per read of the file.
  static void LogConfigWarnings(const DaemonConfig& config) {
    for (const auto& w : config.warnings) spdlog::warn("{}", w);
  }

  Status ApplyConfig(DaemonConfig config, bool initial) {
    Status s = PrepareDirectories(config);
    if (!s.ok()) return s;
    // The API first: at start, a listener that cannot bind is fatal.
    s = ApplyApiConfig(config.api, initial);
    if (!s.ok()) return s;
    if (!initial) LogJobChanges(config_, config);
    config_ = std::move(config);
    ReconcileJobs(config_, &planner_);
    return Status::OK();
  }

  Status ApplyApiConfig(const ApiConfig& api, bool initial) {
    if (api.token.empty()) {
      if (api_) api_->Stop();
      api_.reset();
      if (initial || !config_.api.token.empty()) {
        spdlog::warn("no api.token or api.token-file: the control API is off");
      }
    } else if (!api_ || api.listen != config_.api.listen) {
      if (api_) api_->Stop();
      api_.reset();
      auto server =
          ApiServer::Start(ioc_, api.listen, api.token,
                           [this](const std::string& m, const std::string& p) {
                             return RouteApiRequest(m, p, RouteContextNow());
                           });
      if (!server.ok()) {
        if (initial) return server.status();
        spdlog::error("api: {}", server.status().Message());
      } else {
        api_ = std::move(*server);
        spdlog::info("api: listening on {}", api.listen);
      }
    } else {
      api_->SetToken(api.token);
    }
    if (api_) {
      api_->SetPublicPaths(api.metrics_public
                               ? std::set<std::string>{"/metrics"}
                               : std::set<std::string>{});
    }
    return Status::OK();
  }

  RouteContext RouteContextNow() {
    return RouteContext{&planner_, Now(), stopping_, [this] { PostStart(); }};
  }

  void ArmTick(std::chrono::milliseconds after) {
    tick_.expires_after(after);
    tick_.async_wait([this](error_code ec) {
      if (!ec) Tick();
    });
  }

  void Tick() {
    if (stopping_) return;
    StartDue();
    ArmTick(std::chrono::milliseconds(500));
  }

  // For a rados: base-dir, takes the job's lease and re-reads its
  // history into `spec` (false: the run does not start now; the planner
  // knows why).
  bool Claim(const RunStart& start, int64_t now, RunSpec* spec) {
    auto tags = ClaimRun(config_, start.job, &planner_, now, &spec->lease);
    if (tags.ok() && tags->empty() && !start.requested) {
      spdlog::info("job {}: {} backed up already (by another host)", start.job,
                   fmt::join(start.tags, ","));
      planner_.Unstart(start.job, 0);
      return false;
    }
    if (tags.status().IsBusy()) {
      // Another host runs it: its lease says so.
      spdlog::info("job {}: runs elsewhere, retry in {}s: {}", start.job,
                   kClaimRetryS, tags.status().Message());
      planner_.Unstart(start.job, now + kClaimRetryS * kMicros);
      return false;
    }
    if (!tags.ok()) {
      spdlog::warn("job {}: {}", start.job, tags.status().Message());
      planner_.Finish(start.job, now, RunResult::kFailed,
                      tags.status().Message());
      return false;
    }
    if (!tags->empty()) spec->tags = *tags;
    return true;
  }

  void StartDue() {
    const int64_t now = Now();
    for (auto& start : planner_.Start(now)) {
      RunSpec spec;
      spec.job = start.job;
      spec.dir = config_.JobDir(start.job);
      spec.log_dir = config_.JobStateDir(start.job);
      spec.global_args = config_.GlobalArgs();
      spec.tags = start.tags;
      if (config_.RadosBase()) {
        if (!Claim(start, now, &spec)) continue;
      } else {
        spec.upgrade = NeedsUpgrade(spec.dir);
      }
      if (spec.upgrade) {
        // The upgrade wrote a current config from 2.x's: now the job's
        // source and schedule go in (EnsureRepository left it alone).
        spec.upgraded = [this, job = start.job] {
          auto it = config_.jobs.find(job);
          if (it != config_.jobs.end())
            EnsureRepository(config_, job, it->second);
        };
      }
      spec.callback = config_.callback;
      spec.callback_timeout_s = config_.callback_timeout_s;
      const JobConfig& job = config_.jobs.at(start.job);
      spec.copy_to = job.copy_to;
      if (!job.copy_to.empty()) {
        spec.prepare_copy = [dir = spec.dir, target = job.copy_to,
                             schedule = job.copy_schedule,
                             options = config_.RepoOptions()] {
          return PrepareCopyTarget(dir, target, schedule, options);
        };
      }
      children_.Start(std::move(spec));
    }
  }

  // Starts what is due once the current handler is done.
  void PostStart() {
    asio::post(ioc_, [this] {
      if (!stopping_) StartDue();
    });
  }

  void ArmStatusTimer() {
    status_timer_.expires_after(
        std::chrono::seconds(config_.status_interval_s));
    status_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      RefreshSharedHistory();
      WriteStatus();
      ArmStatusTimer();
    });
  }

  // With a rados: base-dir other hosts run jobs too: the status file and
  // the API show each job's newest revisions as its repository has them,
  // read once per status-interval (one open and listing per job).
  void RefreshSharedHistory() {
    if (!config_.RadosBase()) return;
    for (const auto& [name, st] : planner_.jobs()) {
      if (!st.running) LoadHistory(config_, name, &planner_, false);
    }
  }

  void WriteStatus() {
    const StatusDoc doc = MakeStatus(planner_, Now());
    Status s = WriteStatusFile(config_.status_file, doc);
    if (!s.ok()) spdlog::warn("status file: {}", s.Message());
    s = WriteMetricsFile(config_.MetricsFile(), doc);
    if (!s.ok()) spdlog::warn("metrics file: {}", s.Message());
  }

  void EndRun(const RunEnd& end) {
    const int64_t now = Now();
    if (end.copy.ran) {
      planner_.FinishCopy(end.job, now, end.copy.ok, end.copy.message);
    }
    planner_.Finish(end.job, now, end.result, end.message);
    const auto& jobs = planner_.jobs();
    auto it = jobs.find(end.job);
    if (it != jobs.end()) {
      LoadHistory(config_, end.job, &planner_);
      const JobState& st = it->second;
      if (end.result == RunResult::kFailed) {
        spdlog::warn("job {}: failed ({} in a row), retry in {}s: {}", end.job,
                     st.failures, (st.retry_at_us - now) / kMicros,
                     end.message);
      } else {
        spdlog::info("job {}: {} in {:.1f}s{}", end.job,
                     RunResultName(end.result), st.last_duration_s,
                     end.message.empty() ? "" : ": " + end.message);
      }
    } else {
      spdlog::info("job {}: {} (removed from the config)", end.job,
                   RunResultName(end.result));
    }
    WriteStatus();
    if (stopping_) {
      if (children_.size() == 0) Shutdown();
      return;
    }
    // A worker is free.
    PostStart();
  }

  void OnChild(error_code ec) {
    if (ec) return;
    children_.Reap();
    chld_.async_wait([this](error_code e, int) { OnChild(e); });
  }

  void OnStop(error_code ec, int sig) {
    if (ec) return;
    if (!stopping_) {
      NotifyStopping();
      spdlog::info("{}: stopping; {} jobs running",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT", children_.size());
    }
    stopping_ = true;
    tick_.cancel();
    children_.Stop();
    if (children_.size() == 0) {
      Shutdown();
      return;
    }
    // A second signal is passed on again (backy stops at once then).
    stop_signals_.async_wait([this](error_code e, int s) { OnStop(e, s); });
  }

  void OnHup(error_code ec) {
    if (ec) return;
    // A reload after STOPPING=1 is not reported: the service is going.
    if (!stopping_) NotifyReloading();
    auto config = LoadDaemonConfig(options_.config_path, options_.state_dir);
    if (!config.ok()) {
      spdlog::error("SIGHUP: config not reloaded, the old one stays: {}",
                    config.status().Message());
    } else {
      LogConfigWarnings(*config);
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
    ReopenLog("SIGHUP");
    if (!stopping_) NotifyReady(JobsSummary());
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
    usr1_.cancel(ignored);
    chld_.cancel(ignored);
    ioc_.stop();
  }

  DaemonOptions options_;
  asio::io_context ioc_;
  asio::signal_set stop_signals_;
  asio::signal_set hup_;
  asio::signal_set usr1_;
  asio::signal_set chld_;
  asio::steady_timer tick_;
  asio::steady_timer status_timer_;
  store::FileLock lock_;
  DaemonConfig config_;
  Planner planner_;
  std::unique_ptr<ApiServer> api_;
  Supervisor children_;
  bool stopping_ = false;
};

}  // namespace

Status RunDaemon(const DaemonOptions& options) {
  Daemon daemon(options);
  return daemon.Run();
}

}  // namespace backy::backup::scheduler
