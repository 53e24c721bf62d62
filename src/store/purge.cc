#include "store/purge.h"

#include <set>
#include <unordered_set>

#include "store/filename.h"
#include "store/revision_pin.h"

namespace backy::store {

namespace {
// A chunk whose size cannot be found still goes: the figure is a report.
uint64_t StoredSize(ChunkStore& chunks, const Digest& d) {
  auto size = chunks.StoredSize(d);
  return size.ok() ? *size : 0;
}

Status Mark(const std::string& what, const Result<RevisionIndex>& index,
            std::unordered_set<Digest, DigestHash>* used) {
  if (!index.ok()) {
    return index.status().WithContext(
        "cannot purge: the index of " + what +
        " is unreadable, and deleting chunks it may name would lose data "
        "(repair it, or forget the revision)");
  }
  for (size_t i = 0; i < index->slot_count(); ++i) {
    if (!index->IsZero(i)) used->insert(index->slot(i));
  }
  return Status::OK();
}

Status Sweep(ChunkStore& chunks,
             const std::unordered_set<Digest, DigestHash>& used,
             PurgePlan* plan) {
  return chunks.List([&](const Digest& d) {
    ++plan->chunks_total;
    if (used.count(d)) {
      ++plan->chunks_referenced;
    } else {
      plan->unused.push_back(d);
      plan->bytes_unused += StoredSize(chunks, d);
    }
  });
}

}  // namespace

Result<PurgePlan> PlanPurge(
    ChunkStore& chunks, const std::vector<std::string>& index_ids,
    const std::function<Result<RevisionIndex>(const std::string&)>&
        load_index) {
  std::unordered_set<Digest, DigestHash> used;
  for (const auto& id : index_ids) {
    Status s = Mark("revision " + id, load_index(id), &used);
    if (!s.ok()) return s;
  }
  PurgePlan plan;
  Status s = Sweep(chunks, used, &plan);
  if (!s.ok()) return s;
  return plan;
}

Result<PurgePlan> PlanPurge(Repository& repo) {
  // Mark from every index file, not from the revisions that parse: a
  // revision whose metadata is damaged still has its chunks, and they stay
  // until it is repaired or forgotten.
  auto ids = repo.IndexIds();
  if (!ids.ok()) return ids.status();
  std::unordered_set<Digest, DigestHash> used;
  for (const auto& id : *ids) {
    Status s = Mark("revision " + id, repo.LoadIndex(id), &used);
    if (!s.ok()) return s;
  }
  PurgePlan plan;
  const std::set<std::string> published(ids->begin(), ids->end());
  std::set<std::string> pinned, forgotten;
  auto stale = repo.ForEachLivePin([&](const Repository::PinnedIndex& pin,
                                       const Result<RevisionIndex>& index) {
    const std::string id = pin.revision_id.empty() ? pin.name : pin.revision_id;
    Status s =
        Mark("pinned revision " + id + " (" + pin.name + ")", index, &used);
    if (!s.ok()) return s;
    ++plan.pins_live;
    pinned.insert(id);
    if (!published.count(id)) forgotten.insert(id);
    return Status::OK();
  });
  if (!stale.ok()) return stale.status();
  plan.pinned_revisions = pinned.size();
  plan.pinned_forgotten = forgotten.size();
  plan.stale_pins = std::move(*stale);
  Status s = Sweep(repo.chunks(), used, &plan);
  if (!s.ok()) return s;
  return plan;
}

Status ExecutePurge(ChunkStore& chunks, const PurgePlan& plan,
                    uint64_t* freed) {
  *freed = 0;
  for (const Digest& d : plan.unused) {
    uint64_t size = StoredSize(chunks, d);
    Status s = chunks.Remove(d);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return s;
    *freed += size;
  }
  return chunks.Sync();
}

Status ExecutePurge(Repository& repo, const PurgePlan& plan, uint64_t* freed) {
  *freed = 0;
  Status s = repo.RemoveStalePins(plan.stale_pins);
  if (!s.ok()) return s;
  return ExecutePurge(repo.chunks(), plan, freed);
}

}  // namespace backy::store
