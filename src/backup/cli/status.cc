// backy status [--yaml]: list the revisions.
#include <cstdio>

#include "backup/cli/command.h"
#include "backup/progress.h"

namespace backy::backup::cli {
namespace {

std::string Join(const std::set<std::string>& tags) {
  std::string out;
  for (const auto& t : tags) {
    if (!out.empty()) out += ",";
    out += t;
  }
  return out;
}

class StatusCommand final : public Command {
 public:
  std::string Name() const override { return "status"; }
  std::string Description() const override {
    return "List the revisions: date (UTC), id, size, duration, tags, trust";
  }
  void Setup(CLI::App* app) override {
    app->add_flag("--yaml", yaml_, "Print every revision's metadata as YAML");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) return revs.status();
    if (yaml_) {
      for (const auto& r : *revs) std::printf("---\n%s", r.ToYaml().c_str());
      return Status::OK();
    }
    std::printf("%-19s  %-22s  %9s  %8s  %-10s  %s\n", "Date (UTC)", "ID",
                "Size", "Duration", "Trust", "Tags");
    uint64_t written = 0;
    double duration = 0;
    for (const auto& r : *revs) {
      std::string date = store::FormatTimestamp(r.timestamp_us).substr(0, 19);
      date[10] = ' ';
      std::printf("%-19s  %-22s  %9s  %8s  %-10s  %s\n", date.c_str(),
                  r.id.c_str(), FormatBytes(r.size).c_str(),
                  FormatDuration(r.stats.duration).c_str(),
                  store::TrustName(r.trust).c_str(), Join(r.tags).c_str());
      written += r.stats.bytes_written;
      duration += r.stats.duration;
    }
    std::printf("%zu revisions, %s written in total, %s of backups\n",
                revs->size(), FormatBytes(written).c_str(),
                FormatDuration(duration).c_str());
    return Status::OK();
  }

 private:
  bool yaml_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() {
  return std::make_unique<StatusCommand>();
}

}  // namespace backy::backup::cli
