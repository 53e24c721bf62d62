// backy status [--yaml|--json]: list the revisions, and the damaged ones.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>

#include "backup/cli/command.h"
#include "backup/cli/output.h"
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
    auto* yaml = app->add_flag("--yaml", yaml_,
                               "Print the revisions' metadata as one YAML "
                               "list, oldest first (with backy 2.x's keys)");
    app->add_flag("--json", json_,
                  "The same list as one JSON document (one line)")
        ->excludes(yaml);
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto list = (*repo)->ScanRevisions();
    if (!list.ok()) return list.status();
    const auto& revs = list->healthy;
    const auto& damaged = list->damaged;
    if (yaml_ || json_) {
      std::string out;
      Status s = YamlList(revs, damaged, &out);
      if (s.ok()) s = PrintDocument(out, json_);
      if (!s.ok()) return s;
      return DamagedError(damaged);
    }
    // Size is the image's size; Written what the backup stored (new
    // chunks, compressed): the figure backy 2.x showed as "Size".
    std::printf("%-19s  %-22s  %9s  %9s  %8s  %-10s  %s\n", "Date (UTC)", "ID",
                "Size", "Written", "Duration", "Trust", "Tags");
    uint64_t written = 0;
    double duration = 0;
    for (const auto& r : revs) {
      std::string date = store::FormatTimestamp(r.timestamp_us).substr(0, 19);
      date[10] = ' ';
      std::printf(
          "%-19s  %-22s  %9s  %9s  %8s  %-10s  %s\n", date.c_str(),
          r.id.c_str(), FormatBytes(r.size).c_str(),
          FormatBytes(r.stats.bytes_written).c_str(),
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
    std::printf(
        "\nSize: the image's size; Written: what its backup stored (backy "
        "2.x's Size)\n");
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

  // `status --yaml`: ONE YAML document, the list of the revisions oldest
  // first (what backy 2.x printed, and what its callbacks read), then one
  // {id, uuid, damaged} mapping per damaged revision. "[]" when empty.
  static Status YamlList(
      const std::vector<store::Revision>& revs,
      const std::vector<store::Repository::DamagedRevision>& damaged,
      std::string* out) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& r : revs) {
      auto node = RevisionYaml(r);
      if (!node.ok()) return node.status();
      list.push_back(*node);
    }
    for (const auto& d : damaged) {
      YAML::Node m(YAML::NodeType::Map);
      m["id"] = d.id;
      m["uuid"] = d.id;
      m["damaged"] = d.status.ToString();
      list.push_back(m);
    }
    *out = EmitYaml(list);
    return Status::OK();
  }

  bool yaml_ = false;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeStatusCommand() {
  return std::make_unique<StatusCommand>();
}

}  // namespace backy::backup::cli
