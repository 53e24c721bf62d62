// backy scheduler -c CONF: run every job of the config on its schedule
// until SIGTERM (backup/scheduler/daemon.h).
#include "backup/cli/command.h"
#include "backup/scheduler/config.h"
#include "backup/scheduler/daemon.h"

namespace backy::backup::cli {
namespace {

class SchedulerCommand final : public Command {
 public:
  std::string Name() const override { return "scheduler"; }
  std::string Description() const override {
    return "Run the jobs of a config file on their schedules until SIGTERM "
           "(see backy.conf(5))";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-c,--config", config_, "The config file")
        ->capture_default_str();
    app->add_option("--state-dir", state_dir_,
                    "This host's state-dir, instead of global.state-dir "
                    "(a rados: base-dir)");
  }
  Status Run(const GlobalOptions& global) override {
    scheduler::DaemonOptions options;
    options.config_path = config_;
    options.verbose = global.verbose;
    options.logfile = global.logfile;
    options.state_dir = state_dir_;
    return scheduler::RunDaemon(options);
  }

 private:
  std::string config_ = scheduler::kDefaultConfigPath;
  std::string state_dir_;
};

}  // namespace

std::unique_ptr<Command> MakeSchedulerCommand() {
  return std::make_unique<SchedulerCommand>();
}

}  // namespace backy::backup::cli
