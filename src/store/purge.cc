#include "store/purge.h"

#include <filesystem>
#include <unordered_set>

namespace backy::store {

namespace {
uint64_t StoredSize(ChunkStore& chunks, const Digest& d) {
  std::error_code ec;
  auto size = std::filesystem::file_size(chunks.ChunkName(d), ec);
  return ec ? 0 : size;
}
}  // namespace

Result<PurgePlan> PlanPurge(
    ChunkStore& chunks, const std::vector<std::string>& index_ids,
    const std::function<Result<RevisionIndex>(const std::string&)>&
        load_index) {
  std::unordered_set<Digest, DigestHash> used;
  for (const auto& id : index_ids) {
    auto index = load_index(id);
    if (!index.ok()) {
      return index.status().WithContext(
          "cannot purge: the index of revision " + id +
          " is unreadable, and deleting chunks it may name would lose data "
          "(repair it, or forget the revision)");
    }
    for (size_t i = 0; i < index->slot_count(); ++i) {
      if (!index->IsZero(i)) used.insert(index->slot(i));
    }
  }
  PurgePlan plan;
  Status s = chunks.List([&](const Digest& d) {
    ++plan.chunks_total;
    if (used.count(d)) {
      ++plan.chunks_referenced;
    } else {
      plan.unused.push_back(d);
      plan.bytes_unused += StoredSize(chunks, d);
    }
  });
  if (!s.ok()) return s;
  return plan;
}

Result<PurgePlan> PlanPurge(Repository& repo) {
  // Mark from every index file, not from the revisions that parse: a
  // revision whose metadata is damaged still has its chunks, and they stay
  // until it is repaired or forgotten.
  auto ids = repo.IndexIds();
  if (!ids.ok()) return ids.status();
  return PlanPurge(repo.chunks(), *ids,
                   [&](const std::string& id) { return repo.LoadIndex(id); });
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
  return ExecutePurge(repo.chunks(), plan, freed);
}

}  // namespace backy::store
