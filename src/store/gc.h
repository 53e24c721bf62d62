// Garbage collection of chunks: mark every chunk some revision's index
// names, then sweep the rest (Proxmox's mark + sweep, restic's plan then
// execute). Safety comes from locking (see man/backy-store.5): the caller
// holds purge.lock exclusively (no backup, restore or NBD server is
// running) and the writer lock (no revision appears meanwhile).
#pragma once

#include <cstdint>
#include <vector>

#include "store/digest.h"
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

// Deletes the planned chunks. `*freed` counts the bytes actually removed.
Status ExecutePurge(Repository& repo, const PurgePlan& plan, uint64_t* freed);

}  // namespace backy::store
