// Purge: deletes the chunks no revision's index names — plan (mark every
// chunk an index names, list the rest), then execute (delete them); GC kept
// apart from retention (backup/expire.h), as Proxmox keeps GC apart from
// prune. Safety comes from locking (see man/backy-store.5): the caller
// holds purge.lock exclusively (Repository::LockPurge), so no backup,
// forget, expire, verify, distrust, restore or NBD server runs meanwhile —
// each holds it shared — and no revision appears. No writer lock is taken.
// Not thread-safe against other users of the same store.
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
};

// Reads every index file in revisions/ — of healthy revisions, of those
// whose metadata is damaged, and leftovers — and lists the store. A
// damaged index stops the plan: deleting chunks without knowing what it
// references would lose data.
Result<PurgePlan> PlanPurge(Repository& repo);

// The same over any chunk store: marks every chunk named by the index of
// each of `index_ids` (read with `load_index`; its error stops the plan,
// naming the id) and lists `chunks` for the rest. Stored sizes come from
// the chunk files (ChunkName); a store without files counts 0 bytes.
Result<PurgePlan> PlanPurge(
    ChunkStore& chunks, const std::vector<std::string>& index_ids,
    const std::function<Result<RevisionIndex>(const std::string&)>& load_index);

// Deletes the planned chunks (those gone already are skipped) and syncs
// the store. `*freed` counts the bytes actually removed.
Status ExecutePurge(Repository& repo, const PurgePlan& plan, uint64_t* freed);
Status ExecutePurge(ChunkStore& chunks, const PurgePlan& plan, uint64_t* freed);

}  // namespace backy::store
