// Expire: which tags and revisions `backy expire` removes, and removing
// them. Planning is a pure function of the revisions and the schedule
// (Proxmox's prune.rs idea); executing applies that plan to a repository.
// They are separate so --dry-run prints the same plan it would execute.
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
// Chunks stay: purge (store/purge.h) deletes those no revision names.
// PlanExpire is pure and thread-safe; ExecuteExpire needs the writer lock.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/revision.h"
#include "store/schedule.h"
#include "store/status.h"

namespace backy::backup {

struct ExpireChange {
  std::string id;
  std::set<std::string> removed_tags;
  bool remove_revision = false;
};

// `revisions` sorted oldest first. Returns one change per revision that
// loses a tag or is removed, oldest first.
std::vector<ExpireChange> PlanExpire(
    const std::vector<store::Revision>& revisions,
    const store::Schedule& schedule);

// Applies `plan` (PlanExpire over `revisions`) to `repo`, oldest change
// first: forgets each revision to remove and rewrites the metadata of the
// others without their removed tags. `before_each`, when set, runs before
// each change is applied (the CLI prints it). Stops at the first error;
// the changes before it stay applied. NotFound when a change names a
// revision not in `revisions`. REQUIRES: the caller holds the writer lock.
Status ExecuteExpire(
    store::Repository& repo, const std::vector<store::Revision>& revisions,
    const std::vector<ExpireChange>& plan,
    const std::function<void(const ExpireChange&)>& before_each = {});

}  // namespace backy::backup
