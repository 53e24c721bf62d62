// backy expire [--dry-run]: apply the schedule's retention to the revisions.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "backup/cli/command.h"
#include "backup/retention.h"

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
      std::printf("no schedule in %s/config: nothing expires\n",
                  (*repo)->dir().c_str());
      return Status::OK();
    }
    std::optional<store::Repository::Locks> locks;
    if (!dry_run_) {
      auto l = (*repo)->LockWriter("expire");
      if (!l.ok()) return l.status();
      locks = std::move(*l);
    }
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) return revs.status();
    auto plan = PlanExpire(*revs, schedule);
    const size_t removed = static_cast<size_t>(std::count_if(
        plan.begin(), plan.end(),
        [](const ExpireChange& c) { return c.remove_revision; }));
    for (const auto& change : plan) {
      std::string tags;
      for (const auto& t : change.removed_tags) tags += (tags.empty() ? "" : ",") + t;
      if (change.remove_revision) {
        std::printf("%sremove revision %s\n", dry_run_ ? "would " : "",
                    change.id.c_str());
      } else {
        std::printf("%suntag %s (%s)\n", dry_run_ ? "would " : "",
                    change.id.c_str(), tags.c_str());
      }
      if (dry_run_) continue;
      Status s;
      if (change.remove_revision) {
        s = (*repo)->Forget(change.id);
      } else {
        auto rev = std::find_if(revs->begin(), revs->end(),
                                [&](const store::Revision& r) { return r.id == change.id; });
        store::Revision updated = *rev;
        for (const auto& t : change.removed_tags) updated.tags.erase(t);
        s = (*repo)->UpdateMetadata(updated);
      }
      if (!s.ok()) return s;
    }
    std::printf("%s%zu revisions removed, %zu kept\n", dry_run_ ? "would have " : "",
                removed, revs->size() - removed);
    return Status::OK();
  }

 private:
  bool dry_run_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeExpireCommand() {
  return std::make_unique<ExpireCommand>();
}

}  // namespace backy::backup::cli
