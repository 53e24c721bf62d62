// backy find [-r SPEC] [--yaml|--json]: print a revision's id, or its
// metadata.
#include <cstdio>

#include "backup/cli/command.h"
#include "backup/cli/output.h"

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
    auto* yaml = app->add_flag("--yaml", yaml_,
                               "Print the revision's metadata (a mapping as "
                               "in status --yaml) instead of its id");
    app->add_flag("--json", json_, "The same mapping as one JSON document")
        ->excludes(yaml);
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto rev = FindRevision(**repo, spec_);
    if (!rev.ok()) return rev.status();
    if (yaml_ || json_) {
      auto node = RevisionYaml(*rev);
      if (!node.ok()) return node.status();
      return PrintDocument(EmitYaml(*node), json_);
    }
    std::printf("%s\n", rev->id.c_str());
    return Status::OK();
  }

 private:
  std::string spec_ = "latest";
  bool yaml_ = false;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeFindCommand() {
  return std::make_unique<FindCommand>();
}

}  // namespace backy::backup::cli
