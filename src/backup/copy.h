// Copy: brings revisions of one repository into another (an offsite copy,
// a job moving to another host), sending only the chunks the target lacks.
// A copied revision keeps its id, timestamp, parent, tags, trust, size,
// statistics and verification. Works on the generic Repository API only,
// so either side may be any kind of repository.
//
// Crash-safe by order: the revisions go oldest first, one at a time; the
// chunks of one are read from the source (hash-checked), checked again on
// arrival, put into the target, synced, and only then is the revision
// published. A `kill -9` leaves complete revisions plus chunks no index
// names yet, which the next run finds there and does not send again (and
// purge removes if no run comes) — those the target's store had committed:
// a directory repository commits chunks in groups of ~64 MiB
// (store/file_chunk_store.h), so a kill loses at most that much work. A
// failed or cancelled revision's chunks are synced and kept. Each call
// runs its own worker threads; the target's writer lock keeps a second
// copy, backup or purge out.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/revision.h"
#include "store/status.h"

namespace backy::backup {

struct CopyOptions {
  unsigned workers = 0;  // chunk copiers; 0 = twice the CPUs (min 4)
  // Set (e.g. from a signal handler) to stop between chunks: the revision
  // being copied is not published.
  const std::atomic<bool>* cancel = nullptr;
};

// What a copy did. Every revision asked for is copied, skipped, failed or
// (once interrupted) left for the next run.
struct CopyStats {
  uint64_t revisions_copied = 0;
  uint64_t revisions_skipped = 0;  // the target had them, same content
  uint64_t chunks_sent = 0;
  uint64_t chunks_present = 0;  // not sent: the target had them
  uint64_t bytes_sent = 0;      // plain bytes of the chunks sent
  double seconds = 0;
  // Revisions not copied and why (a corrupt source chunk, a revision of
  // the same id and other content in the target), in the order tried.
  struct Failure {
    std::string revision_id;
    Status status;
  };
  std::vector<Failure> failed;
  bool interrupted = false;  // cancelled; the rest was not tried
};

// "2 revisions copied, 1 skipped, 1 failed; 5 chunks sent (20.0 MiB),
// 3 already there; 1.4 s" (", interrupted" at the end when it was).
std::string CopySummary(const CopyStats& stats);

// Copies `revisions` (of `from`, in any order; repeated ids count once)
// into `to`, oldest first, holding `to`'s writer lock for the run and a
// pin on each source revision while it is read. A revision whose id `to`
// has already is skipped when its size and index are the same, and
// refused (a failure, nothing overwritten) when not. A chunk that cannot
// be read from `from`, or whose data does not match its digest, fails
// its revision (not published; the status names the chunk), and the copy
// goes on with the next one. The returned status is an error only when
// nothing could be tried: a 2.x repository on either side
// (RequireCurrentFormat, "run backy upgrade"), the target's lock held
// (Busy), its revisions unreadable.
// Test point "copy-chunk" (store/test_point.h): after each chunk is put
// into the target; "copy-published" after each revision is published.
Result<CopyStats> CopyRevisions(store::Repository& from, store::Repository& to,
                                const std::vector<store::Revision>& revisions,
                                const CopyOptions& options);

}  // namespace backy::backup
