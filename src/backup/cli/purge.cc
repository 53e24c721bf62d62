// backy purge [--dry-run]: delete chunks no revision references.
#include "store/purge.h"

#include <cstdio>

#include "backup/cli/command.h"
#include "backup/progress.h"

namespace backy::backup::cli {
namespace {

class PurgeCommand final : public Command {
 public:
  std::string Name() const override { return "purge"; }
  std::string Description() const override {
    return "Delete chunks that no revision references and print what it freed";
  }
  void Setup(CLI::App* app) override {
    app->add_flag("-n,--dry-run", dry_run_, "Print what would be freed");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto locks = (*repo)->LockPurge();
    if (!locks.ok()) return locks.status();
    if (!dry_run_) {
      Status s = (*repo)->RemoveLeftovers();
      if (!s.ok()) return s;
    }
    auto plan = store::PlanPurge(**repo);
    if (!plan.ok()) return plan.status();
    if (dry_run_) {
      std::printf("would free %zu of %llu chunks, %s\n", plan->unused.size(),
                  static_cast<unsigned long long>(plan->chunks_total),
                  FormatBytes(plan->bytes_unused).c_str());
      return Status::OK();
    }
    uint64_t freed = 0;
    Status s = store::ExecutePurge(**repo, *plan, &freed);
    if (!s.ok()) return s;
    std::printf("freed %zu of %llu chunks, %s\n", plan->unused.size(),
                static_cast<unsigned long long>(plan->chunks_total),
                FormatBytes(freed).c_str());
    return Status::OK();
  }

 private:
  bool dry_run_ = false;
};

}  // namespace

std::unique_ptr<Command> MakePurgeCommand() {
  return std::make_unique<PurgeCommand>();
}

}  // namespace backy::backup::cli
