// Purge: deletes the chunks no revision's index names — plan (mark every
// chunk an index names, list the rest), then execute (delete them); GC kept
// apart from retention (backup/expire.h), as Proxmox keeps GC apart from
// prune. Safety comes from locking (see man/backy-store.5): the caller
// holds purge.lock exclusively (Repository::LockPurge), so no backup,
// forget, expire, verify or distrust runs meanwhile — each holds it shared
// — no revision appears and no reader pins one. Readers that pinned
// revisions before (restore, verify, nbd-server: store/revision_pin.h) go
// on: the chunks of every live pin are marked too, also those of a
// revision forgotten since. No writer lock is taken. Not thread-safe
// against other users of the same store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/chunk_store.h"
#include "store/digest.h"
#include "store/index.h"
#include "store/repository.h"

namespace backy::store {

struct PurgePlan {
  std::vector<Digest> unused;  // chunks no revision references
  uint64_t chunks_total = 0;
  uint64_t chunks_referenced = 0;
  uint64_t bytes_unused = 0;  // stored size of the unused chunks
  // Pins (store/revision_pin.h): live ones honoured, the revisions they
  // pin, and how many of those were forgotten (kept for their readers).
  uint64_t pins_live = 0;
  uint64_t pinned_revisions = 0;
  uint64_t pinned_forgotten = 0;
  // Tokens of pins whose reader is gone: ExecutePurge removes them.
  std::vector<std::string> stale_pins;
};

// Reads every index file in revisions/ — of healthy revisions, of those
// whose metadata is damaged, and leftovers — and the index of every live
// pin in pins/ (ScanPins), and lists the store. A damaged index, or a live
// pin without a usable index, stops the plan: deleting chunks without
// knowing what it references would lose data. Changes nothing (a pin let
// go meanwhile is listed stale, not removed).
Result<PurgePlan> PlanPurge(Repository& repo);

// The same over any chunk store: marks every chunk named by the index of
// each of `index_ids` (read with `load_index`; its error stops the plan,
// naming the id) and lists `chunks` for the rest. Stored sizes come from
// the chunk files (ChunkName); a store without files counts 0 bytes.
Result<PurgePlan> PlanPurge(
    ChunkStore& chunks, const std::vector<std::string>& index_ids,
    const std::function<Result<RevisionIndex>(const std::string&)>& load_index);

// Removes the plan's stale pins (the Repository form), then deletes the
// planned chunks (those gone already are skipped) and syncs the store.
// `*freed` counts the bytes actually removed.
Status ExecutePurge(Repository& repo, const PurgePlan& plan, uint64_t* freed);
Status ExecutePurge(ChunkStore& chunks, const PurgePlan& plan, uint64_t* freed);

}  // namespace backy::store
