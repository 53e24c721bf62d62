// Verification on a real (temporary) repository: read-back and sampled
// checks of what a backup stored, `backy verify`'s CheckChunks, and the
// ratios recorded in a revision.
#include "backup/verify.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <unordered_map>

#include "sources/file_source.h"
#include "store/mem_chunk_store.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

using store::Repository;
using store::RevisionIndex;
constexpr uint64_t kChunk = store::kDefaultChunkSize;

class VerifyTest : public ::testing::Test {
 protected:
  // An image of 4 slots and a bit: 0, 1 and 3 random, 2 zero, 4 short;
  // every data slot stored as a chunk, and the image also as a file.
  VerifyTest() {
    char tmpl[] = "/tmp/backy-verify-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store::RepositoryConfig config;
    config.source = {{"type", "file"}, {"filename", "/nonexistent"}};
    EXPECT_OK(Repository::Init(dir_ + "/repo", config));
    repo_ = std::move(Repository::Open(dir_ + "/repo")).value();
    image_.assign(4 * kChunk + 5000, 0);
    std::mt19937_64 rng(3);
    for (uint64_t i = 0; i < image_.size(); ++i) {
      if (i / kChunk != 2) image_[i] = static_cast<uint8_t>(rng());
    }
    index_ = RevisionIndex(image_.size(), kChunk);
    for (size_t s = 0; s < index_.slot_count(); ++s) {
      if (s == 2) continue;
      std::span<const uint8_t> plain(image_.data() + s * kChunk,
                                     index_.SlotLength(s));
      Digest d = Digest::Of(plain);
      EXPECT_OK(repo_->chunks().Put(d, plain, false).status());
      index_.set_slot(s, d);
      written_.push_back(d);
    }
    EXPECT_OK(repo_->chunks().Sync());
    path_ = dir_ + "/vm.img";
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    EXPECT_EQ(std::fwrite(image_.data(), 1, image_.size(), f), image_.size());
    std::fclose(f);
  }
  ~VerifyTest() override { std::filesystem::remove_all(dir_); }

  // Flips one byte of the chunk file of slot `slot`.
  void Damage(size_t slot) {
    const std::string name = repo_->chunks().ChunkName(index_.slot(slot));
    std::FILE* f = std::fopen(name.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 4096, SEEK_SET);
    int c = std::fgetc(f);
    std::fseek(f, 4096, SEEK_SET);
    std::fputc(c ^ 0x55, f);
    std::fclose(f);
  }
  bool Quarantined() {
    const std::string q = dir_ + "/repo/quarantine";
    return std::filesystem::exists(q) && !std::filesystem::is_empty(q);
  }

  std::string dir_, path_;
  std::unique_ptr<Repository> repo_;
  std::vector<uint8_t> image_;
  RevisionIndex index_;
  std::vector<Digest> written_;
};

TEST_F(VerifyTest, ReadbackChecksEveryWrittenChunk) {
  store::Verification v;
  ASSERT_OK(VerifyReadback(*repo_, written_, {}, &v));
  EXPECT_EQ(v.method, "readback");
  EXPECT_EQ(v.chunks_total, 4u);
  EXPECT_EQ(v.chunks_checked, 4u);
  EXPECT_TRUE(v.complete);
  SetVerificationRatios(index_, &v);
  EXPECT_EQ(v.fraction, 1.0);
  EXPECT_EQ(v.coverage, 1.0);
}

TEST_F(VerifyTest, ReadbackQuarantinesACorruptChunkAndChecksTheRest) {
  Damage(1);
  store::Verification v;
  VerifyOptions o;
  o.workers = 1;
  Status s = VerifyReadback(*repo_, written_, o, &v);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("verification failed"), std::string::npos);
  EXPECT_EQ(v.chunks_checked, 3u);
  EXPECT_TRUE(Quarantined());
}

TEST_F(VerifyTest, CancelledReadbackIsInterrupted) {
  std::atomic<bool> cancel{true};
  VerifyOptions o;
  o.cancel = &cancel;
  store::Verification v;
  EXPECT_TRUE(VerifyReadback(*repo_, written_, o, &v).IsInterrupted());
  EXPECT_EQ(v.chunks_checked, 0u);
}

TEST_F(VerifyTest, SampleChecksWrittenChunksAndASampleOfTheOthers) {
  sources::FileSource src(path_);
  ASSERT_OK(src.Begin("x"));
  store::Verification v;
  VerifyOptions o;
  o.sample = 0.5;  // of the 4 data slots: 2 not written by "this backup"
  const std::vector<Digest> written{written_[0]};
  ASSERT_OK(VerifySample(*repo_, src, index_, written, o, &v));
  EXPECT_EQ(v.method, "sample");
  EXPECT_EQ(v.chunks_total, 3u);  // slot 0 and 2 of the 3 others
  EXPECT_EQ(v.chunks_checked, 3u);
  EXPECT_TRUE(v.complete);
  SetVerificationRatios(index_, &v);
  EXPECT_EQ(v.fraction, 1.0);
  EXPECT_EQ(v.coverage, 0.75);
}

TEST_F(VerifyTest, SampleFindsASourceThatDiffers) {
  image_[kChunk + 7] ^= 1;  // slot 1 of the source changed
  std::FILE* f = std::fopen(path_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, kChunk + 7, SEEK_SET);
  std::fputc(image_[kChunk + 7], f);
  std::fclose(f);
  sources::FileSource src(path_);
  ASSERT_OK(src.Begin("x"));
  store::Verification v;
  Status s = VerifySample(*repo_, src, index_, written_, {}, &v);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("differs from slot 1"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(v.chunks_checked, 3u);
  EXPECT_FALSE(Quarantined());  // the chunk itself is sound
}

TEST_F(VerifyTest, SampleWithoutTimeIsIncomplete) {
  sources::FileSource src(path_);
  ASSERT_OK(src.Begin("x"));
  VerifyOptions o;
  o.budget = std::chrono::seconds(-1);
  store::Verification v;
  ASSERT_OK(VerifySample(*repo_, src, index_, written_, o, &v));
  EXPECT_EQ(v.chunks_checked, 0u);
  EXPECT_FALSE(v.complete);
}

TEST_F(VerifyTest, CheckChunksSortsDamageFromOtherErrors) {
  EXPECT_TRUE(CheckChunks(repo_->chunks(), index_, {}).damaged.empty());
  Damage(0);
  ASSERT_OK(repo_->chunks().Remove(index_.slot(3)));
  ChunkReport report = CheckChunks(repo_->chunks(), index_, {});
  ASSERT_EQ(report.damaged.size(), 2u);
  EXPECT_TRUE(report.errors.empty());
  size_t quarantined = 0;
  for (const Status& s : report.damaged) {
    EXPECT_TRUE(IsDamage(s)) << s.ToString();
    quarantined +=
        s.ToString().find("moved to quarantine/") != std::string::npos;
  }
  EXPECT_EQ(quarantined, 1u);
  EXPECT_TRUE(Quarantined());
}

TEST_F(VerifyTest, CheckChunksChecksADuplicateChunkOnce) {
  index_.set_slot(2, index_.slot(0));  // two slots, one chunk
  Damage(0);
  EXPECT_EQ(CheckChunks(repo_->chunks(), index_, {}).damaged.size(), 1u);
}

// Forwards to a store and counts the chunk reads (Get) per digest.
class CountingChunkStore final : public store::ChunkStore {
 public:
  explicit CountingChunkStore(store::ChunkStore& base) : base_(base) {}
  Result<store::PutResult> Put(const Digest& d, std::span<const uint8_t> p,
                               bool rewrite) override {
    return base_.Put(d, p, rewrite);
  }
  Result<bool> Contains(const Digest& d) override { return base_.Contains(d); }
  Status Get(const Digest& d, std::vector<uint8_t>* out) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++gets_[d];
      ++total_;
    }
    return base_.Get(d, out);
  }
  Status Read(const Digest& d, uint64_t offset,
              std::span<uint8_t> out) override {
    return base_.Read(d, offset, out);
  }
  Result<uint64_t> PlainSize(const Digest& d) override {
    return base_.PlainSize(d);
  }
  Status Sync() override { return base_.Sync(); }
  Status Remove(const Digest& d) override { return base_.Remove(d); }
  Status Quarantine(const Digest& d) override { return base_.Quarantine(d); }
  Status List(const std::function<void(const Digest&)>& fn) override {
    return base_.List(fn);
  }
  std::string ChunkName(const Digest& d) const override {
    return base_.ChunkName(d);
  }
  size_t total() const { return total_; }
  size_t gets(const Digest& d) const {
    auto it = gets_.find(d);
    return it == gets_.end() ? 0 : it->second;
  }

 private:
  store::ChunkStore& base_;
  std::mutex mu_;
  std::unordered_map<Digest, size_t, DigestHash> gets_;  // GUARDED_BY(mu_)
  size_t total_ = 0;                                     // GUARDED_BY(mu_)
};

class VerifyRunTest : public VerifyTest {
 protected:
  // Five revisions of the fixture's image: slots 0, 1 and 3 shared, the
  // short last slot its own chunk in each.
  VerifyRunTest() {
    for (int r = 0; r < 5; ++r) {
      RevisionIndex index = index_;
      std::vector<uint8_t> tail(index.SlotLength(4), static_cast<uint8_t>(r));
      Digest d = Digest::Of(tail);
      EXPECT_OK(repo_->chunks().Put(d, tail, false).status());
      index.set_slot(4, d);
      revisions_.push_back(index);
    }
    EXPECT_OK(repo_->chunks().Sync());
  }
  std::vector<RevisionIndex> revisions_;
};

TEST_F(VerifyRunTest, ASharedChunkIsReadOncePerRun) {
  CountingChunkStore counting(repo_->chunks());
  CheckedChunks checked;
  for (size_t r = 0; r < revisions_.size(); ++r) {
    ChunkReport report = CheckChunks(counting, revisions_[r], {}, &checked);
    EXPECT_TRUE(report.damaged.empty());
    EXPECT_TRUE(report.errors.empty());
    EXPECT_EQ(report.chunks, 4u) << "revision " << r;
    EXPECT_EQ(report.read, r == 0 ? 4u : 1u) << "revision " << r;
  }
  EXPECT_EQ(counting.total(), 3u + 5u);  // shared ones once, tails once each
  EXPECT_EQ(checked.size(), 8u);
  EXPECT_EQ(counting.gets(index_.slot(0)), 1u);
}

TEST_F(VerifyRunTest, WithoutARecordEachRevisionReadsAllItsChunks) {
  CountingChunkStore counting(repo_->chunks());
  for (const RevisionIndex& index : revisions_) {
    EXPECT_EQ(CheckChunks(counting, index, {}).read, 4u);
  }
  EXPECT_EQ(counting.total(), 4u * 5u);
}

TEST_F(VerifyRunTest, ADamagedSharedChunkDistrustsEveryRevisionHoldingIt) {
  Damage(1);
  CountingChunkStore counting(repo_->chunks());
  CheckedChunks checked;
  for (size_t r = 0; r < revisions_.size(); ++r) {
    ChunkReport report = CheckChunks(counting, revisions_[r], {}, &checked);
    ASSERT_EQ(report.damaged.size(), 1u) << "revision " << r;
    EXPECT_TRUE(report.damaged[0].IsCorruption())
        << report.damaged[0].ToString();
    EXPECT_NE(report.damaged[0].ToString().find(index_.slot(1).Hex()),
              std::string::npos)
        << report.damaged[0].ToString();
  }
  EXPECT_EQ(counting.gets(index_.slot(1)), 1u);
  EXPECT_TRUE(Quarantined());
}

TEST_F(VerifyRunTest, AChunkInAnotherStoreIsReadThere) {
  store::MemChunkStore other;
  std::vector<uint8_t> plain;
  ASSERT_OK(repo_->chunks().Get(index_.slot(0), &plain));
  ASSERT_OK(other.Put(index_.slot(0), plain, false).status());
  RevisionIndex one(kChunk, kChunk);
  one.set_slot(0, index_.slot(0));
  CheckedChunks checked;
  ASSERT_EQ(CheckChunks(repo_->chunks(), revisions_[0], {}, &checked).read, 4u);
  CountingChunkStore counting(other);
  ChunkReport report = CheckChunks(counting, one, {}, &checked);
  EXPECT_EQ(report.read, 1u);
  EXPECT_EQ(counting.total(), 1u);
}

TEST(IsDamageTest, CorruptOrMissingIsDamageOtherErrorsAreNot) {
  EXPECT_TRUE(IsDamage(Status::Corruption("x")));
  EXPECT_TRUE(IsDamage(Status::NotFound("x")));
  EXPECT_FALSE(IsDamage(Status::IOError("x")));
  EXPECT_FALSE(IsDamage(Status::OK()));
}

}  // namespace
}  // namespace backy::backup
