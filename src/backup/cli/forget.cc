// backy forget -r SPEC: remove a revision (a damaged one by its id).
#include <cstdio>

#include "backup/cli/command.h"
#include "backup/logging.h"
#include "store/spec.h"

namespace backy::backup::cli {
namespace {

class ForgetCommand final : public Command {
 public:
  std::string Name() const override { return "forget"; }
  std::string Description() const override {
    return "Remove a revision; its chunks are freed by the next purge";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-r,--revision", spec_,
                    "Revision SPEC: id, number (0 = newest), last, or tag")
        ->required();
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto locks = (*repo)->LockWriter("forget");
    if (!locks.ok()) return locks.status();
    auto list = (*repo)->ScanRevisions();
    if (!list.ok()) return list.status();
    // A damaged revision is named by its id only (it has no readable
    // time or tags): forgetting it is how it is cleared away.
    for (const auto& d : list->damaged) {
      if (d.id != spec_) continue;
      Status s = (*repo)->Forget(d.id);
      if (!s.ok()) return s;
      std::printf("forgot damaged revision %s\n", d.id.c_str());
      LogToRepository(**repo, "forgot damaged revision " + d.id,
                      /*on_stderr=*/false);
      return Status::OK();
    }
    auto pos = store::ResolveSpec(list->healthy, spec_);
    if (!pos.ok()) return pos.status();
    const std::string id = list->healthy[*pos].id;
    Status s = (*repo)->Forget(id);
    if (!s.ok()) return s;
    std::printf("forgot revision %s\n", id.c_str());
    LogToRepository(**repo, "forgot revision " + id,
                    /*on_stderr=*/false);
    return Status::OK();
  }

 private:
  std::string spec_;
};

}  // namespace

std::unique_ptr<Command> MakeForgetCommand() {
  return std::make_unique<ForgetCommand>();
}

}  // namespace backy::backup::cli
