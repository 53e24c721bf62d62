#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/directory_repository.h"
#include "store/purge.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

class RepositoryTest : public ::testing::Test {
 protected:
  RepositoryTest() {
    char tmpl[] = "/tmp/backy-repo-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    dir_ += "/repo";
    config_.source = {{"type", "file"}, {"filename", "/nonexistent"}};
  }
  ~RepositoryTest() override {
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  std::unique_ptr<DirectoryRepository> Open() {
    auto r = DirectoryRepository::Open(dir_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  Revision MakeRevision(int64_t ts, uint64_t size) {
    Revision r;
    r.id = NewRevisionId();
    r.timestamp_us = ts;
    r.size = size;
    r.chunk_size = kDefaultChunkSize;
    r.tags = {"daily"};
    return r;
  }
  std::string dir_;
  RepositoryConfig config_;
};

TEST_F(RepositoryTest, InitThenOpen) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  ASSERT_TRUE(repo);
  EXPECT_EQ(repo->config().source.at("filename"), "/nonexistent");
  EXPECT_TRUE(repo->config().compression.enabled);
  EXPECT_TRUE(Repository::Init(dir_, config_).IsInvalidArgument());
}

TEST_F(RepositoryTest, OpenWithoutConfigIsNotFound) {
  auto r = DirectoryRepository::Open(dir_);
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().ToString().find("backy init"), std::string::npos);
}

TEST_F(RepositoryTest, BrokenConfigNamesFileAndLine) {
  ASSERT_OK(Repository::Init(dir_, config_));
  std::ofstream(dir_ + "/config") << "format: 1\nsource:\n  type: [file\n";
  auto r = DirectoryRepository::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find(dir_ + "/config:"), std::string::npos)
      << r.status().ToString();
  std::ofstream(dir_ + "/config") << "format: 1\nstore:\n  compression: lz4\n"
                                  << "source: {type: file}\n";
  r = DirectoryRepository::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("compression"), std::string::npos);
}

TEST_F(RepositoryTest, PublishListForget) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  Revision b = MakeRevision(2000, 100);
  Revision a = MakeRevision(1000, 100);
  ASSERT_OK(repo->Publish(b, RevisionIndex(100, kDefaultChunkSize)));
  ASSERT_OK(repo->Publish(a, RevisionIndex(100, kDefaultChunkSize)));
  auto revs = repo->Revisions();
  ASSERT_OK(revs.status());
  ASSERT_EQ(revs->size(), 2u);
  EXPECT_EQ((*revs)[0].id, a.id);  // oldest first
  auto idx = repo->LoadIndex(a.id);
  ASSERT_OK(idx.status());
  EXPECT_EQ(idx->image_size(), 100u);
  ASSERT_OK(repo->Forget(a.id));
  revs = repo->Revisions();
  ASSERT_EQ(revs->size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(repo->IndexPath(a.id)));
}

TEST_F(RepositoryTest, WriterLockIsExclusiveReaderLockShared) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  auto first = repo->LockWriter("backup");
  ASSERT_OK(first.status());
  auto second = repo->LockWriter("backup");
  EXPECT_TRUE(second.status().IsBusy());
  EXPECT_NE(second.status().ToString().find("backup (pid"), std::string::npos)
      << second.status().ToString();
  auto reader = repo->LockReader();
  EXPECT_OK(reader.status());
}

TEST_F(RepositoryTest, RemoveLeftoversDropsTempAndOrphanIndexes) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  std::ofstream(dir_ + "/tmp/.tmp-1-2-3-x") << "junk";
  std::ofstream(dir_ + "/revisions/orphan.index") << "junk";
  Revision r = MakeRevision(1, 10);
  ASSERT_OK(repo->Publish(r, RevisionIndex(10, kDefaultChunkSize)));
  ASSERT_OK(repo->RemoveLeftovers());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/revisions/orphan.index"));
  EXPECT_TRUE(std::filesystem::exists(repo->IndexPath(r.id)));
}

TEST_F(RepositoryTest, DamagedIndexIsCorruptionNamingFile) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  Revision r = MakeRevision(1, 3 * kDefaultChunkSize);
  ASSERT_OK(repo->Publish(r, RevisionIndex(r.size, kDefaultChunkSize)));
  {
    std::fstream f(repo->IndexPath(r.id),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(70);
    f.put('\x55');
  }
  auto idx = repo->LoadIndex(r.id);
  ASSERT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
  EXPECT_NE(idx.status().ToString().find(repo->IndexPath(r.id)),
            std::string::npos);
}

}  // namespace
}  // namespace backy::store

namespace backy::store {
namespace {

// Issue 9 item 2: a repository holds disk images; nobody but its owner
// may read any of it, whatever the umask.
TEST_F(RepositoryTest, EveryFileAndDirectoryIsPrivate) {
  const mode_t old_umask = ::umask(022);
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  std::vector<uint8_t> data(100000, 7);
  const Digest d = Digest::Of(data);
  ASSERT_OK(repo->chunks().Put(d, data).status());
  ASSERT_OK(repo->chunks().Sync());
  Revision r = MakeRevision(1, data.size());
  RevisionIndex index(data.size(), kDefaultChunkSize);
  index.set_slot(0, d);
  ASSERT_OK(repo->Publish(r, index));
  ASSERT_OK(repo->UpdateMetadata(r));
  {
    auto locks = repo->LockWriter("test");
    ASSERT_OK(locks.status());
  }
  ASSERT_OK(repo->LockPurge().status());
  ASSERT_OK(repo->chunks().Quarantine(d));
  ::umask(old_umask);
  size_t checked = 0;
  auto check = [&](const std::filesystem::path& p) {
    struct stat st;
    ASSERT_EQ(::lstat(p.c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_mode & 077, 0u)
        << p << " has mode " << std::oct << (st.st_mode & 07777);
    ++checked;
  };
  check(dir_);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    check(e.path());
  }
  EXPECT_GE(checked, 12u);  // dir, config, 3 locks... quarantine and more
}

TEST_F(RepositoryTest, InitMakesAnExistingDirectoryPrivate) {
  std::filesystem::create_directories(dir_);
  ::chmod(dir_.c_str(), 0755);
  ASSERT_OK(Repository::Init(dir_, config_));
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// Issue 9 item 13: -b /etc/passwd is a missing repository (exit 1), not a
// usage error.
TEST_F(RepositoryTest, OpenOfAFileIsNotFound) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto r = DirectoryRepository::Open(dir_ + "/config");
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  r = DirectoryRepository::Open("/etc/passwd");
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST_F(RepositoryTest, BrokenConfigIsCorruption) {
  ASSERT_OK(Repository::Init(dir_, config_));
  std::ofstream(dir_ + "/config") << "format: 1\nsource: [a]\n";
  EXPECT_TRUE(DirectoryRepository::Open(dir_).status().IsCorruption());
  std::ofstream(dir_ + "/config")
      << "format: 1\nsource: {type: file}\n"
      << "schedule:\n  d: {interval: 1x, keep: 3}\n";
  EXPECT_TRUE(DirectoryRepository::Open(dir_).status().IsCorruption());
}

class DamagedRevisionTest : public RepositoryTest {
 protected:
  void SetUp() override {
    ASSERT_OK(Repository::Init(dir_, config_));
    repo_ = Open();
    for (int i = 0; i < 3; ++i) {
      std::vector<uint8_t> data(5000, static_cast<uint8_t>(i + 1));
      digests_.push_back(Digest::Of(data));
      ASSERT_OK(repo_->chunks().Put(digests_.back(), data).status());
      revs_.push_back(MakeRevision(1000 + i, data.size()));
      RevisionIndex index(data.size(), kDefaultChunkSize);
      index.set_slot(0, digests_.back());
      ASSERT_OK(repo_->chunks().Sync());
      ASSERT_OK(repo_->Publish(revs_.back(), index));
    }
  }
  // Replaces the middle revision's .rev by what `make` creates at its path.
  void DamageMiddle(const std::function<void(const std::string&)>& make) {
    const std::string path = repo_->RevisionPath(revs_[1].id);
    ASSERT_EQ(::unlink(path.c_str()), 0);
    make(path);
  }
  // The middle revision is listed damaged, naming its file; the others
  // stay usable.
  void ExpectMiddleDamaged(const std::string& why) {
    auto list = repo_->ScanRevisions();
    ASSERT_OK(list.status());
    ASSERT_EQ(list->healthy.size(), 2u);
    EXPECT_EQ(list->healthy[0].id, revs_[0].id);
    EXPECT_EQ(list->healthy[1].id, revs_[2].id);
    ASSERT_EQ(list->damaged.size(), 1u);
    EXPECT_EQ(list->damaged[0].id, revs_[1].id);
    const std::string msg = list->damaged[0].status.ToString();
    EXPECT_TRUE(list->damaged[0].status.IsCorruption()) << msg;
    EXPECT_NE(msg.find(repo_->RevisionPath(revs_[1].id)), std::string::npos)
        << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    auto healthy = repo_->Revisions();
    ASSERT_OK(healthy.status());
    EXPECT_EQ(healthy->size(), 2u);
  }
  std::unique_ptr<DirectoryRepository> repo_;
  std::vector<Revision> revs_;
  std::vector<Digest> digests_;
};

// Issue 9 item 8: one damaged .rev blocked every command.
TEST_F(DamagedRevisionTest, BrokenYamlIsListedDamagedAndSkipped) {
  DamageMiddle(
      [](const std::string& p) { std::ofstream(p) << "id: [broken\n"; });
  ExpectMiddleDamaged("YAML syntax error");
}

TEST_F(DamagedRevisionTest, WrongIdIsListedDamaged) {
  std::string other = repo_->RevisionPath(revs_[0].id);
  DamageMiddle(
      [&](const std::string& p) { std::filesystem::copy_file(other, p); });
  ExpectMiddleDamaged("does not match its file name");
}

// Issue 9 item 7: every read of a repository file is capped and refuses
// anything but a regular file.
TEST_F(DamagedRevisionTest, HugeSparseRevIsRefusedUnread) {
  DamageMiddle([](const std::string& p) {
    std::ofstream(p).close();
    std::filesystem::resize_file(p, uint64_t{100} << 30);  // sparse 100 GiB
  });
  // Bound the address space: reading the file whole would fail or abort.
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_AS, &old), 0);
  struct rlimit tight = old;
  tight.rlim_cur = uint64_t{4} << 30;
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &tight), 0);
  ExpectMiddleDamaged("more than");
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &old), 0);
}

TEST_F(DamagedRevisionTest, FifoRevIsRefusedWithoutWaiting) {
  DamageMiddle(
      [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0); });
  ExpectMiddleDamaged("a FIFO");
}

TEST_F(DamagedRevisionTest, SymlinkToDevZeroIsRefused) {
  DamageMiddle([](const std::string& p) {
    std::filesystem::create_symlink("/dev/zero", p);
  });
  ExpectMiddleDamaged("a character device");
}

TEST_F(DamagedRevisionTest, DirectoryRevIsCorruptionAndForgettable) {
  DamageMiddle(
      [](const std::string& p) { std::filesystem::create_directory(p); });
  ExpectMiddleDamaged("a directory");
  ASSERT_OK(repo_->Forget(revs_[1].id));
  auto list = repo_->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_TRUE(list->damaged.empty());
  EXPECT_EQ(list->healthy.size(), 2u);
}

// DATA SAFETY: purge keeps the chunks of a revision whose metadata is
// damaged, so repairing the .rev brings the revision back whole.
TEST_F(DamagedRevisionTest, PurgeKeepsChunksOfADamagedRevision) {
  const std::string path = repo_->RevisionPath(revs_[1].id);
  std::string good;
  ASSERT_OK(ReadWholeFile(path, &good));
  DamageMiddle([](const std::string& p) { std::ofstream(p) << "{{{"; });
  std::vector<uint8_t> data(100, 9);
  ASSERT_OK(repo_->chunks().Put(Digest::Of(data), data).status());
  ASSERT_OK(repo_->chunks().Sync());
  auto plan = PlanPurge(*repo_);
  ASSERT_OK(plan.status());
  ASSERT_EQ(plan->unused.size(), 1u);
  EXPECT_EQ(plan->unused[0], Digest::Of(data));
  EXPECT_EQ(plan->chunks_referenced, 3u);
  uint64_t freed = 0;
  ASSERT_OK(ExecutePurge(*repo_, *plan, &freed));
  std::ofstream(path) << good;
  auto list = repo_->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_EQ(list->healthy.size(), 3u);
  std::vector<uint8_t> out;
  ASSERT_OK(repo_->chunks().Get(digests_[1], &out));
}

TEST_F(DamagedRevisionTest, PurgeRefusesWhileAnIndexIsUnreadable) {
  DamageMiddle([](const std::string& p) { std::ofstream(p) << "{{{"; });
  std::ofstream(repo_->IndexPath(revs_[1].id), std::ios::app) << "x";
  auto plan = PlanPurge(*repo_);
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(plan.status().IsCorruption()) << plan.status().ToString();
  EXPECT_NE(plan.status().ToString().find("cannot purge"), std::string::npos);
  EXPECT_NE(plan.status().ToString().find(repo_->IndexPath(revs_[1].id)),
            std::string::npos);
}

TEST_F(RepositoryTest, IndexSizeIsCheckedBeforeItIsRead) {
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  Revision r = MakeRevision(1, 3 * kDefaultChunkSize);
  ASSERT_OK(repo->Publish(r, RevisionIndex(r.size, kDefaultChunkSize)));
  const std::string path = repo->IndexPath(r.id);
  std::filesystem::resize_file(path, uint64_t{50} << 30);  // sparse 50 GiB
  auto idx = repo->LoadIndex(r.id);
  ASSERT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
  EXPECT_NE(idx.status().ToString().find("its header says 112"),
            std::string::npos)
      << idx.status().ToString();
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  idx = repo->LoadIndex(r.id);
  EXPECT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
}

TEST_F(RepositoryTest, ScheduleRoundTripsThroughConfig) {
  config_.schedule.tags["daily"] = {86400, 14};
  config_.schedule.tags["hourly"] = {3600, 24};
  config_.schedule.min_keep = 3;
  ASSERT_OK(Repository::Init(dir_, config_));
  auto repo = Open();
  EXPECT_EQ(repo->config().schedule, config_.schedule);
  config_.schedule.tags.erase("hourly");
  ASSERT_OK(Repository::WriteConfig(dir_, config_));
  EXPECT_EQ(Open()->config().schedule, config_.schedule);
}

TEST_F(RepositoryTest, BadScheduleNamesLine) {
  ASSERT_OK(Repository::Init(dir_, config_));
  std::ofstream(dir_ + "/config")
      << "format: 1\nsource: {type: file}\n"
      << "schedule:\n  daily: {interval: 1x, keep: 3}\n";
  auto r = DirectoryRepository::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("config:4"), std::string::npos)
      << r.status().ToString();
}

}  // namespace
}  // namespace backy::store
