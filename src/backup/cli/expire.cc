// backy expire [--dry-run]: apply the schedule's retention to the revisions
// (the plan and its execution are in backup/expire.h; this is the CLI).
#include "backup/expire.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "backup/cli/command.h"
#include "backup/logging.h"
#include "store/filename.h"

namespace backy::backup::cli {
namespace {

class ExpireCommand final : public Command {
 public:
  std::string Name() const override { return "expire"; }
  std::string Description() const override {
    return "Remove tags and revisions the schedule no longer keeps";
  }
  void Setup(CLI::App* app) override {
    app->add_flag("-n,--dry-run", dry_run_, "Print the plan, change nothing");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    const auto& schedule = (*repo)->config().schedule;
    if (schedule.empty()) {
      const std::string why =
          "no schedule in " + (*repo)->ConfigName() + ": nothing expires";
      std::printf("%s\n", why.c_str());
      if (!dry_run_) LogToRepository(**repo, "expire: " + why, false);
      return Status::OK();
    }
    std::optional<store::Repository::Locks> locks;
    if (!dry_run_) {
      Status s = (*repo)->RequireCurrentFormat("expire");
      if (!s.ok()) return s;
      auto l = (*repo)->LockWriter("expire");
      if (!l.ok()) return l.status();
      locks = std::move(*l);
    }
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) return revs.status();
    auto plan = PlanExpire(*revs, schedule);
    const size_t removed = static_cast<size_t>(
        std::count_if(plan.begin(), plan.end(),
                      [](const ExpireChange& c) { return c.remove_revision; }));
    if (dry_run_) {
      for (const auto& change : plan) Print(change);
    } else {
      std::vector<std::string> done;
      Status s = ExecuteExpire(**repo, *revs, plan, [&](const ExpireChange& c) {
        Print(c);
        done.push_back(c.remove_revision
                           ? "removed revision " + c.id
                           : fmt::format("untagged {} ({})", c.id,
                                         fmt::join(c.removed_tags, ",")));
      });
      // What changed, also when a change failed (the last one tried:
      // ExecuteExpire stops there).
      std::string outcome =
          fmt::format("{} revisions kept", revs->size() - removed);
      if (!s.ok()) {
        outcome = "failed to apply \"" + done.back() + "\": " + s.Message();
        done.pop_back();
      }
      LogToRepository(
          **repo,
          fmt::format("expire: {}; {}",
                      done.empty() ? "nothing removed"
                                   : fmt::format("{}", fmt::join(done, ", ")),
                      outcome),
          /*on_stderr=*/false);
      if (!s.ok()) return s;
    }
    std::printf("%s%zu revisions removed, %zu kept\n",
                dry_run_ ? "would have " : "", removed, revs->size() - removed);
    return Status::OK();
  }

 private:
  void Print(const ExpireChange& change) const {
    if (change.remove_revision) {
      std::printf("%sremove revision %s\n", dry_run_ ? "would " : "",
                  change.id.c_str());
    } else {
      std::printf(
          "%suntag %s (%s)\n", dry_run_ ? "would " : "", change.id.c_str(),
          fmt::format("{}", fmt::join(change.removed_tags, ",")).c_str());
    }
  }

  bool dry_run_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeExpireCommand() {
  return std::make_unique<ExpireCommand>();
}

}  // namespace backy::backup::cli
