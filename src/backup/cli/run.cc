// backy run -c CONF JOB: ask the running scheduler to run a job now.
#include <spdlog/spdlog.h>

#include "backup/cli/command.h"
#include "backup/scheduler/config.h"
#include "backup/scheduler/http_api.h"

namespace backy::backup::cli {
namespace {

class RunCommand final : public Command {
 public:
  std::string Name() const override { return "run"; }
  std::string Description() const override {
    return "Ask the running scheduler to run JOB now (with the tags due, or "
           "else those of its next run)";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-c,--config", config_, "The scheduler's config file")
        ->capture_default_str();
    app->add_option("--state-dir", state_dir_,
                    "This host's state-dir, instead of global.state-dir "
                    "(a rados: base-dir)");
    app->add_option("job", job_, "The job")->required();
  }
  Status Run(const GlobalOptions&) override {
    auto config = scheduler::LoadDaemonConfig(config_, state_dir_);
    if (!config.ok()) return config.status();
    auto res =
        scheduler::ApiRequest(config->api, "POST", "/v1/jobs/" + job_ + "/run");
    if (!res.ok()) return res.status();
    switch (res->status) {
      case 202:
        spdlog::info("job {}: run {}", job_,
                     res->body.find("\"queued\":true") != std::string::npos
                         ? "queued (all workers busy)"
                         : "started");
        return Status::OK();
      case 404:
        return Status::NotFound("no such job in the running scheduler", job_);
      case 409:
        return Status::Busy("the job is running already", job_);
      default:
        return Status::IOError("the scheduler answered " +
                               std::to_string(res->status) + ": " + res->body);
    }
  }

 private:
  std::string config_ = scheduler::kDefaultConfigPath;
  std::string state_dir_;
  std::string job_;
};

}  // namespace

std::unique_ptr<Command> MakeRunCommand() {
  return std::make_unique<RunCommand>();
}

}  // namespace backy::backup::cli
