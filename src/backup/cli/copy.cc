// backy copy --to TARGET [-r SPEC ...|--all]: copy revisions into another
// repository (backup/copy.h), creating it with this one's config if it
// does not exist.
#include "backup/copy.h"

#include <cstdio>
#include <set>

#include "backup/cli/command.h"
#include "backup/logging.h"

namespace backy::backup::cli {
namespace {

class CopyCommand final : public Command {
 public:
  std::string Name() const override { return "copy"; }
  std::string Description() const override {
    return "Copy revisions into another repository, sending only the chunks "
           "it lacks";
  }
  void Setup(CLI::App* app) override {
    app->add_option("--to", target_,
                    "The repository to copy into (created with this one's "
                    "config if missing)")
        ->required();
    auto* r = app->add_option(
        "-r,--revision", specs_,
        "Revision SPEC to copy (id, number, last, or tag); may repeat. "
        "Without -r or --all: every revision");
    auto* all = app->add_flag("--all", all_, "Copy every revision (default)");
    r->excludes(all);
  }

  Status Run(const GlobalOptions& global) override {
    auto from = OpenRepository(global);
    if (!from.ok()) return from.status();
    // Before anything is created at the target.
    Status s = (*from)->RequireCurrentFormat("copy");
    if (!s.ok()) return s;
    std::vector<store::Revision> revisions;
    std::vector<CopyStats::Failure> unreadable;
    s = SelectRevisions(**from, &revisions, &unreadable);
    if (!s.ok()) return s;
    auto to = OpenOrCreateTarget(**from, global);
    if (!to.ok()) return to.status();

    CopyOptions options;
    options.cancel = &g_cancel;
    auto stats = CopyRevisions(**from, **to, revisions, options);
    if (!stats.ok()) return stats.status().WithContext("copy to " + target_);
    for (auto& f : unreadable) stats->failed.push_back(std::move(f));

    const std::string summary = CopySummary(*stats);
    std::printf("copy %s -> %s: %s\n", global.backupdir.c_str(),
                target_.c_str(), summary.c_str());
    LogToRepository(**from, "copied to " + target_ + ": " + summary,
                    /*on_stderr=*/false);
    LogToRepository(**to, "copied from " + global.backupdir + ": " + summary,
                    /*on_stderr=*/false);
    return Outcome(*stats);
  }

 private:
  // The revisions -r names, or every healthy one; with neither -r nor
  // --all a damaged source revision cannot be copied, and is a failure.
  Status SelectRevisions(store::Repository& from,
                         std::vector<store::Revision>* revisions,
                         std::vector<CopyStats::Failure>* unreadable) {
    if (!specs_.empty()) {
      std::set<std::string> ids;
      for (const std::string& spec : specs_) {
        auto rev = FindRevision(from, spec);
        if (!rev.ok()) return rev.status();
        if (ids.insert(rev->id).second) revisions->push_back(std::move(*rev));
      }
      return Status::OK();
    }
    auto scan = from.ScanRevisions();
    if (!scan.ok()) return scan.status();
    *revisions = std::move(scan->healthy);
    for (auto& d : scan->damaged) {
      unreadable->push_back(
          {d.id, d.status.WithContext("revision " + d.id + " is damaged")});
    }
    return Status::OK();
  }

  Result<std::unique_ptr<store::Repository>> OpenOrCreateTarget(
      store::Repository& from, const GlobalOptions& global) {
    auto to = OpenRepositoryAt(target_, global);
    if (to.ok() || !to.status().IsNotFound()) return to;
    Status s =
        store::Repository::Init(target_, from.config(), global.repository);
    if (!s.ok()) return s;
    std::fprintf(stderr, "created repository %s\n", target_.c_str());
    return OpenRepositoryAt(target_, global);
  }

  // Interrupted (130) when cancelled; else 1 naming every revision not
  // copied, however each failed (a conflicting revision in the target is
  // no usage error).
  Status Outcome(const CopyStats& stats) const {
    if (stats.interrupted) {
      return Status::Interrupted(
          "copy interrupted; revisions copied so far are complete, run it "
          "again to go on",
          target_);
    }
    if (stats.failed.empty()) return Status::OK();
    std::string msg = std::to_string(stats.failed.size()) + " revision" +
                      (stats.failed.size() == 1 ? "" : "s") + " not copied: ";
    for (size_t i = 0; i < stats.failed.size(); ++i) {
      msg += (i ? "; " : "") + stats.failed[i].status.Message();
    }
    const Status& first = stats.failed.front().status;
    return first.IsCorruption() || first.IsNotFound() ? Status::Corruption(msg)
                                                      : Status::IOError(msg);
  }

  std::string target_;
  std::vector<std::string> specs_;
  bool all_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCopyCommand() {
  return std::make_unique<CopyCommand>();
}

}  // namespace backy::backup::cli
