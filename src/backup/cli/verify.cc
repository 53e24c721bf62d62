// backy verify [-r SPEC | --all]: re-read and check every chunk of
// revisions; mark them verified or distrusted.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "backup/cli/command.h"
#include "backup/workers.h"
#include "store/spec.h"

namespace backy::backup::cli {
namespace {

// Checks every distinct chunk of `index`; returns the bad ones' errors.
std::vector<Status> CheckChunks(store::Repository& repo,
                                const store::RevisionIndex& index) {
  std::vector<Digest> digests;
  std::unordered_set<Digest, DigestHash> seen;
  for (size_t i = 0; i < index.slot_count(); ++i) {
    if (!index.IsZero(i) && seen.insert(index.slot(i)).second) {
      digests.push_back(index.slot(i));
    }
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::vector<Status> bad;
  auto worker = [&] {
    std::vector<uint8_t> buf;
    while (!g_cancel) {
      size_t i = next++;
      if (i >= digests.size()) break;
      Status s = repo.chunks().Get(digests[i], &buf);
      if (s.ok()) continue;
      if (s.IsCorruption()) {
        Status q = repo.chunks().Quarantine(digests[i]);
        if (q.ok()) s = s.WithContext("moved to quarantine/");
      }
      std::lock_guard<std::mutex> l(mu);
      bad.push_back(s);
    }
  };
  RunWorkers(WorkerCount(0), worker);
  return bad;
}

class VerifyCommand final : public Command {
 public:
  std::string Name() const override { return "verify"; }
  std::string Description() const override {
    return "Re-read and check every chunk of revisions (default: the "
           "distrusted ones); mark them verified or distrusted";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-r,--revision", spec_, "Revision SPEC to verify");
    app->add_flag("--all", all_, "Verify every revision");
  }
  Status Run(const GlobalOptions& global) override {
    auto repo = OpenRepository(global);
    if (!repo.ok()) return repo.status();
    auto reader = (*repo)->LockReader();
    if (!reader.ok()) return reader.status();
    auto revs = (*repo)->Revisions();
    if (!revs.ok()) return revs.status();
    std::vector<store::Revision> todo;
    if (!spec_.empty()) {
      auto pos = store::ResolveSpec(*revs, spec_);
      if (!pos.ok()) return pos.status();
      todo.push_back((*revs)[*pos]);
    } else {
      for (const auto& r : *revs) {
        if (all_ || r.trust == store::Trust::kDistrusted) todo.push_back(r);
      }
    }
    if (todo.empty()) {
      std::printf("no distrusted revisions to verify (use --all or -r SPEC)\n");
      return Status::OK();
    }
    size_t failed = 0;
    for (const auto& r : todo) {
      auto index = (*repo)->LoadIndex(r.id);
      std::vector<Status> bad;
      if (!index.ok()) {
        bad.push_back(index.status());
      } else {
        bad = CheckChunks(**repo, *index);
      }
      if (g_cancel) return Status::Interrupted("verify interrupted");
      for (const auto& s : bad) std::printf("  %s\n", s.ToString().c_str());
      const store::Trust trust =
          bad.empty() ? store::Trust::kVerified : store::Trust::kDistrusted;
      std::printf("revision %s: %s\n", r.id.c_str(),
                  bad.empty() ? "verified"
                              : ("distrusted, " + std::to_string(bad.size()) +
                                 " bad chunks").c_str());
      failed += !bad.empty();
      // Update the metadata briefly under the writer lock, re-reading it so
      // a concurrent expire's tag changes are not lost.
      auto locks = (*repo)->LockWriter("verify");
      if (!locks.ok()) return locks.status();
      auto fresh = FindRevision(**repo, r.id);
      if (!fresh.ok()) continue;  // forgotten meanwhile
      fresh->trust = trust;
      Status s = (*repo)->UpdateMetadata(*fresh);
      if (!s.ok()) return s;
    }
    if (failed) {
      return Status::Corruption(std::to_string(failed) +
                                " revision(s) have damaged chunks and stay distrusted");
    }
    return Status::OK();
  }

 private:
  std::string spec_;
  bool all_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeVerifyCommand() {
  return std::make_unique<VerifyCommand>();
}

}  // namespace backy::backup::cli
