// backy check -c CONF: a Nagios/Icinga plugin. Prints one status line with
// the totals as performance data, then the problems and one line per job
// (the long output, with each job's perfdata), and exits 0 OK, 1 WARNING,
// 2 CRITICAL, 3 UNKNOWN. --yaml/--json print the same as one document.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>

#include "backup/cli/command.h"
#include "backup/cli/output.h"
#include "backup/scheduler/config.h"
#include "backup/scheduler/metrics.h"
#include "backup/scheduler/plan.h"
#include "store/filename.h"
#include "store/revision.h"

namespace backy::backup::cli {
namespace {

std::string Age(int64_t s) {
  if (s >= 86400)
    return std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) +
           "h";
  if (s >= 3600)
    return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60)
    return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

// What the check found for one job.
struct JobCheck {
  std::string name;
  std::optional<int64_t> newest_us;  // the newest healthy revision
  scheduler::Sla sla;
  bool distrusted = false;  // the newest revision is
  size_t quarantined = 0;
  // From the status file; "" / none when it does not say.
  std::string last_result;
  std::optional<double> last_duration_s;
};

// The plugin's answer, before it is printed as text or as a document.
struct CheckResult {
  int code = 3;
  std::string summary;  // the status line's text
  std::vector<std::string> problems;
  std::vector<JobCheck> jobs;
  int late = 0, failed = 0, distrusted = 0;
  bool checked = false;  // the jobs were looked at (not an early UNKNOWN)
};

const char* StateName(int code) {
  static const char* kNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
  return kNames[code >= 0 && code <= 3 ? code : 3];
}

CheckResult UnknownResult(const std::string& message) {
  CheckResult r;
  r.summary = "UNKNOWN: " + message;
  return r;
}

// The long output's line for a job (after the problems).
std::string JobLine(const JobCheck& j) {
  std::string line = "job " + j.name + ": ";
  if (j.newest_us) {
    line += std::string("SLA ") + (j.sla.late ? "late" : "ok") +
            " (newest revision " + Age(j.sla.age_s) + " old, limit " +
            Age(j.sla.limit_s) + ")";
  } else {
    line += "no revision yet";
  }
  if (j.last_result.empty() || j.last_result == "none") {
    line += ", no run recorded";
  } else {
    line += ", last run " + j.last_result;
    if (j.last_duration_s)
      line += fmt::format(" in {:.1f}s", *j.last_duration_s);
  }
  return line;
}

std::string PluginText(const CheckResult& r) {
  if (!r.checked) return r.summary + "\n";
  using scheduler::PerfDatum;
  const double jobs = static_cast<double>(r.jobs.size());
  // late makes the check CRITICAL, failed and distrusted WARNING: the
  // thresholds say so ("0": anything above 0).
  std::vector<PerfDatum> totals = {
      {"late", r.late, "", "", "0", 0, jobs},
      {"failed", r.failed, "", "0", "", 0, jobs},
      {"distrusted", r.distrusted, "", "0", "", 0, jobs}};
  std::vector<std::string> lines = r.problems;
  std::vector<PerfDatum> per_job;
  for (const auto& j : r.jobs) {
    lines.push_back(JobLine(j));
    // No warning threshold: check never warns about an age, only the SLA
    // (crit) counts.
    std::optional<double> age;
    if (j.newest_us) age = static_cast<double>(j.sla.age_s);
    per_job.push_back({j.name + " age", age, "s", "",
                       std::to_string(j.sla.limit_s), 0, std::nullopt});
    per_job.push_back({j.name + " duration", j.last_duration_s, "s", "", "", 0,
                       std::nullopt});
  }
  return scheduler::FormatPluginOutput(r.summary, totals, lines, per_job);
}

// The same as PluginText, as one YAML document (for --yaml and --json).
std::string CheckDocument(const CheckResult& r) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "status" << YAML::Value << StateName(r.code);
  e << YAML::Key << "code" << YAML::Value << r.code;
  e << YAML::Key << "summary" << YAML::Value << YAML::DoubleQuoted << r.summary;
  e << YAML::Key << "problems" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : r.problems) e << YAML::DoubleQuoted << p;
  e << YAML::EndSeq;
  if (r.checked) {
    e << YAML::Key << "late" << YAML::Value << r.late;
    e << YAML::Key << "failed" << YAML::Value << r.failed;
    e << YAML::Key << "distrusted" << YAML::Value << r.distrusted;
    e << YAML::Key << "jobs" << YAML::Value << YAML::BeginMap;
    for (const auto& j : r.jobs) {
      e << YAML::Key << j.name << YAML::Value << YAML::BeginMap;
      e << YAML::Key << "newest-revision" << YAML::Value << YAML::DoubleQuoted
        << (j.newest_us ? store::FormatTimestamp(*j.newest_us) : "");
      e << YAML::Key << "age" << YAML::Value;
      if (j.newest_us) {
        e << j.sla.age_s;
      } else {
        e << YAML::Null;
      }
      e << YAML::Key << "sla" << YAML::Value << (j.sla.late ? "late" : "ok");
      e << YAML::Key << "sla-limit" << YAML::Value << j.sla.limit_s;
      e << YAML::Key << "distrusted" << YAML::Value << j.distrusted;
      e << YAML::Key << "quarantined" << YAML::Value << j.quarantined;
      e << YAML::Key << "last-result" << YAML::Value << YAML::DoubleQuoted
        << j.last_result;
      e << YAML::Key << "last-duration" << YAML::Value;
      if (j.last_duration_s) {
        e << fmt::format("{:.1f}", *j.last_duration_s);
      } else {
        e << YAML::Null;
      }
      e << YAML::EndMap;
    }
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

// What SIGALRM prints (-t): made before the alarm is armed, written with
// write(2) from the handler.
std::string g_timeout_output;

extern "C" void OnCheckTimeout(int) {
  const char* p = g_timeout_output.data();
  size_t left = g_timeout_output.size();
  while (left > 0) {
    const ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::_exit(3);
}

class CheckCommand final : public Command {
 public:
  std::string Name() const override { return "check"; }
  std::string Description() const override {
    return "Nagios-style check of every job's SLA, trust and quarantine, "
           "with performance data: exit 0 OK, 1 WARNING, 2 CRITICAL, "
           "3 UNKNOWN";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-c,--config", config_, "The scheduler's config file")
        ->capture_default_str();
    app->add_option("--state-dir", state_dir_,
                    "This host's state-dir, instead of global.state-dir "
                    "(a rados: base-dir)");
    app->add_option("--max-status-age", max_status_age_s_,
                    "Seconds after which a status file not rewritten means "
                    "the scheduler is not running (CRITICAL)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_option("-t,--timeout", timeout_s_,
                    "Seconds after which the check gives up: UNKNOWN "
                    "(0: no limit)")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    auto* yaml = app->add_flag("--yaml", yaml_,
                               "Print the result as one YAML document (the "
                               "exit code stays the plugin's)");
    app->add_flag("--json", json_, "The same document as JSON (one line)")
        ->excludes(yaml);
  }

  Status Run(const GlobalOptions&) override {
    if (timeout_s_ > 0) {
      auto out = Render(UnknownResult("check timed out after " +
                                      std::to_string(timeout_s_) + "s"));
      if (!out.ok()) return out.status();
      g_timeout_output = *out;
      struct sigaction sa = {};
      sa.sa_handler = OnCheckTimeout;
      ::sigaction(SIGALRM, &sa, nullptr);
      ::alarm(static_cast<unsigned>(timeout_s_));
    }
    CheckResult result = Check();
    ::alarm(0);
    auto out = Render(result);
    if (!out.ok()) return out.status();
    std::fputs(out->c_str(), stdout);
    std::fflush(stdout);
    // The exit code is the plugin's answer, not an error of backy's:
    // leave without main's "backy: check: ..." line.
    spdlog::shutdown();
    std::exit(result.code);
  }

 private:
  Result<std::string> Render(const CheckResult& r) const {
    if (!yaml_ && !json_) return PluginText(r);
    return RenderDocument(CheckDocument(r), json_);
  }

  // The newest revision, trust and damage of the job's repository.
  static void CheckRepository(const std::string& dir,
                              const store::RepositoryOptions& options,
                              JobCheck* job,
                              std::vector<std::string>* warning) {
    const std::string& name = job->name;
    auto repo = store::Repository::Open(dir, options);
    if (!repo.ok()) {
      if (!repo.status().IsNotFound()) {
        warning->push_back(name + ": " + repo.status().Message());
      }
      return;
    }
    auto list = (*repo)->ScanRevisions();
    if (!list.ok()) {
      warning->push_back(name + ": " + list.status().Message());
      return;
    }
    for (const auto& d : list->damaged) {
      warning->push_back(name + ": damaged revision " + d.id + ": " +
                         d.status.Message());
    }
    if (list->healthy.empty()) return;
    const store::Revision& r = list->healthy.back();
    job->newest_us = r.timestamp_us;
    if (r.trust == store::Trust::kDistrusted) {
      job->distrusted = true;
      warning->push_back(name + ": newest revision " + r.id +
                         " is distrusted (run 'backy -b " + dir + " verify')");
    }
  }

  static void CheckQuarantine(const std::string& dir, JobCheck* job,
                              std::vector<std::string>* warning) {
    std::error_code ec;
    const std::filesystem::path q = store::QuarantineDirName(dir);
    if (!std::filesystem::is_directory(q, ec) ||
        std::filesystem::is_empty(q, ec)) {
      return;
    }
    for (auto it = std::filesystem::directory_iterator(q, ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      ++job->quarantined;
    }
    warning->push_back(job->name + ": " + std::to_string(job->quarantined) +
                       " quarantined chunks in " + q.string());
  }

  // The scheduler's view of the job's last run, for failing jobs.
  static void CheckLastRun(const YAML::Node& status, JobCheck* job,
                           std::vector<std::string>* warning) {
    try {
      const YAML::Node j = status["jobs"][job->name];
      if (!j) return;
      if (j["last-result"])
        job->last_result = j["last-result"].as<std::string>();
      if (j["last-duration"] && job->last_result != "none") {
        job->last_duration_s = j["last-duration"].as<double>();
      }
      if (job->last_result == "failed") {
        warning->push_back(job->name + ": last run failed (" +
                           j["failures"].as<std::string>() + " in a row): " +
                           j["last-message"].as<std::string>());
      }
    } catch (const YAML::Exception&) {
      // A status file that cannot be read only loses the failure lines.
    }
  }

  CheckResult Check() {
    auto config = scheduler::LoadDaemonConfig(config_, state_dir_);
    if (!config.ok()) return UnknownResult(config.status().Message());
    // A plugin's output is its answer: the backy 2.x keys this config still
    // has (telnet-port, ...) are the scheduler's to warn about; -v shows
    // them here.
    for (const auto& w : config->warnings) spdlog::debug("{}", w);
    struct stat st;
    if (::stat(config->status_file.c_str(), &st) != 0) {
      return UnknownResult("no status file " + config->status_file +
                           " (has the scheduler ever run?)");
    }
    CheckResult r;
    r.checked = true;
    const int64_t now = store::NowMicros();
    const int64_t status_age = now / scheduler::kMicros - st.st_mtime;
    std::vector<std::string> stale;
    if (status_age > max_status_age_s_) {
      stale.push_back("status file " + config->status_file + " is " +
                      Age(status_age) + " old: is the scheduler running?");
    }
    YAML::Node status;
    try {
      status = YAML::LoadFile(config->status_file);
    } catch (const YAML::Exception&) {
      // A status file that cannot be read only loses the failure lines.
    }
    std::vector<std::string> critical, warning;
    for (const auto& [name, job] : config->jobs) {
      const std::string dir = config->JobDir(name);
      JobCheck j;
      j.name = name;
      // From the repository itself: in a pool, whichever host ran the job.
      CheckRepository(dir, config->RepoOptions(), &j, &warning);
      j.sla = scheduler::SlaOf(job.schedule, j.newest_us, now);
      if (j.sla.late) {
        ++r.late;
        critical.push_back(name + ": newest revision is " + Age(j.sla.age_s) +
                           " old (SLA " + Age(j.sla.limit_s) + ")");
      }
      if (!config->RadosBase()) CheckQuarantine(dir, &j, &warning);
      CheckLastRun(status, &j, &warning);
      r.failed += j.last_result == "failed" ? 1 : 0;
      r.distrusted += j.distrusted ? 1 : 0;
      r.jobs.push_back(std::move(j));
    }
    critical.insert(critical.end(), stale.begin(), stale.end());
    const size_t jobs = config->jobs.size();
    if (!critical.empty()) {
      r.code = 2;
      if (r.late > 0) {
        r.summary =
            "CRITICAL: " + std::to_string(r.late) + " jobs not within SLA";
      } else {
        r.summary = "CRITICAL: " + stale.front();
      }
      for (const auto& l : critical) {
        if (r.late == 0 && l == stale.front()) continue;  // the summary
        r.problems.push_back(l);
      }
      r.problems.insert(r.problems.end(), warning.begin(), warning.end());
      return r;
    }
    if (!warning.empty()) {
      r.code = 1;
      r.summary = "WARNING: " + std::to_string(jobs) + " jobs within SLA, " +
                  std::to_string(warning.size()) + " warnings";
      r.problems = warning;
      return r;
    }
    r.code = 0;
    r.summary = "OK: " + std::to_string(jobs) + " jobs within SLA";
    return r;
  }

  std::string config_ = scheduler::kDefaultConfigPath;
  std::string state_dir_;
  int64_t max_status_age_s_ = 300;
  int64_t timeout_s_ = 0;
  bool yaml_ = false;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCheckCommand() {
  return std::make_unique<CheckCommand>();
}

}  // namespace backy::backup::cli
