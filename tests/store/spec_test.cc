#include "store/spec.h"

#include "support/test_util.h"

namespace backy::store {
namespace {

Revision Rev(std::string id, std::set<std::string> tags) {
  Revision r;
  r.id = std::move(id);
  r.tags = std::move(tags);
  return r;
}

class SpecTest : public ::testing::Test {
 protected:
  // Oldest first.
  std::vector<Revision> revs_ = {Rev("aaa", {"daily", "weekly"}),
                                 Rev("bbb", {"daily"}), Rev("ccc", {"hourly"})};
  size_t Resolve(std::string_view spec) {
    auto r = ResolveSpec(revs_, spec);
    EXPECT_TRUE(r.ok()) << spec << ": " << r.status().ToString();
    return r.ok() ? *r : 999;
  }
};

TEST_F(SpecTest, LastAndLatestAreNewest) {
  EXPECT_EQ(Resolve("last"), 2u);
  EXPECT_EQ(Resolve("latest"), 2u);
}

TEST_F(SpecTest, NumbersCountBackFromNewest) {
  EXPECT_EQ(Resolve("0"), 2u);
  EXPECT_EQ(Resolve("1"), 1u);
  EXPECT_EQ(Resolve("2"), 0u);
  EXPECT_TRUE(ResolveSpec(revs_, "3").status().IsNotFound());
}

TEST_F(SpecTest, IdsMatchExactly) {
  EXPECT_EQ(Resolve("aaa"), 0u);
  EXPECT_EQ(Resolve("bbb"), 1u);
  EXPECT_TRUE(ResolveSpec(revs_, "aa").status().IsNotFound());
}

TEST_F(SpecTest, TagsPickNewestCarrier) {
  EXPECT_EQ(Resolve("daily"), 1u);
  EXPECT_EQ(Resolve("weekly"), 0u);
  EXPECT_EQ(Resolve("hourly"), 2u);
}

TEST_F(SpecTest, UnknownAndEmpty) {
  auto r = ResolveSpec(revs_, "monthly");
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().ToString().find("monthly"), std::string::npos);
  EXPECT_TRUE(ResolveSpec(revs_, "").status().IsInvalidArgument());
  EXPECT_TRUE(ResolveSpec({}, "last").status().IsNotFound());
}

}  // namespace
}  // namespace backy::store
