// backy forget -r SPEC: remove a revision.
#include <cstdio>

#include "backup/cli/command.h"

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
    auto rev = FindRevision(**repo, spec_);
    if (!rev.ok()) return rev.status();
    Status s = (*repo)->Forget(rev->id);
    if (!s.ok()) return s;
    std::printf("forgot revision %s\n", rev->id.c_str());
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
