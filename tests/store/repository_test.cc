#include "store/repository.h"

#include <filesystem>
#include <fstream>

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
  std::unique_ptr<Repository> Open() {
    auto r = Repository::Open(dir_);
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
  auto r = Repository::Open(dir_);
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().ToString().find("backy init"), std::string::npos);
}

TEST_F(RepositoryTest, BrokenConfigNamesFileAndLine) {
  ASSERT_OK(Repository::Init(dir_, config_));
  std::ofstream(dir_ + "/config") << "format: 1\nsource:\n  type: [file\n";
  auto r = Repository::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find(dir_ + "/config:"), std::string::npos)
      << r.status().ToString();
  std::ofstream(dir_ + "/config") << "format: 1\nstore:\n  compression: lz4\n"
                                  << "source: {type: file}\n";
  r = Repository::Open(dir_);
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
    std::fstream f(repo->IndexPath(r.id), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(70);
    f.put('\x55');
  }
  auto idx = repo->LoadIndex(r.id);
  ASSERT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
  EXPECT_NE(idx.status().ToString().find(repo->IndexPath(r.id)), std::string::npos);
}

}  // namespace
}  // namespace backy::store

namespace backy::store {
namespace {

TEST(ScheduleTest, DurationsParseAndFormat) {
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("15m"), 900);
  EXPECT_EQ(*ParseDuration("1h"), 3600);
  EXPECT_EQ(*ParseDuration("1d"), 86400);
  EXPECT_EQ(*ParseDuration("2w"), 14 * 86400);
  EXPECT_EQ(*ParseDuration("30"), 30);
  EXPECT_FALSE(ParseDuration("1y").ok());
  EXPECT_FALSE(ParseDuration("0h").ok());
  EXPECT_FALSE(ParseDuration("hourly").ok());
  EXPECT_EQ(FormatDuration(86400), "1d");
  EXPECT_EQ(FormatDuration(7 * 86400), "1w");
  EXPECT_EQ(FormatDuration(90), "90s");
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
  std::ofstream(dir_ + "/config") << "format: 1\nsource: {type: file}\n"
                                  << "schedule:\n  daily: {interval: 1x, keep: 3}\n";
  auto r = Repository::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("config:4"), std::string::npos)
      << r.status().ToString();
}

}  // namespace
}  // namespace backy::store
