// Upgrade: converts a backy 2.x repository (store/legacy_repository.h) in
// place into the current format (man/backy-store.5): each complete 2.x
// revision is re-chunked into the repository's ChunkStore and published in
// revisions/ with its id, time, parent, tags and trust; then the current
// config is written; then every 2.x file is removed. Crash-safe at every
// step (see Upgrade()). PlanUpgrade() decides, RunUpgrade() acts. Each call
// runs its own worker threads; not for concurrent use on one directory (the
// locks make a second caller fail or wait).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/directory_repository.h"
#include "store/revision.h"
#include "store/status.h"

namespace backy::backup {

// What an upgrade of one directory would do, from what is on disk now.
struct UpgradePlan {
  // The config still is 2.x's (no `format`): revisions must be converted.
  bool legacy_config = false;
  // 2.x revisions to convert, oldest first (Revision::legacy).
  std::vector<store::Revision> to_convert;
  // 2.x revisions converted by an earlier, interrupted upgrade.
  std::vector<std::string> converted;
  // 2.x revisions that never completed (no stats.duration): removed.
  std::vector<std::string> incomplete;
  // 2.x revisions that cannot be read: the upgrade refuses while any is
  // left (its data would be lost), naming each.
  std::vector<store::DamagedRevision> damaged;
  // Every 2.x file and directory to remove at the end, as paths, in the
  // order of removal: revision files, chunk files, emptied prefix
  // directories, chunks/store, last, last.rev, .purge, .backup.
  std::vector<std::string> legacy_files;
  // Of to_convert: image bytes, and the distinct 2.x chunks they name that
  // no converted revision names (count, sum of file sizes, sum of plain
  // sizes). Only PlanUpgrade with `measure` fills the chunk figures.
  uint64_t image_bytes = 0;
  uint64_t legacy_chunks = 0;
  uint64_t legacy_chunk_file_bytes = 0;
  uint64_t legacy_chunk_plain_bytes = 0;
  // The indexes and metadata the conversion writes (an upper bound).
  uint64_t metadata_bytes = 0;

  // The new chunks exist before the old ones are removed: the space the
  // upgrade needs at its peak, estimated as the 2.x chunk files' size (zstd
  // packs image data at least as tightly as LZO1X-1) plus the metadata.
  // REQUIRES: measured.
  uint64_t PeakExtraBytes() const {
    return legacy_chunk_file_bytes + metadata_bytes;
  }
  // The most it can need: the chunks' plain size plus the metadata.
  uint64_t MaxExtraBytes() const {
    return legacy_chunk_plain_bytes + metadata_bytes;
  }

  // Nothing to do: a current repository without 2.x files (without
  // .backup, which an upgrade removes last).
  bool NothingToDo() const { return !legacy_config && legacy_files.empty(); }
};

// Reads what an upgrade of `repo` would do. Reads only; takes no lock (the
// caller's). With `measure`, reads each named 2.x chunk file's header for
// the space figures (one small read per distinct chunk).
Result<UpgradePlan> PlanUpgrade(store::DirectoryRepository& repo, bool measure);

struct UpgradeOptions {
  unsigned workers = 0;  // 0 = number of CPUs (min 2)
  // Wait for a 2.x process (or a reader) holding .backup/.purge, or for our
  // writer lock, instead of failing with Busy. Polls; `cancel` stops it.
  bool wait = false;
  // Refuse (NoSpace, nothing changed) when the file system has less free
  // space than UpgradePlan::PeakExtraBytes(). Costs a read of each 2.x
  // chunk file's header before the conversion starts.
  bool check_space = true;
  // Set (e.g. from a signal handler) to stop between chunks: Interrupted,
  // nothing removed; a later upgrade resumes.
  const std::atomic<bool>* cancel = nullptr;
  // Called once when `wait` has to wait, with the lock file waited for.
  std::function<void(const std::string& lock)> on_wait;
};

struct UpgradeSummary {
  bool was_current = false;  // nothing was to do
  // The config was current already (an earlier upgrade stopped in its
  // clean-up): only 2.x files were removed.
  bool clean_up_only = false;
  size_t revisions_converted = 0;
  size_t revisions_resumed = 0;     // converted by an earlier run
  uint64_t image_bytes = 0;         // of the converted revisions
  uint64_t legacy_chunks_read = 0;  // 2.x chunk files decoded and checked
  uint64_t slots_deduplicated = 0;  // slots whose 2.x chunk was done before
  uint64_t zero_slots = 0;
  uint64_t chunks_written = 0;  // new chunks in the current format
  uint64_t chunks_reused = 0;   // slots whose new chunk existed already
  uint64_t bytes_written = 0;   // bytes of new chunk files
  uint64_t files_removed = 0;   // 2.x files and directories removed
  double seconds = 0;
};

// Upgrades the repository in `dir`:
//  1. takes 2.x's .backup and .purge exclusively (no 2.x backup, purge or
//     restore, and none of our readers of the 2.x form, runs meanwhile) and
//     our writer lock; Busy naming the lock file and its likely holder;
//  2. with check_space, refuses (NoSpace) when the file system has less
//     free space than the conversion needs at its peak; then converts
//     each 2.x revision not converted yet, oldest first: every
//     slot's 2.x chunk read and checked (an all-zero one becomes a zero
//     slot), stored under its XXH3-128 digest, Sync(), then Publish() —
//     test point "upgrade-published" after each;
//  3. writes the current config (2.x's source — `flyingcircus` becomes
//     `ceph-rbd` —, schedule) atomically — test point "upgrade-config";
//  4. removes the 2.x files (UpgradePlan::legacy_files) — test point
//     "upgrade-removing" halfway.
// A crash anywhere leaves every revision readable (in one form or the
// other) and a later Upgrade() finishes. On a current repository with 2.x
// files left over, does only 4; on one without, nothing (was_current).
// A damaged 2.x chunk or revision stops the upgrade before anything is
// removed, with Corruption naming it and the revision.
Result<UpgradeSummary> Upgrade(const std::string& dir,
                               const UpgradeOptions& options);

// Converts the 2.x repository in `dir` into another repository (created
// when missing with the converted config), e.g. one in a RADOS pool, and
// leaves `dir` as it is: every complete 2.x revision the target does not
// hold yet, oldest first, as Upgrade() converts them (same ids, times,
// tags, trust; each published once its chunks are stored). Holds 2.x's
// .purge shared (as 2.x's readers do) and the target's writer lock. A
// rerun after a crash converts what is missing.
Result<UpgradeSummary> UpgradeInto(
    const std::string& dir, const std::string& target_location,
    const store::RepositoryOptions& target_options,
    const UpgradeOptions& options);

// The current config for a 2.x one: same schedule and compression; the
// source's keys that backy reads (type, filename / pool, namespace, image,
// full-always); a `flyingcircus` source becomes `ceph-rbd`.
store::RepositoryConfig CurrentConfigFor(const store::RepositoryConfig& old);

}  // namespace backy::backup
