#include "store/revision.h"

#include "support/test_util.h"

namespace backy::store {
namespace {

TEST(RevisionTest, YamlRoundTrip) {
  Revision r;
  r.id = NewRevisionId();
  r.timestamp_us = 1763780000123456;
  r.parent = "parentid";
  r.tags = {"daily", "manual:before-upgrade"};
  r.trust = Trust::kVerified;
  r.size = 123456789;
  r.chunk_size = 4194304;
  r.source = "/images/vm.raw";
  r.stats.bytes_read = 11;
  r.stats.bytes_written = 22;
  r.stats.chunks_new = 3;
  r.stats.chunks_reused = 4;
  r.stats.chunks_zero = 5;
  r.stats.chunks_carried = 6;
  r.stats.duration = 1.5;
  r.verification = {"readback", 3, 3, 1.0, 0.5, true};
  auto back = Revision::FromYaml(r.ToYaml(), "t.rev");
  ASSERT_OK(back.status());
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->timestamp_us, r.timestamp_us);
  EXPECT_EQ(back->parent, r.parent);
  EXPECT_EQ(back->tags, r.tags);
  EXPECT_EQ(back->trust, Trust::kVerified);
  EXPECT_EQ(back->size, r.size);
  EXPECT_EQ(back->stats.chunks_carried, 6u);
  EXPECT_DOUBLE_EQ(back->stats.duration, 1.5);
  EXPECT_EQ(back->verification.method, "readback");
  EXPECT_DOUBLE_EQ(back->verification.coverage, 0.5);
  EXPECT_TRUE(back->verification.complete);
}

TEST(RevisionTest, BrokenYamlNamesFileAndLine) {
  auto r = Revision::FromYaml("format: 1\nid: x\ntags: [a, b\n", "bad.rev");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().ToString().find("bad.rev"), std::string::npos);
  EXPECT_NE(r.status().ToString().find("line"), std::string::npos);
}

TEST(RevisionTest, MissingFieldsAreErrors) {
  EXPECT_FALSE(Revision::FromYaml("format: 1\n", "t").ok());
  EXPECT_FALSE(Revision::FromYaml("- a\n- b\n", "t").ok());
  EXPECT_FALSE(Revision::FromYaml(
                   "format: 1\nid: x\ntimestamp: 2026-01-01T00:00:00Z\n", "t")
                   .ok());  // no size
  EXPECT_TRUE(Revision::FromYaml("format: 2\nid: x\n", "t").status().IsNotSupported());
}

TEST(RevisionTest, TimestampsRoundTrip) {
  int64_t us = 1763780000123456;
  std::string s = FormatTimestamp(us);
  EXPECT_EQ(s, "2025-11-22T02:53:20.123456Z");
  auto back = ParseTimestamp(s);
  ASSERT_OK(back.status());
  EXPECT_EQ(*back, us);
  auto plain = ParseTimestamp("2025-11-22 02:53:20+00:00");
  ASSERT_OK(plain.status());
  EXPECT_EQ(*plain, 1763780000000000);
  EXPECT_FALSE(ParseTimestamp("yesterday").ok());
  EXPECT_FALSE(ParseTimestamp("2025-11-22T02:53:20+02:00").ok());
}

TEST(RevisionTest, IdsAreUniqueAndFileSafe) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRevisionId();
    EXPECT_EQ(id.size(), 22u);
    EXPECT_EQ(id.find_first_not_of(
                  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
              std::string::npos);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace backy::store
