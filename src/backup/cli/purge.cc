// backy purge [--dry-run]: delete chunks that no revision and no reader's
// pin references, and the pins of readers that are gone.
#include "store/purge.h"

#include <fmt/format.h>

#include <cstdio>

#include "backup/cli/command.h"
#include "backup/logging.h"
#include "backup/progress.h"

namespace backy::backup::cli {
namespace {

class PurgeCommand final : public Command {
 public:
  std::string Name() const override { return "purge"; }
  std::string Description() const override {
    return "Delete chunks that no revision (nor a revision a running "
           "restore, verify or nbd-server reads) references; print what it "
           "freed";
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
      PrintPins(*plan, "would remove");
      return Status::OK();
    }
    uint64_t freed = 0;
    Status s = store::ExecutePurge(**repo, *plan, &freed);
    if (!s.ok()) return s;
    std::printf("freed %zu of %llu chunks, %s\n", plan->unused.size(),
                static_cast<unsigned long long>(plan->chunks_total),
                FormatBytes(freed).c_str());
    PrintPins(*plan, "removed");
    LogToRepository(
        **repo,
        fmt::format("purge: freed {} of {} chunks, {} ({} bytes); "
                    "{} live pins, {} stale pins removed",
                    plan->unused.size(), plan->chunks_total, FormatBytes(freed),
                    freed, plan->pins_live, plan->stale_pins.size()),
        /*on_stderr=*/false);
    return Status::OK();
  }

 private:
  // What readers' pins kept, and the pins of readers gone (kill -9).
  static void PrintPins(const store::PurgePlan& plan, const char* removed) {
    auto n = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "pins: %llu live, of %llu revision(s) (%llu forgotten, kept for "
        "their readers); %s %zu stale\n",
        n(plan.pins_live), n(plan.pinned_revisions), n(plan.pinned_forgotten),
        removed, plan.stale_pins.size());
  }

  bool dry_run_ = false;
};

}  // namespace

std::unique_ptr<Command> MakePurgeCommand() {
  return std::make_unique<PurgeCommand>();
}

}  // namespace backy::backup::cli
