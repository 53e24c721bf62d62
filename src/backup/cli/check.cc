// backy check -c CONF: a Nagios/Icinga plugin. Prints one status line (and
// one line per problem) and exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "backup/cli/command.h"
#include "backup/scheduler/config.h"
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

class CheckCommand final : public Command {
 public:
  std::string Name() const override { return "check"; }
  std::string Description() const override {
    return "Nagios-style check of every job's SLA, trust and quarantine: "
           "exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-c,--config", config_, "The scheduler's config file")
        ->capture_default_str();
    app->add_option("--max-status-age", max_status_age_s_,
                    "Seconds after which a status file not rewritten means "
                    "the scheduler is not running (CRITICAL)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  }

  Status Run(const GlobalOptions&) override {
    std::vector<std::string> critical, warning;
    int code = Check(&critical, &warning);
    std::fflush(stdout);
    // The exit code is the plugin's answer, not an error of backy's:
    // leave without main's "backy: check: ..." line.
    spdlog::shutdown();
    std::exit(code);
  }

 private:
  int Check(std::vector<std::string>* critical,
            std::vector<std::string>* warning) {
    auto config = scheduler::LoadDaemonConfig(config_);
    if (!config.ok()) {
      std::printf("UNKNOWN: %s\n", config.status().Message().c_str());
      return 3;
    }
    // A plugin's output is its answer: the backy 2.x keys this config still
    // has (telnet-port, ...) are the scheduler's to warn about; -v shows
    // them here.
    for (const auto& w : config->warnings) spdlog::debug("{}", w);
    struct stat st;
    if (::stat(config->status_file.c_str(), &st) != 0) {
      std::printf("UNKNOWN: no status file %s (has the scheduler ever run?)\n",
                  config->status_file.c_str());
      return 3;
    }
    const int64_t now = store::NowMicros();
    const int64_t status_age = now / scheduler::kMicros - st.st_mtime;
    std::vector<std::string> stale;
    if (status_age > max_status_age_s_) {
      stale.push_back("status file " + config->status_file + " is " +
                      Age(status_age) + " old: is the scheduler running?");
    }
    // The scheduler's view of the last runs, for failing jobs.
    YAML::Node status;
    try {
      status = YAML::LoadFile(config->status_file);
    } catch (const YAML::Exception&) {
      // A status file that cannot be read only loses the failure lines.
    }
    int late = 0;
    for (const auto& [name, job] : config->jobs) {
      const std::string dir = config->JobDir(name);
      std::optional<int64_t> newest;
      auto repo = store::Repository::Open(dir);
      if (repo.ok()) {
        auto list = (*repo)->ScanRevisions();
        if (!list.ok()) {
          warning->push_back(name + ": " + list.status().Message());
        } else {
          for (const auto& d : list->damaged) {
            warning->push_back(name + ": damaged revision " + d.id + ": " +
                               d.status.Message());
          }
        }
        if (list.ok() && !list->healthy.empty()) {
          const store::Revision& r = list->healthy.back();
          newest = r.timestamp_us;
          if (r.trust == store::Trust::kDistrusted) {
            warning->push_back(name + ": newest revision " + r.id +
                               " is distrusted (run 'backy -b " + dir +
                               " verify')");
          }
        }
      } else if (!repo.status().IsNotFound()) {
        warning->push_back(name + ": " + repo.status().Message());
      }
      const auto sla = scheduler::SlaOf(job.schedule, newest, now);
      if (sla.late) {
        ++late;
        critical->push_back(name + ": newest revision is " + Age(sla.age_s) +
                            " old (SLA " + Age(sla.limit_s) + ")");
      }
      std::error_code ec;
      const std::filesystem::path q = store::QuarantineDirName(dir);
      if (std::filesystem::is_directory(q, ec) &&
          !std::filesystem::is_empty(q, ec)) {
        size_t n = 0;
        for (auto it = std::filesystem::directory_iterator(q, ec);
             !ec && it != std::filesystem::directory_iterator(); ++it) {
          ++n;
        }
        warning->push_back(name + ": " + std::to_string(n) +
                           " quarantined chunks in " + q.string());
      }
      try {
        const YAML::Node j = status["jobs"][name];
        if (j && j["last-result"] &&
            j["last-result"].as<std::string>() == "failed") {
          warning->push_back(
              name + ": last run failed (" + j["failures"].as<std::string>() +
              " in a row): " + j["last-message"].as<std::string>());
        }
      } catch (const YAML::Exception&) {
      }
    }
    critical->insert(critical->end(), stale.begin(), stale.end());
    const size_t jobs = config->jobs.size();
    if (!critical->empty()) {
      if (late > 0) {
        std::printf("CRITICAL: %d jobs not within SLA\n", late);
      } else {
        std::printf("CRITICAL: %s\n", stale.front().c_str());
      }
      for (const auto& l : *critical) {
        if (late == 0 && l == stale.front()) continue;  // already the header
        std::printf("%s\n", l.c_str());
      }
      for (const auto& l : *warning) std::printf("%s\n", l.c_str());
      return 2;
    }
    if (!warning->empty()) {
      std::printf("WARNING: %zu jobs within SLA, %zu warnings\n", jobs,
                  warning->size());
      for (const auto& l : *warning) std::printf("%s\n", l.c_str());
      return 1;
    }
    std::printf("OK: %zu jobs within SLA\n", jobs);
    return 0;
  }

  std::string config_ = scheduler::kDefaultConfigPath;
  int64_t max_status_age_s_ = 300;
};

}  // namespace

std::unique_ptr<Command> MakeCheckCommand() {
  return std::make_unique<CheckCommand>();
}

}  // namespace backy::backup::cli
