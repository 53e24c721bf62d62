// backy status [--yaml]: list the revisions, and the damaged ones.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>

#include "backup/cli/command.h"
#include "backup/progress.h"
#include "store/duration.h"

namespace backy::backup::cli {
namespace {

class StatusCommand final : public Command {
 public:
  std::string Name() const override { return "status"; }
  std::string Description() const override {
    return "List the revisions: date (UTC), id, size, duration, tags, trust; "
           "and the damaged ones (then exit 1)";
  }
  void Setup(CLI::App* app) override {
    app->add_flag("--yaml", yaml_, "Print every revision's metadata as YAML");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto list = (*repo)->ScanRevisions();
    if (!list.ok()) return list.status();
    const auto& revs = list->healthy;
    const auto& damaged = list->damaged;
    if (yaml_) {
      for (const auto& r : revs) std::printf("---\n%s", r.ToYaml().c_str());
      for (const auto& d : damaged) {
        YAML::Emitter e;
        e << YAML::BeginMap << YAML::Key << "id" << YAML::Value << d.id
          << YAML::Key << "damaged" << YAML::Value << d.status.ToString()
          << YAML::EndMap;
        std::printf("---\n%s\n", e.c_str());
      }
      return DamagedError(damaged);
    }
    std::printf("%-19s  %-22s  %9s  %8s  %-10s  %s\n", "Date (UTC)", "ID",
                "Size", "Duration", "Trust", "Tags");
    uint64_t written = 0;
    double duration = 0;
    for (const auto& r : revs) {
      std::string date = store::FormatTimestamp(r.timestamp_us).substr(0, 19);
      date[10] = ' ';
      std::printf(
          "%-19s  %-22s  %9s  %8s  %-10s  %s\n", date.c_str(), r.id.c_str(),
          FormatBytes(r.size).c_str(),
          store::FormatDuration(r.stats.duration, store::DurationFormat::kClock)
              .c_str(),
          store::TrustName(r.trust).c_str(),
          fmt::format("{}", fmt::join(r.tags, ",")).c_str());
      written += r.stats.bytes_written;
      duration += r.stats.duration;
    }
    for (const auto& d : damaged) {
      std::printf("%-19s  %-22s  %s\n", "DAMAGED", d.id.c_str(),
                  d.status.ToString().c_str());
    }
    std::printf(
        "%zu revisions, %s written in total, %s of backups", revs.size(),
        FormatBytes(written).c_str(),
        store::FormatDuration(duration, store::DurationFormat::kClock).c_str());
    if (!damaged.empty()) {
      std::printf("; %zu damaged revisions (skipped by every command)",
                  damaged.size());
    }
    std::printf("\n");
    return DamagedError(damaged);
  }

 private:
  // A listing with damaged revisions exits 1, naming the first.
  static Status DamagedError(
      const std::vector<store::Repository::DamagedRevision>& damaged) {
    if (damaged.empty()) return Status::OK();
    std::string msg = std::to_string(damaged.size()) + " damaged revision" +
                      (damaged.size() == 1 ? "" : "s") + ": revision " +
                      damaged.front().id + ": " +
                      damaged.front().status.Message();
    return Status::Corruption(msg);
  }

  bool yaml_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() {
  return std::make_unique<StatusCommand>();
}

}  // namespace backy::backup::cli
