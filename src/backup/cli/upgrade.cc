// backy upgrade [--dry-run] [--wait] [--no-space-check]: convert a backy
// 2.x repository in place into the current format (backup/upgrade.h); given
// a directory of repositories (the scheduler's base directory), each of
// them in turn.
#include "backup/upgrade.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "backup/cli/command.h"
#include "backup/progress.h"
#include "store/filename.h"

namespace backy::backup::cli {
namespace {

std::string Tags(const store::Revision& r) {
  std::string out;
  for (const auto& t : r.tags) out += (out.empty() ? "" : ",") + t;
  return out;
}

class UpgradeCommand final : public Command {
 public:
  std::string Name() const override { return "upgrade"; }
  std::string Description() const override {
    return "Convert a backy 2.x repository in place into the current format";
  }
  void Setup(CLI::App* app) override {
    app->add_flag("-n,--dry-run", dry_run_,
                  "Only print what would be converted and the space it needs");
    app->add_flag("--no-space-check", no_space_check_,
                  "Start even when the file system seems to lack the space "
                  "the new chunks need");
    app->add_option("--to", to_,
                    "Convert into this repository instead (created if "
                    "missing; e.g. rados:POOL/NAME), leaving the 2.x one as "
                    "it is");
    app->add_flag("--wait", wait_,
                  "Wait for a backy 2.x process, restore or nbd-server using "
                  "the repository instead of failing");
  }
  Status Run(const GlobalOptions& global) override {
    if (!to_.empty()) return UpgradeInto(global);
    const std::vector<std::string> repos = Repositories(global.backupdir);
    if (repos.empty()) {
      return dry_run_ ? DryRun(global.backupdir) : Upgrade(global.backupdir);
    }
    // A directory of repositories: each one; the first error is returned
    // once all were tried.
    Status first;
    size_t failed = 0;
    for (const std::string& dir : repos) {
      Status s = dry_run_ ? DryRun(dir) : Upgrade(dir);
      if (s.ok()) continue;
      std::fprintf(stderr, "backy: upgrade: %s\n", s.Message().c_str());
      if (s.IsInterrupted()) return s;
      if (first.ok()) first = s;
      ++failed;
    }
    if (failed == 0) return Status::OK();
    return first.WithContext(std::to_string(failed) + " of " +
                             std::to_string(repos.size()) +
                             " repositories not upgraded; the first");
  }

 private:
  // The repositories in `dir` when it is a directory of repositories (no
  // config of its own), sorted; else none.
  static std::vector<std::string> Repositories(const std::string& dir) {
    std::vector<std::string> out;
    struct stat st;
    if (::stat(store::ConfigFileName(dir).c_str(), &st) == 0) return out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string sub = e.path().string();
      if (e.is_directory(ec) &&
          ::stat(store::ConfigFileName(sub).c_str(), &st) == 0) {
        out.push_back(sub);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Status UpgradeInto(const GlobalOptions& global) {
    if (dry_run_) {
      return Status::InvalidArgument("--dry-run does not go with --to");
    }
    UpgradeOptions options;
    options.cancel = &g_cancel;
    auto sum =
        backup::UpgradeInto(global.backupdir, to_, global.repository, options);
    if (!sum.ok()) return sum.status();
    std::printf(
        "upgraded %s into %s: %zu revisions converted (%zu there already), "
        "%s of image in %.1f s; chunks written: %llu (%s), reused: %llu\n",
        global.backupdir.c_str(), to_.c_str(), sum->revisions_converted,
        sum->revisions_resumed, FormatBytes(sum->image_bytes).c_str(),
        sum->seconds, static_cast<unsigned long long>(sum->chunks_written),
        FormatBytes(sum->bytes_written).c_str(),
        static_cast<unsigned long long>(sum->chunks_reused));
    return Status::OK();
  }

  Status Upgrade(const std::string& dir) {
    UpgradeOptions options;
    options.wait = wait_;
    options.check_space = !no_space_check_;
    options.cancel = &g_cancel;
    options.on_wait = [](const std::string& lock) {
      std::fprintf(stderr, "backy: upgrade: waiting for %s\n", lock.c_str());
    };
    auto sum = backup::Upgrade(dir, options);
    if (!sum.ok()) return sum.status();
    if (sum->was_current) {
      std::printf("%s is already a current backy repository; nothing to do\n",
                  dir.c_str());
      return Status::OK();
    }
    if (sum->clean_up_only) {
      std::printf(
          "%s: finished the clean-up of an earlier upgrade: %llu 2.x files "
          "removed\n",
          dir.c_str(), static_cast<unsigned long long>(sum->files_removed));
      return Status::OK();
    }
    const double mib = static_cast<double>(sum->image_bytes) / (1 << 20);
    std::printf(
        "upgraded %s: %zu revisions converted (%zu earlier), %s of image in "
        "%.1f s (%.0f MiB/s)\n"
        "  2.x chunks read: %llu; slots already converted: %llu; zero slots: "
        "%llu\n"
        "  chunks written: %llu (%s); existing chunks reused: %llu\n"
        "  2.x files removed: %llu\n",
        dir.c_str(), sum->revisions_converted, sum->revisions_resumed,
        FormatBytes(sum->image_bytes).c_str(), sum->seconds,
        sum->seconds > 0 ? mib / sum->seconds : 0.0,
        static_cast<unsigned long long>(sum->legacy_chunks_read),
        static_cast<unsigned long long>(sum->slots_deduplicated),
        static_cast<unsigned long long>(sum->zero_slots),
        static_cast<unsigned long long>(sum->chunks_written),
        FormatBytes(sum->bytes_written).c_str(),
        static_cast<unsigned long long>(sum->chunks_reused),
        static_cast<unsigned long long>(sum->files_removed));
    return Status::OK();
  }

  Status DryRun(const std::string& dir_name) {
    auto repo = store::DirectoryRepository::Open(dir_name);
    if (!repo.ok()) return repo.status();
    auto lock = (*repo)->LockReader();
    if (!lock.ok()) return lock.status();
    auto plan = PlanUpgrade(**repo, /*measure=*/true);
    if (!plan.ok()) return plan.status();
    const char* dir = dir_name.c_str();
    if (plan->NothingToDo()) {
      std::printf("%s is already a current backy repository; nothing to do\n",
                  dir);
      return Status::OK();
    }
    if (!plan->legacy_config) {
      std::printf(
          "%s: an earlier upgrade was interrupted in its clean-up; would "
          "remove %zu 2.x files\n",
          dir, plan->legacy_files.size());
      return Status::OK();
    }
    std::printf("%s is a backy 2.x repository; upgrade would:\n", dir);
    std::printf("  convert %zu revisions (%s of image)%s\n",
                plan->to_convert.size(), FormatBytes(plan->image_bytes).c_str(),
                plan->converted.empty()
                    ? ""
                    : (", " + std::to_string(plan->converted.size()) +
                       " converted by an earlier run")
                          .c_str());
    for (const auto& r : plan->to_convert) {
      std::printf("    %s  %s  %-10s  %s\n", r.id.c_str(),
                  store::FormatTimestamp(r.timestamp_us).substr(0, 19).c_str(),
                  store::TrustName(r.trust).c_str(), Tags(r).c_str());
    }
    std::printf("  read %llu distinct 2.x chunks (%s in files, %s plain)\n",
                static_cast<unsigned long long>(plan->legacy_chunks),
                FormatBytes(plan->legacy_chunk_file_bytes).c_str(),
                FormatBytes(plan->legacy_chunk_plain_bytes).c_str());
    const store::RepositoryConfig config = CurrentConfigFor((*repo)->config());
    std::printf("  write the current config (source %s)\n",
                store::Repository::SourceNameOf(config.source).c_str());
    std::printf("  then remove %zu 2.x files (%zu incomplete revisions)\n",
                plan->legacy_files.size(), plan->incomplete.size());
    std::printf(
        "  peak extra space: about %s (the 2.x chunk files' size), at most %s "
        "(their plain size)\n",
        FormatBytes(plan->PeakExtraBytes()).c_str(),
        FormatBytes(plan->MaxExtraBytes()).c_str());
    if (!plan->damaged.empty()) {
      for (const auto& d : plan->damaged) {
        std::printf("  cannot convert damaged revision %s: %s\n", d.id.c_str(),
                    d.status.ToString().c_str());
      }
      return Status::Corruption(
          std::to_string(plan->damaged.size()) +
          " 2.x revisions cannot be read; upgrade would refuse");
    }
    return Status::OK();
  }

  bool dry_run_ = false;
  std::string to_;
  bool wait_ = false;
  bool no_space_check_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeUpgradeCommand() {
  return std::make_unique<UpgradeCommand>();
}

}  // namespace backy::backup::cli
