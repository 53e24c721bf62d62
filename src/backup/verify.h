// Verification: checking stored chunks, either against their own hashes
// (the read-back after a file backup; `backy verify` over a revision) or
// against the source they were read from (the sample after a snapshot
// backup). A chunk found corrupt is moved to quarantine/, so the next
// backup writes a fresh copy instead of deduplicating against it.
// Thread-safe as far as the repository's ChunkStore is; each call runs its
// own worker threads and returns when they are done.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <unordered_map>
#include <vector>

#include "sources/source.h"
#include "store/digest.h"
#include "store/index.h"
#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup {

struct VerifyOptions {
  unsigned workers = 0;  // 0 = number of CPUs (min 2)
  // Set (e.g. from a signal handler) to stop early: the backup checks then
  // return Interrupted; CheckChunks returns what it found so far.
  const std::atomic<bool>* cancel = nullptr;
  // VerifySample only: the time budget, and the fraction of the data slots
  // not written by the backup that it checks at least.
  std::chrono::seconds budget{300};
  double sample = 0.01;
};

// After a backup of a file source: reads back every chunk in `written` and
// checks it against its hash. Sets v->method "readback", chunks_total,
// chunks_checked and complete. Every chunk is checked; a corrupt one is
// quarantined. Returns the first error ("verification failed: ..."), else
// Interrupted when cancelled, else OK.
Status VerifyReadback(store::Repository& repo,
                      const std::vector<Digest>& written,
                      const VerifyOptions& options, store::Verification* v);

// After a backup of a snapshot source (RBD): compares with the source the
// chunks of every slot of `index` holding a digest in `written`, and a
// random sample of the other data slots, within options.budget. Sets
// v->method "sample", chunks_total, chunks_checked and complete (false
// when the budget ran out). A chunk differing from the source is
// Corruption naming the slot; a corrupt chunk is quarantined. Returns as
// VerifyReadback.
Status VerifySample(store::Repository& repo, sources::Source& source,
                    const store::RevisionIndex& index,
                    const std::vector<Digest>& written,
                    const VerifyOptions& options, store::Verification* v);

// Sets v->fraction (checked of planned) and v->coverage (checked of the
// data slots of `index`); each is 1 when there is nothing to check.
void SetVerificationRatios(const store::RevisionIndex& index,
                           store::Verification* v);

// What checking one revision's chunks found. Only damage distrusts a
// revision; an error that says nothing about the data (a permission or
// I/O error) leaves its trust alone.
struct ChunkReport {
  std::vector<Status> damaged;  // Corruption, or a missing chunk
  std::vector<Status> errors;   // anything else
  size_t chunks = 0;  // distinct chunks of the revision with an outcome
  size_t read = 0;    // of them read by this call (the rest: CheckedChunks)
};

// The outcome of every chunk one run of `backy verify` has read, so that
// a chunk that many revisions share is read once per run, not once per
// revision: a later revision holding it takes the recorded outcome, so a
// bad chunk distrusts every revision that holds it. Keyed by store too: a
// 2.x repository's revisions read another store than the 3.x ones. Not
// thread-safe; pass it to one CheckChunks at a time.
class CheckedChunks {
 public:
  // The outcome recorded for `d` of `store`, or nullptr when not read yet.
  const Status* Find(const store::ChunkStore& store, const Digest& d) const;
  void Record(const store::ChunkStore& store, const Digest& d, Status s);
  // How many chunks were read in all (each one once).
  size_t size() const { return size_; }

 private:
  std::map<const store::ChunkStore*,
           std::unordered_map<Digest, Status, DigestHash>>
      outcomes_;
  size_t size_ = 0;
};

// A chunk is damaged when it is corrupt or missing: purge cannot run while
// verify holds the reader lock, so a chunk a listed revision needs is there
// unless something broke.
bool IsDamage(const Status& s);

// Reads and checks every distinct chunk of `index` in `chunks` (the store
// Repository::ChunksOf gives for its revision; `backy verify`); a corrupt
// chunk is quarantined ("moved to quarantine/" in its status) where the
// store can (not in a 2.x repository, which verify does not change).
// With `checked`, a chunk recorded there is not read again (its recorded
// outcome counts for this revision), and each chunk read is recorded.
// Cancelled (options.cancel): returns what it found so far; chunks never
// read are neither reported nor recorded.
ChunkReport CheckChunks(store::ChunkStore& chunks,
                        const store::RevisionIndex& index,
                        const VerifyOptions& options,
                        CheckedChunks* checked = nullptr);

}  // namespace backy::backup
