// backy restore [-r SPEC] [--force] TARGET|-: write a revision's image.
#include "backup/restore.h"

#include <fmt/format.h>

#include "backup/cli/command.h"
#include "backup/logging.h"
#include "backup/progress.h"

namespace backy::backup::cli {
namespace {

class RestoreCommand final : public Command {
 public:
  std::string Name() const override { return "restore"; }
  std::string Description() const override {
    return "Write a revision's full image to TARGET (a file, a block device, "
           "rbd:POOL/IMAGE, or - for stdout)";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-r,--revision", spec_,
                    "Revision SPEC: id, number (0 = newest), last, or tag")
        ->capture_default_str();
    app->add_flag("--force", force_,
                  "Replace an existing non-empty file or RBD image; write to a "
                  "block device");
    app->add_option("target", target_,
                    "File, block device, rbd:POOL/IMAGE (a new RBD image), "
                    "or - for stdout")
        ->required();
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto rev = FindRevision(**repo, spec_);
    if (!rev.ok()) return rev.status();
    RestoreOptions options;
    options.force = force_;
    options.cancel = &g_cancel;
    // Restoring an RBD repository into RBD: reach the cluster the way its
    // backups do (same ceph.conf, user and keyring).
    const auto& src = (*repo)->config().source;
    if (src.count("type") && src.at("type") == "ceph-rbd") {
      for (const char* key : {"ceph_conf", "client_id", "keyring"}) {
        if (src.count(key)) options.ceph[key] = src.at(key);
      }
    }
    auto sink = OpenSink(target_, options);
    if (!sink.ok()) return sink.status();
    Status s = RunRestore(**repo, *rev, **sink, options);
    if (s.IsInterrupted() || g_cancel) {
      return Status::Interrupted("restore interrupted; target is incomplete",
                                 target_);
    }
    if (!s.ok()) return s;
    LogToRepository(**repo,
                    fmt::format("restored revision {} ({}) to {}", rev->id,
                                FormatBytes(rev->size), target_),
                    /*on_stderr=*/true);
    return Status::OK();
  }

 private:
  std::string spec_ = "latest";
  std::string target_;
  bool force_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeRestoreCommand() {
  return std::make_unique<RestoreCommand>();
}

}  // namespace backy::backup::cli
