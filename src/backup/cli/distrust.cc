// backy distrust [-r SPEC] [--from DATE] [--until DATE]: mark revisions
// distrusted.
#include <climits>
#include <cstdio>

#include "backup/cli/command.h"
#include "store/spec.h"

namespace backy::backup::cli {
namespace {

class DistrustCommand final : public Command {
 public:
  std::string Name() const override { return "distrust"; }
  std::string Description() const override {
    return "Mark revisions distrusted (default: all), so the next backup "
           "reads and writes everything again";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-r,--revision", spec_, "Revision SPEC");
    app->add_option("--from", from_,
                    "Only revisions at or after this UTC date/time");
    app->add_option("--until", until_,
                    "Only revisions at or before this UTC date/time");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    int64_t from = INT64_MIN, until = INT64_MAX;
    if (!from_.empty()) {
      auto t = store::ParseTimestamp(from_);
      if (!t.ok()) return t.status();
      from = *t;
    }
    if (!until_.empty()) {
      auto t = store::ParseTimestamp(until_);
      if (!t.ok()) return t.status();
      until = *t;
      if (until_.size() <= 10) until += 86400LL * 1000000 - 1;  // whole day
    }
    auto locks = (*repo)->LockWriter("distrust");
    if (!locks.ok()) return locks.status();
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) return revs.status();
    std::string only;
    if (!spec_.empty()) {
      auto pos = store::ResolveSpec(*revs, spec_);
      if (!pos.ok()) return pos.status();
      only = (*revs)[*pos].id;
    }
    size_t n = 0;
    for (auto r : *revs) {
      if (!only.empty() && r.id != only) continue;
      if (r.timestamp_us < from || r.timestamp_us > until) continue;
      r.trust = store::Trust::kDistrusted;
      Status s = (*repo)->UpdateMetadata(r);
      if (!s.ok()) return s;
      std::printf("distrusted %s\n", r.id.c_str());
      ++n;
    }
    if (n == 0) return Status::NotFound("no revision matches");
    return Status::OK();
  }

 private:
  std::string spec_, from_, until_;
};

}  // namespace

std::unique_ptr<Command> MakeDistrustCommand() {
  return std::make_unique<DistrustCommand>();
}

}  // namespace backy::backup::cli
