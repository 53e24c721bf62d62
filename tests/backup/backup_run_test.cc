// BackupRun and restore on a real (temporary) repository with a scripted
// in-memory source.
#include "backup/backup_run.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "backup/restore.h"
#include "sources/file_source.h"
#include "store/directory_repository.h"
#include "store/test_point.h"
#include "support/fake_source.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

using store::DirectoryRepository;
using store::Repository;
using store::Revision;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kChunk = 4 * kMiB;

using sources::FakeSource;

class MemorySink final : public RestoreSink {
 public:
  std::vector<uint8_t> data;
  Status Open(uint64_t size) override {
    data.assign(size, 0xAA);  // not zero: zero slots must be written
    return Status::OK();
  }
  Status Write(uint64_t off, std::span<const uint8_t> d, bool) override {
    std::copy(d.begin(), d.end(), data.begin() + off);
    return Status::OK();
  }
  Status Finish() override { return Status::OK(); }
  void Abort() override {}
};

void FillRandom(std::vector<uint8_t>& v, uint64_t off, uint64_t len,
                uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < len; ++i) v[off + i] = static_cast<uint8_t>(rng());
}

class BackupRunTest : public ::testing::Test {
 protected:
  BackupRunTest() {
    char tmpl[] = "/tmp/backy-backup-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store::RepositoryConfig config;
    config.source = {{"type", "fake"}};
    EXPECT_OK(Repository::Init(dir_ + "/repo", config));
    repo_ = std::move(DirectoryRepository::Open(dir_ + "/repo")).value();
    src_.image.assign(10 * kChunk + 12345, 0);
    FillRandom(src_.image, 0, 3 * kChunk, 1);
    FillRandom(src_.image, 6 * kChunk + 100, 2 * kMiB, 2);
    FillRandom(src_.image, 10 * kChunk, 12345, 3);
  }
  ~BackupRunTest() override { std::filesystem::remove_all(dir_); }

  Revision Backup(std::set<std::string> tags = {"daily"}) {
    BackupOptions o;
    o.tags = std::move(tags);
    auto r = RunBackup(*repo_, src_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Revision{};
  }
  std::vector<uint8_t> Restore(const Revision& rev) {
    MemorySink sink;
    EXPECT_OK(RunRestore(*repo_, rev, sink, {}));
    return sink.data;
  }
  size_t RevisionCount() { return repo_->Revisions()->size(); }

  std::string dir_;
  std::unique_ptr<DirectoryRepository> repo_;
  FakeSource src_;
};

TEST_F(BackupRunTest, FullBackupRestoresBitExact) {
  Revision r = Backup();
  EXPECT_EQ(r.size, src_.image.size());
  EXPECT_EQ(Restore(r), src_.image);
  EXPECT_EQ(r.stats.chunks_new, 5u);  // slots 0-2, 6 and the short slot 10
  EXPECT_TRUE(src_.committed);
  EXPECT_EQ(r.verification.method, "readback");
  EXPECT_EQ(r.verification.chunks_checked, r.stats.chunks_new);
  EXPECT_TRUE(r.verification.complete);
}

TEST_F(BackupRunTest, RestoreOfForgottenRevisionIsNotFoundNotDamage) {
  Revision rev = Backup();
  ASSERT_OK(repo_->Forget(rev.id));  // e.g. by a concurrent forget/expire
  MemorySink sink;
  Status s = RunRestore(*repo_, rev, sink, {});
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_TRUE(RevisionRemoved(*repo_, rev));
}

TEST_F(BackupRunTest, RestoreWithIndexMissingIsCorruption) {
  Revision rev = Backup();
  ASSERT_EQ(::unlink(repo_->IndexPath(rev.id).c_str()), 0);
  MemorySink sink;
  Status s = RunRestore(*repo_, rev, sink, {});
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_FALSE(RevisionRemoved(*repo_, rev));
}

TEST_F(BackupRunTest, HolesAreNeverRead) {
  Revision r = Backup();
  // Only the 1 MiB blocks with data are read: 12 + 3 (2 MiB at +100) + 1.
  EXPECT_EQ(r.stats.bytes_read, 12 * kMiB + 3 * kMiB + 12345);
  EXPECT_EQ(r.stats.chunks_zero, 6u);  // slots 3-5 and 7-9
}

TEST_F(BackupRunTest, IncrementalReadsOnlyChangedSlots) {
  Revision first = Backup();
  auto before = src_.image;
  FillRandom(src_.image, 1 * kChunk + 10, 100, 9);  // slot 1
  FillRandom(src_.image, 8 * kChunk, kChunk, 10);   // slot 8, was zero
  std::fill(src_.image.begin(), src_.image.begin() + kChunk,
            0);  // slot 0 discarded
  Revision second = Backup({"hourly"});
  EXPECT_EQ(second.parent, first.id);
  EXPECT_EQ(second.stats.bytes_read, 2 * kChunk);
  EXPECT_EQ(second.stats.chunks_new, 2u);
  EXPECT_EQ(Restore(second), src_.image);
  EXPECT_EQ(Restore(first), before);
}

TEST_F(BackupRunTest, FileLikeSourceDeduplicatesUnchangedChunks) {
  src_.diff_capable = false;
  Backup();
  FillRandom(src_.image, 2 * kChunk, 10, 11);
  Revision second = Backup();
  EXPECT_EQ(second.stats.chunks_new, 1u);
  EXPECT_GE(second.stats.chunks_reused, 4u);
  EXPECT_EQ(Restore(second), src_.image);
}

TEST_F(BackupRunTest, GrowAndShrinkBetweenBackups) {
  Backup();
  src_.image.resize(src_.image.size() + 5 * kChunk + 7);
  FillRandom(src_.image, src_.image.size() - 3 * kChunk, 3 * kChunk, 12);
  Revision grown = Backup();
  auto restored = Restore(grown);
  ASSERT_EQ(restored.size(), src_.image.size());
  for (size_t i = 0; i < restored.size(); i += kChunk) {
    size_t len = std::min<size_t>(kChunk, restored.size() - i);
    EXPECT_TRUE(std::equal(restored.begin() + i, restored.begin() + i + len,
                           src_.image.begin() + i))
        << "slot " << i / kChunk;
  }
  src_.image.resize(2 * kChunk + 999);
  Revision shrunk = Backup();
  EXPECT_EQ(shrunk.size, 2 * kChunk + 999);
  EXPECT_EQ(Restore(shrunk), src_.image);
  EXPECT_EQ(Restore(grown).size(), grown.size);
}

TEST_F(BackupRunTest, DistrustedParentForcesFullRead) {
  Backup();
  auto revs = *repo_->Revisions();
  revs.back().trust = store::Trust::kDistrusted;
  ASSERT_OK(repo_->UpdateMetadata(revs.back()));
  Revision second = Backup();
  EXPECT_EQ(second.stats.chunks_carried, 0u);
  EXPECT_EQ(second.stats.bytes_read, 12 * kMiB + 3 * kMiB + 12345);
}

TEST_F(BackupRunTest, DistrustedParentRewritesDamagedChunks) {
  Revision first = Backup();
  auto idx = repo_->LoadIndex(first.id);
  ASSERT_OK(idx.status());
  const std::string victim = repo_->chunks().ChunkName(idx->slot(0));
  {
    FILE* f = std::fopen(victim.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 8192, SEEK_SET);
    std::fputc(0x13, f);
    std::fclose(f);
  }
  std::vector<uint8_t> out;
  EXPECT_TRUE(repo_->chunks().Get(idx->slot(0), &out).IsCorruption());
  auto revs = *repo_->Revisions();
  revs.back().trust = store::Trust::kDistrusted;
  ASSERT_OK(repo_->UpdateMetadata(revs.back()));
  src_.diff_capable = false;
  Revision second = Backup();
  EXPECT_EQ(second.stats.chunks_new, first.stats.chunks_new);  // all rewritten
  EXPECT_OK(repo_->chunks().Get(idx->slot(0), &out));          // repaired
  EXPECT_EQ(Restore(first), src_.image);
}

TEST_F(BackupRunTest, FailedRewriteNeverDeletesSharedChunks) {
  Revision first = Backup();
  auto revs = *repo_->Revisions();
  revs.back().trust = store::Trust::kDistrusted;
  ASSERT_OK(repo_->UpdateMetadata(revs.back()));
  std::atomic<bool> cancel{false};
  BackupOptions o;
  o.tags = {"daily"};
  o.cancel = &cancel;
  ScopedTestPoint at_synced("synced", [&] { cancel = true; });
  EXPECT_TRUE(RunBackup(*repo_, src_, o).status().IsInterrupted());
  EXPECT_EQ(Restore(first), src_.image);  // rewritten chunks were kept
}

TEST_F(BackupRunTest, ReadErrorPublishesNothingAndAborts) {
  Backup();
  src_.fail_reads = true;
  src_.diff_capable = false;
  BackupOptions o;
  o.tags = {"daily"};
  auto r = RunBackup(*repo_, src_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsIOError()) << r.status().ToString();
  EXPECT_TRUE(src_.aborted);
  EXPECT_EQ(RevisionCount(), 1u);
}

TEST_F(BackupRunTest, CancelPublishesNothing) {
  std::atomic<bool> cancel{true};
  BackupOptions o;
  o.tags = {"daily"};
  o.cancel = &cancel;
  auto r = RunBackup(*repo_, src_, o);
  EXPECT_TRUE(r.status().IsInterrupted()) << r.status().ToString();
  EXPECT_EQ(RevisionCount(), 0u);
}

TEST_F(BackupRunTest, CorruptChunkFailsVerificationAndIsQuarantined) {
  BackupOptions o;
  o.tags = {"daily"};
  // Slot 0 holds data (see the fixture): its chunk is the victim.
  const std::string victim = repo_->chunks().ChunkName(
      Digest::Of(std::span<const uint8_t>(src_.image.data(), kChunk)));
  {
    ScopedTestPoint at_synced("synced", [&] {
      FILE* f = std::fopen(victim.c_str(), "r+b");
      ASSERT_NE(f, nullptr);
      std::fseek(f, 4096, SEEK_SET);
      std::fputc(0x42, f);
      std::fclose(f);
    });
    auto r = RunBackup(*repo_, src_, o);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
  EXPECT_EQ(RevisionCount(), 0u);
  EXPECT_FALSE(std::filesystem::exists(victim));
  EXPECT_FALSE(std::filesystem::is_empty(dir_ + "/repo/quarantine"));
  // The next backup writes the chunk again and succeeds.
  Revision ok = Backup();
  EXPECT_EQ(Restore(ok), src_.image);
}

TEST_F(BackupRunTest, SampledVerificationComparesWithSource) {
  src_.mode = sources::VerifyMode::kSample;
  Revision r = Backup();
  EXPECT_EQ(r.verification.method, "sample");
  EXPECT_EQ(r.verification.chunks_checked, r.stats.chunks_new);
  EXPECT_TRUE(r.verification.complete);
  // A source whose data differs from what was stored fails verification.
  BackupOptions o;
  o.tags = {"daily"};
  ScopedTestPoint at_synced("synced", [&] { src_.current[5] ^= 1; });
  FillRandom(src_.image, 0, 10, 77);
  auto bad = RunBackup(*repo_, src_, o);
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
}

// A sampled mismatch publishes the revision as distrusted; when that
// publish fails, its error is reported with the verification's, and
// nothing is left behind.
TEST_F(BackupRunTest, FailedDistrustedPublishIsReported) {
  src_.mode = sources::VerifyMode::kSample;
  Backup();
  BackupOptions o;
  o.tags = {"daily"};
  ScopedTestPoint at_synced("synced", [&] { src_.current[5] ^= 1; });
  // After the index is published, a directory where the metadata goes
  // makes the metadata's rename fail.
  ScopedTestPoint at_index("index", [&] {
    for (const auto& e :
         std::filesystem::directory_iterator(dir_ + "/repo/revisions")) {
      auto rev = e.path();
      rev.replace_extension(".rev");
      if (e.path().extension() == ".index" && !std::filesystem::exists(rev)) {
        std::filesystem::create_directory(rev);
      }
    }
  });
  FillRandom(src_.image, 0, 10, 77);
  auto bad = RunBackup(*repo_, src_, o);
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  EXPECT_NE(bad.status().ToString().find("nothing published"),
            std::string::npos)
      << bad.status().ToString();
  EXPECT_NE(bad.status().ToString().find("rename"), std::string::npos)
      << bad.status().ToString();
  EXPECT_TRUE(src_.aborted);
  EXPECT_EQ(RevisionCount(), 1u);
}

TEST_F(BackupRunTest, ZeroTimeBudgetIsRecordedAsIncomplete) {
  src_.mode = sources::VerifyMode::kSample;
  BackupOptions o;
  o.tags = {"daily"};
  o.verify_budget = std::chrono::seconds(0);
  auto r = RunBackup(*repo_, src_, o);
  ASSERT_OK(r.status());
  EXPECT_FALSE(r->verification.complete);
  EXPECT_LT(r->verification.chunks_checked, r->verification.chunks_total);
}

// A file source changed during a backup (it has no snapshot): nothing is
// published and the backup's chunks are removed.
class FileSourceChangeTest : public BackupRunTest {
 protected:
  FileSourceChangeTest() {
    path_ = dir_ + "/vm.img";
    std::vector<uint8_t> image(3 * kChunk);
    FillRandom(image, 0, image.size(), 7);
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    EXPECT_EQ(std::fwrite(image.data(), 1, image.size(), f), image.size());
    std::fclose(f);
  }
  // Backs up path_, calling `change` after every read; returns the error.
  Status BackupChangedBy(const std::function<void()>& change) {
    sources::FileSource src(path_);
    BackupOptions o;
    o.tags = {"daily"};
    ScopedTestPoint at_synced("synced", change);
    auto r = RunBackup(*repo_, src, o);
    EXPECT_EQ(RevisionCount(), 0u);
    size_t chunk_files = 0;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(dir_ + "/repo/chunks")) {
      chunk_files += e.is_regular_file();
    }
    EXPECT_EQ(chunk_files, 0u) << "the failed backup's chunks were kept";
    return r.status();
  }
  std::string path_;
};

TEST_F(FileSourceChangeTest, ShrunkDuringBackupFails) {
  Status s = BackupChangedBy(
      [&] { std::filesystem::resize_file(path_, kChunk + 4096); });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("changed size during the backup"),
            std::string::npos)
      << s.ToString();
}

TEST_F(FileSourceChangeTest, GrownDuringBackupFails) {
  Status s =
      BackupChangedBy([&] { std::filesystem::resize_file(path_, 4 * kChunk); });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
}

TEST_F(FileSourceChangeTest, ReplacedDuringBackupFails) {
  Status s = BackupChangedBy([&] {
    std::filesystem::copy_file(path_, path_ + ".new");
    std::filesystem::rename(path_ + ".new", path_);
  });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("replaced"), std::string::npos) << s.ToString();
}

TEST_F(FileSourceChangeTest, ReadPastTheShrunkEndFails) {
  sources::FileSource src(path_);
  ASSERT_OK(src.Begin("x"));
  std::filesystem::resize_file(path_, kChunk);
  std::vector<uint8_t> buf(kChunk);
  EXPECT_OK(src.Read(0, buf));
  Status s = src.Read(2 * kChunk, buf);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("shrank"), std::string::npos) << s.ToString();
}

TEST_F(FileSourceChangeTest, UnchangedFileBacksUp) {
  sources::FileSource src(path_);
  BackupOptions o;
  o.tags = {"daily"};
  auto r = RunBackup(*repo_, src, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size, 3 * kChunk);
}

TEST_F(BackupRunTest, RejectsBadTags) {
  BackupOptions o;
  EXPECT_TRUE(RunBackup(*repo_, src_, o).status().IsInvalidArgument());
  o.tags = {"has space"};
  EXPECT_TRUE(RunBackup(*repo_, src_, o).status().IsInvalidArgument());
}

}  // namespace
}  // namespace backy::backup
