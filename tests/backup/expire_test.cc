// Expire: the retention plan on synthetic revision lists (no disk), and
// its execution on a repository.
#include "backup/expire.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "store/directory_repository.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

using store::Revision;

class RetentionTest : public ::testing::Test {
 protected:
  // Adds a revision (oldest first) with the given tags; returns its id.
  std::string Add(std::set<std::string> tags) {
    Revision r;
    r.id = "r" + std::to_string(revs_.size());
    r.timestamp_us = static_cast<int64_t>(revs_.size()) * 1000000;
    r.tags = std::move(tags);
    revs_.push_back(r);
    return r.id;
  }
  std::map<std::string, ExpireChange> Plan() {
    std::map<std::string, ExpireChange> m;
    for (auto& c : PlanExpire(revs_, schedule_)) m[c.id] = c;
    return m;
  }
  std::vector<Revision> revs_;
  store::Schedule schedule_;
};

TEST_F(RetentionTest, NoScheduleExpiresNothing) {
  for (int i = 0; i < 5; ++i) Add({"daily"});
  EXPECT_TRUE(Plan().empty());
}

TEST_F(RetentionTest, KeepsNewestKeepPerTag) {
  schedule_.tags["daily"] = {86400, 3};
  for (int i = 0; i < 5; ++i) Add({"daily"});
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_TRUE(plan["r0"].remove_revision);
  EXPECT_TRUE(plan["r1"].remove_revision);
  EXPECT_FALSE(plan.count("r2"));
}

TEST_F(RetentionTest, RevisionWithOtherTagLosesOnlyTheExpiredOne) {
  schedule_.tags["daily"] = {86400, 1};
  schedule_.tags["weekly"] = {7 * 86400, 4};
  Add({"daily", "weekly"});
  Add({"daily"});
  auto plan = Plan();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_FALSE(plan["r0"].remove_revision);
  EXPECT_EQ(plan["r0"].removed_tags, std::set<std::string>{"daily"});
}

TEST_F(RetentionTest, ManualTagsNeverExpire) {
  schedule_.tags["daily"] = {86400, 1};
  Add({"manual:before-upgrade"});
  Add({"daily", "manual:x"});
  Add({"daily"});
  Add({"daily"});
  auto plan = Plan();
  EXPECT_FALSE(plan.count("r0"));
  EXPECT_EQ(plan["r1"].removed_tags, std::set<std::string>{"daily"});
  EXPECT_FALSE(plan["r1"].remove_revision);
  EXPECT_TRUE(plan["r2"].remove_revision);
}

TEST_F(RetentionTest, TagsOutsideTheScheduleExpire) {
  schedule_.tags["daily"] = {86400, 5};
  Add({"hourly"});
  Add({"daily", "hourly"});
  Add({"daily"});
  auto plan = Plan();
  EXPECT_TRUE(plan["r0"].remove_revision);
  EXPECT_EQ(plan["r1"].removed_tags, std::set<std::string>{"hourly"});
  EXPECT_FALSE(plan["r1"].remove_revision);
}

TEST_F(RetentionTest, MinKeepProtectsNewestRevisions) {
  // A broken schedule (a tag no revision has) must not wipe everything.
  schedule_.tags["monthly"] = {30 * 86400, 1};
  schedule_.min_keep = 2;
  for (int i = 0; i < 4; ++i) Add({"daily"});
  auto plan = Plan();
  EXPECT_TRUE(plan["r0"].remove_revision);
  EXPECT_TRUE(plan["r1"].remove_revision);
  EXPECT_FALSE(plan.count("r2"));
  EXPECT_FALSE(plan.count("r3"));
}

TEST_F(RetentionTest, MinKeepZeroAllowsRemovingEverything) {
  schedule_.tags["monthly"] = {30 * 86400, 1};
  schedule_.min_keep = 0;
  Add({"daily"});
  Add({"daily"});
  EXPECT_EQ(Plan().size(), 2u);
}

TEST_F(RetentionTest, KeepZeroDropsTheTagEverywhere) {
  schedule_.tags["daily"] = {86400, 0};
  schedule_.tags["weekly"] = {7 * 86400, 9};
  schedule_.min_keep = 0;
  Add({"daily", "weekly"});
  auto plan = Plan();
  EXPECT_EQ(plan["r0"].removed_tags, std::set<std::string>{"daily"});
  EXPECT_FALSE(plan["r0"].remove_revision);
}

// ExecuteExpire applies the plan to a repository: removed revisions are
// forgotten, the others lose only the removed tags, in plan order.
TEST(ExecuteExpireTest, AppliesThePlanToTheRepository) {
  char tmpl[] = "/tmp/backy-expire-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  store::RepositoryConfig config;
  config.source = {{"type", "file"}, {"filename", "/nonexistent"}};
  ASSERT_OK(store::Repository::Init(dir, config));
  auto repo = store::DirectoryRepository::Open(dir);
  ASSERT_OK(repo.status());
  const std::vector<std::set<std::string>> tags = {
      {"daily"}, {"daily", "weekly"}, {"daily"}, {"daily"}};
  for (size_t i = 0; i < tags.size(); ++i) {
    Revision r;
    r.id = "rev" + std::to_string(i);
    r.timestamp_us = static_cast<int64_t>(i + 1) * 1000000;
    r.chunk_size = store::kDefaultChunkSize;
    r.tags = tags[i];
    ASSERT_OK((*repo)->Publish(r, store::RevisionIndex(0, r.chunk_size)));
  }
  store::Schedule schedule;
  schedule.tags["daily"] = {86400, 2};
  schedule.tags["weekly"] = {7 * 86400, 1};
  auto revs = (*repo)->Revisions();
  ASSERT_OK(revs.status());
  const auto plan = PlanExpire(*revs, schedule);
  ASSERT_EQ(plan.size(), 2u);  // rev0 goes, rev1 loses daily

  std::vector<std::string> seen;
  ASSERT_OK(ExecuteExpire(**repo, *revs, plan, [&](const ExpireChange& c) {
    seen.push_back(c.id);
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"rev0", "rev1"}));
  auto after = (*repo)->Revisions();
  ASSERT_OK(after.status());
  ASSERT_EQ(after->size(), 3u);
  EXPECT_EQ((*after)[0].id, "rev1");
  EXPECT_EQ((*after)[0].tags, std::set<std::string>{"weekly"});
  EXPECT_EQ((*after)[1].tags, std::set<std::string>{"daily"});
  EXPECT_EQ((*after)[2].tags, std::set<std::string>{"daily"});
  EXPECT_FALSE(std::filesystem::exists((*repo)->IndexPath("rev0")));

  // A change naming a revision not in the list is refused.
  ExpireChange stray;
  stray.id = "nosuch";
  stray.removed_tags = {"daily"};
  EXPECT_TRUE(ExecuteExpire(**repo, *after, {stray}).IsNotFound());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace backy::backup
