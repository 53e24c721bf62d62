// backy find [-r SPEC]: print a revision's id.
#include <cstdio>

#include "backup/cli/command.h"

namespace backy::backup::cli {
namespace {

class FindCommand final : public Command {
 public:
  std::string Name() const override { return "find"; }
  std::string Description() const override {
    return "Print the id of the revision SPEC names";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-r,--revision", spec_,
                    "Revision SPEC: id, number (0 = newest), last, or tag")
        ->capture_default_str();
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto rev = FindRevision(**repo, spec_);
    if (!rev.ok()) return rev.status();
    std::printf("%s\n", rev->id.c_str());
    return Status::OK();
  }

 private:
  std::string spec_ = "latest";
};

}  // namespace

std::unique_ptr<Command> MakeFindCommand() {
  return std::make_unique<FindCommand>();
}

}  // namespace backy::backup::cli
