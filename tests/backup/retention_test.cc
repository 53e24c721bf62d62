// Retention policy on synthetic revision lists (no disk).
#include "backup/retention.h"

#include <map>

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

}  // namespace
}  // namespace backy::backup
