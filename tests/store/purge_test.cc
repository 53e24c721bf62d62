// PlanPurge/ExecutePurge over the in-memory store: marking, the plan's
// counts, and that only unreferenced chunks go (no repository on disk).
#include "store/purge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "store/mem_chunk_store.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

class PurgeTest : public ::testing::Test {
 protected:
  // Puts a chunk of `n` bytes of `fill` and returns its digest.
  Digest Put(uint8_t fill, size_t n = 1000) {
    std::vector<uint8_t> data(n, fill);
    const Digest d = Digest::Of(data);
    EXPECT_OK(chunks_.Put(d, data).status());
    return d;
  }
  // An index of one slot per digest (a zero digest is a zero slot).
  void AddIndex(const std::string& id, const std::vector<Digest>& slots) {
    RevisionIndex index(slots.size() * uint64_t{kDefaultChunkSize},
                        kDefaultChunkSize);
    for (size_t i = 0; i < slots.size(); ++i) index.set_slot(i, slots[i]);
    indexes_[id] = index;
  }
  Result<PurgePlan> Plan() {
    std::vector<std::string> ids;
    for (const auto& [id, index] : indexes_) ids.push_back(id);
    return PlanPurge(chunks_, ids,
                     [&](const std::string& id) -> Result<RevisionIndex> {
                       if (broken_ == id) {
                         return Status::Corruption("bad checksum", id);
                       }
                       return indexes_.at(id);
                     });
  }
  static std::vector<Digest> Sorted(std::vector<Digest> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  MemChunkStore chunks_;
  std::map<std::string, RevisionIndex> indexes_;
  std::string broken_;  // the id whose index fails to load
};

TEST_F(PurgeTest, PlansOnlyUnreferencedChunks) {
  const Digest a = Put(1), b = Put(2), c = Put(3), d = Put(4);
  AddIndex("r1", {a, Digest(), b});
  AddIndex("r2", {b, c});  // b is shared
  auto plan = Plan();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->chunks_total, 4u);
  EXPECT_EQ(plan->chunks_referenced, 3u);
  EXPECT_EQ(plan->unused, std::vector<Digest>{d});

  uint64_t freed = 0;
  ASSERT_OK(ExecutePurge(chunks_, *plan, &freed));
  for (const Digest& kept : {a, b, c}) {
    auto has = chunks_.Contains(kept);
    ASSERT_OK(has.status());
    EXPECT_TRUE(*has) << kept.Hex();
  }
  auto has = chunks_.Contains(d);
  ASSERT_OK(has.status());
  EXPECT_FALSE(*has);
  // Purging again finds nothing more.
  plan = Plan();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->chunks_total, 3u);
  EXPECT_TRUE(plan->unused.empty());
}

TEST_F(PurgeTest, WithoutIndexesEveryChunkIsUnused) {
  const Digest a = Put(1), b = Put(2);
  auto plan = Plan();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->chunks_referenced, 0u);
  EXPECT_EQ(Sorted(plan->unused), Sorted({a, b}));
}

TEST_F(PurgeTest, UnreadableIndexStopsThePlan) {
  const Digest a = Put(1);
  Put(2);
  AddIndex("good", {a});
  AddIndex("bad", {});
  broken_ = "bad";
  auto plan = Plan();
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(plan.status().IsCorruption()) << plan.status().ToString();
  EXPECT_NE(plan.status().ToString().find("index of revision bad"),
            std::string::npos)
      << plan.status().ToString();
}

TEST_F(PurgeTest, ChunkRemovedMeanwhileIsSkipped) {
  const Digest a = Put(1), b = Put(2);
  auto plan = Plan();
  ASSERT_OK(plan.status());
  ASSERT_EQ(plan->unused.size(), 2u);
  ASSERT_OK(chunks_.Remove(a));
  uint64_t freed = 0;
  ASSERT_OK(ExecutePurge(chunks_, *plan, &freed));
  auto has = chunks_.Contains(b);
  ASSERT_OK(has.status());
  EXPECT_FALSE(*has);
}

}  // namespace
}  // namespace backy::store
