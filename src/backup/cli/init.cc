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
    return "Create a repository in BACKUPDIR for a source: 'init file PATH'";
  }
  void Setup(CLI::App* app) override {
    app->add_option("type", type_, "Source type: file")->required();
    app->add_option("source", spec_, "For 'file': path of the image file")
        ->required();
    app->add_option("--compression", compression_,
                    "Chunk compression: zstd or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"zstd", "none"}));
    app->add_option("--compression-level", level_, "zstd level (-7..19)")
        ->capture_default_str()
        ->check(CLI::Range(-7, 19));
  }
  Status Run(const GlobalOptions& global) override {
    store::RepositoryConfig config;
    auto section = SourceSectionFor(type_, spec_);
    if (!section.ok()) return section.status();
    config.source = std::move(*section);
    config.compression.enabled = compression_ == "zstd";
    config.compression.level = level_;
    Status s = store::Repository::Init(global.backupdir, config);
    if (!s.ok()) return s;
    spdlog::info("initialised repository {} for {} source {}", global.backupdir,
                 type_, config.source.count("filename")
                            ? config.source.at("filename")
                            : spec_);
    return Status::OK();
  }

 private:
  std::string type_, spec_, compression_ = "zstd";
  int level_ = 1;
};

}  // namespace

std::unique_ptr<Command> MakeInitCommand() {
  return std::make_unique<InitCommand>();
}

}  // namespace backy::backup::cli
