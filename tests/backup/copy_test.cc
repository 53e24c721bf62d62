// CopyRevisions between two real (temporary) directory repositories: what
// is sent and what is not, what a copied revision keeps, and what is
// refused — a conflicting revision, a corrupt source chunk, a 2.x source —
// and that a cancelled copy leaves no half revision behind.
#include "backup/copy.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "store/test_point.h"
#include "support/legacy_repo_writer.h"
#include "support/temp_repository.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

using store::Repository;
using store::Revision;
using store::RevisionIndex;
using store::TempRepository;

// Small chunks keep the test fast; the index takes any chunk size.
constexpr uint32_t kChunk = 64 * 1024;

class CopyTest : public ::testing::Test {
 protected:
  CopyTest() : from_(src_.Take()), to_(dst_.Take()) {
    // a: slots 1 2 0 3; b: 1 2 4 3 (one slot changed); c: 5 and a short
    // last slot 6.
    a_ = Make({1, 2, 0, 3}, 4 * kChunk, 100, {"daily"});
    b_ = Make({1, 2, 4, 3}, 4 * kChunk, 200, {"daily", "weekly"});
    b_.trust = store::Trust::kDistrusted;
    c_ = Make({5, 6}, kChunk + 1000, 300, {"manual:test"});
    c_.trust = store::Trust::kVerified;
    for (const Revision* r : {&a_, &b_, &c_}) {
      EXPECT_OK(from_->Publish(*r, indexes_[r->id]));
    }
  }

  // The plain data of the chunk seeded `seed`, `length` bytes.
  static std::vector<uint8_t> ChunkData(int seed, uint32_t length) {
    std::vector<uint8_t> data(length);
    std::mt19937_64 rng(seed);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    return data;
  }

  // A revision of `size` bytes whose slot i holds chunk `seeds[i]` (0: a
  // zero slot), its chunks put into the source.
  Revision Make(const std::vector<int>& seeds, uint64_t size, int64_t ts,
                std::set<std::string> tags) {
    RevisionIndex index(size, kChunk);
    EXPECT_EQ(index.slot_count(), seeds.size());
    for (size_t i = 0; i < seeds.size(); ++i) {
      if (!seeds[i]) continue;
      std::vector<uint8_t> data = ChunkData(seeds[i], index.SlotLength(i));
      const Digest d = Digest::Of(data);
      EXPECT_OK(from_->chunks().Put(d, data).status());
      index.set_slot(i, d);
      digests_[seeds[i]] = d;
    }
    EXPECT_OK(from_->chunks().Sync());
    Revision r;
    r.id = store::NewRevisionId();
    r.timestamp_us = ts * 1000000;
    r.tags = std::move(tags);
    r.size = size;
    r.chunk_size = kChunk;
    r.source = "file:/images/vm.raw";
    r.stats.bytes_read = size;
    r.stats.chunks_new = seeds.size();
    r.stats.duration = 1.5;
    r.verification.method = "readback";
    r.verification.chunks_checked = 3;
    indexes_[r.id] = index;
    return r;
  }

  std::vector<Revision> All() const { return {c_, a_, b_}; }  // any order

  Result<CopyStats> Copy(const std::vector<Revision>& revs,
                         CopyOptions options = {}) {
    return CopyRevisions(*from_, *to_, revs, options);
  }

  // Flips a byte in the middle of the source's chunk file of `seed`.
  void Damage(int seed) {
    const std::string name = from_->chunks().ChunkName(digests_.at(seed));
    std::FILE* f = std::fopen(name.c_str(), "r+b");
    ASSERT_NE(f, nullptr) << name;
    std::fseek(f, -100, SEEK_END);
    const int c = std::fgetc(f);
    std::fseek(f, -100, SEEK_END);
    std::fputc(c ^ 0x55, f);
    std::fclose(f);
  }

  std::vector<std::string> TargetIds() {
    auto revs = to_->Revisions();
    EXPECT_OK(revs.status());
    std::vector<std::string> ids;
    if (revs.ok()) {
      for (const auto& r : *revs) ids.push_back(r.id);
    }
    return ids;
  }

  TempRepository src_, dst_;
  std::unique_ptr<Repository> from_, to_;
  Revision a_, b_, c_;
  std::map<std::string, RevisionIndex> indexes_;
  std::map<int, Digest> digests_;
};

TEST_F(CopyTest, CopiesEveryRevisionWithItsMetadataSendingEachChunkOnce) {
  auto stats = Copy(All());
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->revisions_copied, 3u);
  EXPECT_EQ(stats->revisions_skipped, 0u);
  EXPECT_TRUE(stats->failed.empty());
  EXPECT_FALSE(stats->interrupted);
  // Chunks 1..6 once each; b's 1, 2 and 3 were there after a.
  EXPECT_EQ(stats->chunks_sent, 6u);
  EXPECT_EQ(stats->chunks_present, 3u);
  EXPECT_EQ(stats->bytes_sent, 5u * kChunk + 1000);

  auto revs = to_->Revisions();
  ASSERT_OK(revs.status());
  ASSERT_EQ(revs->size(), 3u);
  const Revision* want[] = {&a_, &b_, &c_};  // oldest first
  for (size_t i = 0; i < 3; ++i) {
    const Revision& got = (*revs)[i];
    const Revision& w = *want[i];
    EXPECT_EQ(got.ToYaml(), w.ToYaml());  // id, time, tags, trust, stats...
    auto index = to_->LoadIndex(got);
    ASSERT_OK(index.status());
    EXPECT_EQ(index->Encode(), indexes_[w.id].Encode());
    for (size_t s = 0; s < index->slot_count(); ++s) {
      if (index->IsZero(s)) continue;
      std::vector<uint8_t> data;
      ASSERT_OK(to_->chunks().Get(index->slot(s), &data));
      EXPECT_EQ(Digest::Of(data), index->slot(s));
    }
  }
  EXPECT_EQ(CopySummary(*stats).rfind(
                "3 revisions copied, 0 skipped; 6 chunks sent (", 0),
            0u)
      << CopySummary(*stats);
}

TEST_F(CopyTest, SecondCopySendsNothing) {
  ASSERT_OK(Copy(All()).status());
  auto again = Copy(All());
  ASSERT_OK(again.status());
  EXPECT_EQ(again->revisions_copied, 0u);
  EXPECT_EQ(again->revisions_skipped, 3u);
  EXPECT_EQ(again->chunks_sent, 0u);
  EXPECT_EQ(again->chunks_present, 0u);  // skipped: not even looked at
  EXPECT_EQ(again->bytes_sent, 0u);
  EXPECT_TRUE(again->failed.empty());
}

TEST_F(CopyTest, RevisionAlreadyInTargetIsSkippedAndTheRestSendOnlyNewChunks) {
  auto first = Copy({a_});
  ASSERT_OK(first.status());
  EXPECT_EQ(first->chunks_sent, 3u);
  auto rest = Copy(All());
  ASSERT_OK(rest.status());
  EXPECT_EQ(rest->revisions_skipped, 1u);
  EXPECT_EQ(rest->revisions_copied, 2u);
  EXPECT_EQ(rest->chunks_sent, 3u);  // 4, 5, 6
  EXPECT_EQ(rest->chunks_present, 3u);
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{a_.id, b_.id, c_.id}));
}

TEST_F(CopyTest, ChunkTheTargetHasIsNotReadFromTheSource) {
  ASSERT_OK(Copy({a_}).status());
  Damage(1);  // a's and b's; the target has a good copy
  auto stats = Copy({b_});
  ASSERT_OK(stats.status());
  EXPECT_TRUE(stats->failed.empty()) << stats->failed.front().status.ToString();
  EXPECT_EQ(stats->revisions_copied, 1u);
  EXPECT_EQ(stats->chunks_sent, 1u);
  EXPECT_EQ(stats->chunks_present, 3u);
}

TEST_F(CopyTest, ConflictingRevisionIsRefusedAndNotOverwritten) {
  // The target holds b's id with other content (c's index).
  Revision other = b_;
  other.size = c_.size;
  ASSERT_OK(to_->Publish(other, indexes_[c_.id]));
  auto stats = Copy(All());
  ASSERT_OK(stats.status());
  ASSERT_EQ(stats->failed.size(), 1u);
  EXPECT_EQ(stats->failed[0].revision_id, b_.id);
  EXPECT_NE(stats->failed[0].status.Message().find("another revision"),
            std::string::npos)
      << stats->failed[0].status.ToString();
  EXPECT_EQ(stats->revisions_copied, 2u);
  auto index = to_->LoadIndex(b_.id);
  ASSERT_OK(index.status());
  EXPECT_EQ(index->Encode(), indexes_[c_.id].Encode());
}

TEST_F(CopyTest, SameIdAndSizeWithOtherChunksIsAConflictToo) {
  Revision other = b_;
  ASSERT_OK(to_->Publish(other, indexes_[a_.id]));  // same size as b
  auto stats = Copy({b_});
  ASSERT_OK(stats.status());
  ASSERT_EQ(stats->failed.size(), 1u);
  EXPECT_EQ(stats->revisions_skipped, 0u);
}

TEST_F(CopyTest, CorruptSourceChunkFailsOnlyItsRevision) {
  Damage(4);  // only b holds it
  auto stats = Copy(All());
  ASSERT_OK(stats.status());
  ASSERT_EQ(stats->failed.size(), 1u);
  EXPECT_EQ(stats->failed[0].revision_id, b_.id);
  const Status& s = stats->failed[0].status;
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.Message().find(digests_[4].Hex()), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.Message().find(b_.id), std::string::npos) << s.ToString();
  EXPECT_EQ(stats->revisions_copied, 2u);
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{a_.id, c_.id}));
  auto has = to_->chunks().Contains(digests_[4]);
  ASSERT_OK(has.status());
  EXPECT_FALSE(*has);
}

TEST_F(CopyTest, CancelledCopyPublishesNoHalfRevisionAndARerunCompletes) {
  std::atomic<bool> cancel{false};
  CopyOptions options;
  options.cancel = &cancel;
  options.workers = 1;
  {
    // Cancel once a's first chunk is in the target.
    ScopedTestPoint point("copy-chunk", [&] { cancel = true; });
    auto stats = Copy(All(), options);
    ASSERT_OK(stats.status());
    EXPECT_TRUE(stats->interrupted);
    EXPECT_EQ(stats->revisions_copied, 0u);
    EXPECT_EQ(stats->chunks_sent, 1u);
  }
  EXPECT_TRUE(TargetIds().empty());
  auto rerun = Copy(All());
  ASSERT_OK(rerun.status());
  EXPECT_FALSE(rerun->interrupted);
  EXPECT_EQ(rerun->revisions_copied, 3u);
  EXPECT_EQ(rerun->chunks_sent, 5u);     // not the one sent before
  EXPECT_EQ(rerun->chunks_present, 4u);  // it, and b's 1 2 3
  EXPECT_EQ(TargetIds(), (std::vector<std::string>{a_.id, b_.id, c_.id}));
}

TEST_F(CopyTest, CancelBetweenRevisionsKeepsTheCompleteOnes) {
  std::atomic<bool> cancel{false};
  CopyOptions options;
  options.cancel = &cancel;
  ScopedTestPoint point("copy-published", [&] { cancel = true; });
  auto stats = Copy(All(), options);
  ASSERT_OK(stats.status());
  EXPECT_TRUE(stats->interrupted);
  EXPECT_EQ(stats->revisions_copied, 1u);
  EXPECT_EQ(TargetIds(), std::vector<std::string>{a_.id});
}

TEST_F(CopyTest, BusyTargetIsRefused) {
  auto locks = to_->LockWriter("backup");
  ASSERT_OK(locks.status());
  auto stats = Copy(All());
  EXPECT_TRUE(stats.status().IsBusy()) << stats.status().ToString();
}

TEST(CopyLegacyTest, LegacySourceIsRefused) {
  char tmpl[] = "/tmp/backy-copy-legacy-XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  const std::string image = root + "/vm.img";
  {
    std::FILE* f = std::fopen(image.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::vector<uint8_t> data(1 << 20, 7);
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  }
  backy::testing::LegacyRevisionSpec spec;
  spec.dir = root + "/old";
  spec.image = image;
  spec.uuid = "aaaaaaaaaaaaaaaaaaaaaa";
  ASSERT_OK(backy::testing::WriteLegacyRevision(spec));
  auto from = Repository::Open(spec.dir);
  ASSERT_OK(from.status());
  ASSERT_TRUE((*from)->legacy());
  TempRepository dst;
  auto to = dst.Take();
  auto revs = (*from)->Revisions();
  ASSERT_OK(revs.status());
  auto stats = CopyRevisions(**from, *to, *revs, {});
  EXPECT_TRUE(stats.status().IsNotSupported()) << stats.status().ToString();
  EXPECT_NE(stats.status().Message().find("upgrade"), std::string::npos);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace backy::backup
