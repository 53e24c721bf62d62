// RunBackup: one backup of a Source into a Repository, producing one
// revision.
//
// Steps: take the writer lock; clean up after crashed writers; freeze the
// source (Begin); choose the base (the parent, when the source can diff
// from it); plan which 4 MiB slots to read (holes and, with a base,
// unchanged slots are not read); read, hash, deduplicate and store chunks
// in parallel with bounded memory; sync the chunks; verify (verify.h);
// publish the index and then the metadata; let the source drop old state
// (Commit). Any failure before publishing leaves no revision behind and
// calls Source::Abort(); so does a sampled verification that finds
// damage, except that it publishes the revision as distrusted first. Test
// points (store/test_point.h): chunks, synced, index, published. Not
// thread-safe; one RunBackup per repository at a time (the writer lock).
#pragma once

#include <atomic>
#include <chrono>
#include <set>
#include <string>

#include "sources/source.h"
#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup {

struct BackupOptions {
  std::set<std::string> tags;
  // Worker threads reading and compressing; 0 = number of CPUs (min 2).
  unsigned workers = 0;
  // Time budget for sampled verification (RBD sources).
  std::chrono::seconds verify_budget{300};
  // Fraction of data slots a sampled verification checks at least.
  double verify_sample = 0.01;
  // Ignore the parent and read everything (config: full-always).
  bool full = false;
  // Set from a signal handler to stop the backup; it then fails with
  // Interrupted and publishes nothing.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs a backup; on success returns the published revision.
Result<store::Revision> RunBackup(store::Repository& repo,
                                  sources::Source& source,
                                  const BackupOptions& options);

}  // namespace backy::backup
