// backy verify [-r SPEC | --all]: re-read and check every chunk of
// revisions; mark them verified or distrusted.
#include "backup/verify.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "backup/cli/command.h"
#include "backup/logging.h"
#include "backup/restore.h"
#include "store/spec.h"

namespace backy::backup::cli {
namespace {

// The writer lock, for updating one revision's trust. forget and expire
// hold it only briefly: wait up to 10 s for them instead of failing
// with Busy at once.
Result<store::Repository::Locks> LockWriterBriefly(store::Repository& repo) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    auto locks = repo.LockWriter("verify");
    if (!locks.status().IsBusy() || g_cancel ||
        std::chrono::steady_clock::now() > deadline) {
      return locks;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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
    size_t failed = 0, unchecked = 0;
    Status first_error;
    // What happened to each revision, for the repository's log: recorded
    // on every way out once a revision was checked.
    std::vector<std::string> outcomes;
    auto log_outcomes = [&] {
      if (outcomes.empty()) return;
      LogToRepository(**repo,
                      fmt::format("verify: {}", fmt::join(outcomes, "; ")),
                      /*on_stderr=*/false);
    };
    auto record = [&](Status result) {
      log_outcomes();
      return result;
    };
    // A chunk that several revisions share is read once per run.
    CheckedChunks checked;
    size_t revisions_checked = 0;
    for (const auto& r : todo) {
      ChunkReport report;
      // Pinned while its chunks are read: a purge meanwhile keeps them.
      auto pin = (*repo)->PinRevision(r, "verify");
      auto index = pin.ok() ? pin->LoadIndex()
                            : Result<store::RevisionIndex>(pin.status());
      if (!index.ok()) {
        // forget/expire remove the metadata first, then the index.
        if (RevisionRemoved(**repo, r)) {
          std::printf(
              "revision %s: removed meanwhile (forget or expire), "
              "skipped\n",
              r.id.c_str());
          outcomes.push_back("revision " + r.id + " removed meanwhile");
          continue;
        }
        (index.status().IsCorruption() ? report.damaged : report.errors)
            .push_back(index.status());
      } else {
        VerifyOptions vo;
        vo.cancel = &g_cancel;
        report = CheckChunks((*repo)->ChunksOf(r), *index, vo, &checked);
        ++revisions_checked;
      }
      if (g_cancel) return record(Status::Interrupted("verify interrupted"));
      for (const auto& s : report.damaged) {
        std::printf("  %s\n", s.ToString().c_str());
      }
      for (const auto& s : report.errors) {
        std::printf("  %s\n", s.ToString().c_str());
      }
      if (report.damaged.empty() && !report.errors.empty()) {
        // Nothing is known about the data: leave the revision's trust.
        std::printf("revision %s: not checked, %zu error(s); trust unchanged\n",
                    r.id.c_str(), report.errors.size());
        if (first_error.ok()) first_error = report.errors.front();
        ++unchecked;
        outcomes.push_back(fmt::format("revision {} not checked ({} errors)",
                                       r.id, report.errors.size()));
        continue;
      }
      const bool bad = !report.damaged.empty();
      // Update the metadata briefly under the writer lock, re-reading it so
      // a concurrent expire's tag changes are not lost.
      auto locks = LockWriterBriefly(**repo);
      if (!locks.ok()) return record(locks.status());
      auto fresh = FindRevision(**repo, r.id);
      if (!fresh.ok() && RevisionRemoved(**repo, r)) {
        std::printf(
            "revision %s: removed meanwhile (forget or expire), "
            "skipped\n",
            r.id.c_str());
        outcomes.push_back("revision " + r.id + " removed meanwhile");
        continue;
      }
      if (!fresh.ok()) return record(fresh.status());
      std::printf("revision %s: %s\n", r.id.c_str(),
                  bad ? ("distrusted, " +
                         std::to_string(report.damaged.size()) + " bad chunks")
                            .c_str()
                      : "verified");
      if (!report.errors.empty()) {
        std::printf("  and %zu chunk(s) could not be read\n",
                    report.errors.size());
        if (first_error.ok()) first_error = report.errors.front();
        ++unchecked;
      }
      failed += bad;
      fresh->trust = bad ? store::Trust::kDistrusted : store::Trust::kVerified;
      Status s = (*repo)->UpdateMetadata(*fresh);
      if (s.IsNotFound() && RevisionRemoved(**repo, r)) continue;
      if (!s.ok()) return record(s);
      outcomes.push_back(fmt::format(
          "revision {} {}{}", r.id,
          bad ? fmt::format("distrusted ({} bad chunks)", report.damaged.size())
              : "verified",
          report.errors.empty()
              ? ""
              : fmt::format(", {} chunks unreadable", report.errors.size())));
    }
    log_outcomes();
    std::printf("%zu distinct chunks checked for %zu revision(s)\n",
                checked.size(), revisions_checked);
    if (failed) {
      return Status::Corruption(
          std::to_string(failed) +
          " revision(s) have damaged chunks and stay distrusted");
    }
    if (unchecked) {
      return first_error.WithContext(std::to_string(unchecked) +
                                     " revision(s) could not be fully checked");
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
