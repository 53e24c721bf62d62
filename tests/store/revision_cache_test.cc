// RevisionCache on a real (temporary) repository: the list is read once
// while nothing changes, and again after a publish, a forget or a tag
// update; a list read right after a change is not trusted until it settles.
#include "store/revision_cache.h"

#include <unistd.h>

#include <filesystem>

#include "support/temp_repository.h"

namespace backy::store {
namespace {

class RevisionCacheTest : public ::testing::Test {
 protected:
  Revision Publish(int64_t ts) {
    RevisionIndex index(uint64_t{kDefaultChunkSize}, kDefaultChunkSize);
    Revision r;
    r.id = NewRevisionId();
    r.timestamp_us = ts;
    r.size = index.image_size();
    r.chunk_size = kDefaultChunkSize;
    r.tags = {"daily"};
    EXPECT_OK(repo_->Publish(r, index));
    return r;
  }

  TempRepository tmp_;
  const std::string dir_ = tmp_.dir();
  std::unique_ptr<DirectoryRepository> repo_ = tmp_.Take();
};

std::vector<std::string> Ids(const RevisionCache::List& list) {
  std::vector<std::string> ids;
  for (const auto& r : *list) ids.push_back(r.id);
  return ids;
}

TEST_F(RevisionCacheTest, ReadsOnceWhileNothingChanges) {
  Revision a = Publish(1000);
  RevisionCache cache(*repo_, std::chrono::seconds(0));
  auto first = cache.Get();
  ASSERT_OK(first.status());
  EXPECT_EQ(Ids(*first), std::vector<std::string>{a.id});
  for (int i = 0; i < 100; ++i) {
    auto again = cache.Get();
    ASSERT_OK(again.status());
    EXPECT_EQ(again->get(), first->get());  // the same list object
  }
  EXPECT_EQ(cache.reads(), 1u);
}

TEST_F(RevisionCacheTest, ReadsAgainAfterPublishForgetAndUpdate) {
  Revision a = Publish(1000);
  RevisionCache cache(*repo_, std::chrono::seconds(0));
  ASSERT_OK(cache.Get().status());
  // The directory's times move on with each change, even within the
  // file system's time granularity of the previous one: wait it out, as
  // kSettle does in real use.
  auto tick = [] { ::usleep(20 * 1000); };
  tick();
  Revision b = Publish(2000);
  auto list = cache.Get();
  ASSERT_OK(list.status());
  EXPECT_EQ(Ids(*list), (std::vector<std::string>{a.id, b.id}));
  EXPECT_EQ(cache.reads(), 2u);

  tick();
  b.tags = {"weekly"};
  ASSERT_OK(repo_->UpdateMetadata(b));
  list = cache.Get();
  ASSERT_OK(list.status());
  ASSERT_EQ(list->get()->size(), 2u);
  EXPECT_EQ((**list)[1].tags, std::set<std::string>{"weekly"});

  tick();
  ASSERT_OK(repo_->Forget(a.id));
  list = cache.Get();
  ASSERT_OK(list.status());
  EXPECT_EQ(Ids(*list), std::vector<std::string>{b.id});
  EXPECT_EQ(cache.reads(), 4u);
}

// A list read within kSettle of the last change may have missed a change
// made in the same tick of the directory's clock: it is read again.
TEST_F(RevisionCacheTest, FreshChangeIsNotTrusted) {
  Publish(1000);
  RevisionCache cache(*repo_);  // kSettle: the publish is too recent
  ASSERT_OK(cache.Get().status());
  ASSERT_OK(cache.Get().status());
  EXPECT_EQ(cache.reads(), 2u);
}

TEST_F(RevisionCacheTest, UnlistableDirectoryFails) {
  RevisionCache cache(*repo_, std::chrono::seconds(0));
  std::filesystem::remove_all(RevisionsDirName(dir_));
  EXPECT_FALSE(cache.Get().ok());
}

}  // namespace
}  // namespace backy::store
