// backy init TYPE SPEC: create a repository in BACKUPDIR.
#include <spdlog/spdlog.h>

#include "backup/cli/command.h"
#include "backup/source_factory.h"

namespace backy::backup::cli {
namespace {

class InitCommand final : public Command {
 public:
  std::string Name() const override { return "init"; }
  std::string Description() const override {
    return "Create a repository in BACKUPDIR for a source: 'init file PATH' "
           "or 'init ceph-rbd POOL/IMAGE'";
  }
  void Setup(CLI::App* app) override {
    app->add_option("type", type_, "Source type: file or ceph-rbd")->required();
    app->add_option("source", spec_,
                    "For 'file': path of the image file; for 'ceph-rbd': "
                    "POOL/IMAGE or POOL/NAMESPACE/IMAGE")
        ->required();
    app->add_option("--compression", compression_,
                    "Chunk compression: zstd or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"zstd", "none"}));
    app->add_option("--compression-level", level_, "zstd level (-7..19)")
        ->capture_default_str()
        ->check(CLI::Range(-7, 19));
    app->add_flag("--full-always", init_.full_always,
                  "Never diff from the previous backup: read the whole "
                  "source every time");
    auto* rbd = app->add_option_group(
        "ceph-rbd",
        "Options for 'ceph-rbd' sources (default: $CEPH_CONF, "
        "$CEPH_ARGS and Ceph's defaults)");
    rbd->add_option("--ceph-conf", init_.ceph_conf, "Path of a ceph.conf");
    rbd->add_option("--client-id", init_.client_id,
                    "Ceph client id, e.g. 'backup' for client.backup "
                    "(default: admin)");
    rbd->add_option("--keyring", init_.keyring, "Path of the client's keyring");
    rbd->add_option("--verify-budget", init_.verify_budget_s,
                    "Seconds a backup may spend comparing a sample of its "
                    "chunks with the snapshot")
        ->capture_default_str()
        ->check(CLI::Range(0, 7 * 24 * 3600));
    rbd->add_option("--connect-timeout", init_.connect_timeout_s,
                    "Seconds to wait for the Ceph monitors before failing")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    rbd->add_flag("--no-check", no_check_,
                  "Do not connect to check that the image exists");
  }
  Status Run(const GlobalOptions& global) override {
    if (type_ != "ceph-rbd" &&
        (!init_.ceph_conf.empty() || !init_.client_id.empty() ||
         !init_.keyring.empty() || no_check_)) {
      return Status::InvalidArgument(
          "--ceph-conf, --client-id, --keyring and --no-check apply to "
          "ceph-rbd sources only");
    }
    init_.check = !no_check_;
    store::RepositoryConfig config;
    auto section = SourceSectionFor(type_, spec_, init_);
    if (!section.ok()) return section.status();
    config.source = std::move(*section);
    config.compression.enabled = compression_ == "zstd";
    config.compression.level = level_;
    Status s =
        store::Repository::Init(global.backupdir, config, global.repository);
    if (!s.ok()) return s;
    spdlog::info(
        "initialised repository {} for {} source {}", global.backupdir, type_,
        config.source.count("filename") ? config.source.at("filename") : spec_);
    return Status::OK();
  }

 private:
  std::string type_, spec_, compression_ = "zstd";
  int level_ = 3;
  SourceInitOptions init_;
  bool no_check_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeInitCommand() {
  return std::make_unique<InitCommand>();
}

}  // namespace backy::backup::cli
