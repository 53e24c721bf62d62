#include "store/gc.h"

#include <filesystem>
#include <unordered_set>

namespace backy::store {

namespace {
uint64_t StoredSize(Repository& repo, const Digest& d) {
  std::error_code ec;
  auto size = std::filesystem::file_size(repo.chunks().ChunkName(d), ec);
  return ec ? 0 : size;
}
}  // namespace

Result<PurgePlan> PlanPurge(Repository& repo) {
  // Mark from every index file, not from the revisions that parse: a
  // revision whose metadata is damaged still has its chunks, and they stay
  // until it is repaired or forgotten.
  auto ids = repo.IndexIds();
  if (!ids.ok()) return ids.status();
  std::unordered_set<Digest, DigestHash> used;
  for (const auto& id : *ids) {
    auto index = repo.LoadIndex(id);
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
  Status s = repo.chunks().List([&](const Digest& d) {
    ++plan.chunks_total;
    if (used.count(d)) {
      ++plan.chunks_referenced;
    } else {
      plan.unused.push_back(d);
      plan.bytes_unused += StoredSize(repo, d);
    }
  });
  if (!s.ok()) return s;
  return plan;
}

Status ExecutePurge(Repository& repo, const PurgePlan& plan, uint64_t* freed) {
  *freed = 0;
  for (const Digest& d : plan.unused) {
    uint64_t size = StoredSize(repo, d);
    Status s = repo.chunks().Remove(d);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return s;
    *freed += size;
  }
  return repo.chunks().Sync();
}

}  // namespace backy::store
