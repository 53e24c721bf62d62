// Retention: which tags and revisions `backy expire` removes, as a pure
// function of the revisions and the schedule (Proxmox's prune.rs idea) —
// planned first, executed separately, so --dry-run prints the same plan.
//
// Rules:
//   - A revision keeps a scheduled tag while it is among the newest `keep`
//     revisions carrying that tag.
//   - Tags not in the schedule are removed, except tags starting with
//     "manual:", which never expire.
//   - A revision left with no tags is removed.
//   - The newest `min_keep` revisions are never changed (a broken or empty
//     schedule cannot wipe a repository).
//   - Without any schedule, nothing expires.
// Thread-safe (pure).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup {

struct ExpireChange {
  std::string id;
  std::set<std::string> removed_tags;
  bool remove_revision = false;
};

// `revisions` sorted oldest first. Returns one change per revision that
// loses a tag or is removed, oldest first.
std::vector<ExpireChange> PlanExpire(const std::vector<store::Revision>& revisions,
                                     const store::Schedule& schedule);

}  // namespace backy::backup
