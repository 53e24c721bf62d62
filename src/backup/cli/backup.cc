// backy backup [-f] [--full] TAGS: back up the repository's source as a new
// revision.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backup/backup_run.h"
#include "backup/cli/command.h"
#include "backup/logging.h"
#include "backup/progress.h"
#include "backup/source_factory.h"
#include "store/filename.h"
#include "store/revision.h"

namespace backy::backup::cli {
namespace {

class BackupCommand final : public Command {
 public:
  std::string Name() const override { return "backup"; }
  std::string Description() const override {
    return "Back up the source as a new revision tagged with TAGS";
  }
  void Setup(CLI::App* app) override {
    app->add_option("tags", tags_,
                    "Comma-separated tags, e.g. daily or manual:before-upgrade")
        ->required();
    app->add_flag("-f,--force", force_,
                  "Accepted for backy 2.x scripts; changes nothing (tags "
                  "are not checked against the schedule)");
    app->add_flag("--full", full_,
                  "Read the whole source even if a diff from the previous "
                  "backup is possible");
  }
  Status Run(const GlobalOptions& global) override {
    // A usage error is reported before the repository is looked at.
    auto tags = store::ParseTagList(tags_);
    if (!tags.ok()) return tags.status();
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto source = MakeSource((*repo)->config(), (*repo)->ConfigName());
    if (!source.ok()) return source.status();
    BackupOptions options;
    options.tags = std::move(*tags);
    Status s =
        ApplySourceOptions((*repo)->config(), (*repo)->ConfigName(), &options);
    if (!s.ok()) return s;
    options.full = options.full || full_;
    options.cancel = &g_cancel;
    auto rev = RunBackup(**repo, **source, options);
    if (!rev.ok()) return rev.status();
    const auto& st = rev->stats;
    LogToRepository(
        **repo,
        fmt::format(
            "backup {}: revision {} ({}): {} read, {} written, chunks {} new / "
            "{} reused / {} zero / {} carried, {:.1f}s; verified {}/{} chunks "
            "({}{})",
            fmt::join(rev->tags, ","), rev->id, FormatBytes(rev->size),
            FormatBytes(st.bytes_read), FormatBytes(st.bytes_written),
            st.chunks_new, st.chunks_reused, st.chunks_zero, st.chunks_carried,
            st.duration, rev->verification.chunks_checked,
            rev->verification.chunks_total, rev->verification.method,
            rev->verification.complete ? "" : ", incomplete: time budget"),
        /*on_stderr=*/true);
    return Status::OK();
  }

 private:
  std::string tags_;
  bool force_ = false;
  bool full_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeBackupCommand() {
  return std::make_unique<BackupCommand>();
}

}  // namespace backy::backup::cli
