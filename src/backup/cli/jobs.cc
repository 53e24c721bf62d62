// backy jobs -c CONF: list the scheduler's jobs through its control API.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <vector>

#include "backup/cli/command.h"
#include "backup/scheduler/config.h"
#include "backup/scheduler/http_api.h"

namespace backy::backup::cli {
namespace {

class JobsCommand final : public Command {
 public:
  std::string Name() const override { return "jobs"; }
  std::string Description() const override {
    return "List the scheduler's jobs: state, last and next run, SLA (asks "
           "the running scheduler)";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-c,--config", config_, "The scheduler's config file")
        ->capture_default_str();
    app->add_option("--state-dir", state_dir_,
                    "This host's state-dir, instead of global.state-dir "
                    "(a rados: base-dir)");
    app->add_flag("--json", json_, "Print the API's JSON answer as it is");
  }
  Status Run(const GlobalOptions&) override {
    auto config = scheduler::LoadDaemonConfig(config_, state_dir_);
    if (!config.ok()) return config.status();
    for (const auto& w : config->warnings) spdlog::warn("{}", w);
    auto res = scheduler::ApiRequest(config->api, "GET", "/v1/jobs");
    if (!res.ok()) return res.status();
    if (res->status != 200) {
      return Status::IOError("the scheduler answered " +
                             std::to_string(res->status) + ": " + res->body);
    }
    if (json_) {
      std::fputs(res->body.c_str(), stdout);
      return Status::OK();
    }
    // JSON is YAML; yaml-cpp reads it.
    YAML::Node doc;
    try {
      doc = YAML::Load(res->body);
    } catch (const YAML::Exception& e) {
      return Status::Corruption(std::string("bad answer from the API: ") +
                                e.what());
    }
    std::printf("%-16s %-8s %-5s %-20s %-8s %-20s %s\n", "Job", "State", "SLA",
                "Last run (UTC)", "Result", "Next run (UTC)", "Next tags");
    for (const auto& j : doc["jobs"]) {
      std::vector<std::string> tags;
      if (j["next-tags"].IsSequence()) {
        tags = j["next-tags"].as<std::vector<std::string>>();
      }
      const std::string next_tags = fmt::format("{}", fmt::join(tags, ","));
      auto s = [&](const char* k) {
        std::string v = j[k] ? j[k].as<std::string>() : "";
        return v.empty() ? std::string("-") : v;
      };
      std::printf("%-16s %-8s %-5s %-20s %-8s %-20s %s\n", s("name").c_str(),
                  s("state").c_str(), s("sla").c_str(), s("last-time").c_str(),
                  s("last-result").c_str(), s("next-time").c_str(),
                  next_tags.c_str());
    }
    return Status::OK();
  }

 private:
  std::string config_ = scheduler::kDefaultConfigPath;
  std::string state_dir_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeJobsCommand() {
  return std::make_unique<JobsCommand>();
}

}  // namespace backy::backup::cli
