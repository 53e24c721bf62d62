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
  EXPECT_TRUE(
      Revision::FromYaml("format: 2\nid: x\n", "t").status().IsNotSupported());
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

// A valid revision's YAML with top-level `key` (and its nested lines)
// replaced by "key: value", or that line appended if there is no `key`.
std::string WithField(const std::string& key, const std::string& value) {
  Revision r;
  r.id = "abc";
  r.timestamp_us = 1763780000123456;
  r.tags = {"daily"};
  r.size = 10;
  r.chunk_size = 4194304;
  std::string yaml = r.ToYaml();
  const std::string prefix = key + ":";
  size_t pos = yaml.find("\n" + prefix);
  if (pos == std::string::npos) return yaml + key + ": " + value + "\n";
  size_t end = yaml.find('\n', pos + 1);
  while (yaml.compare(end, 3, "\n  ") == 0) end = yaml.find('\n', end + 1);
  return yaml.substr(0, pos + 1) + key + ": " + value + yaml.substr(end);
}

// Expects FromYaml of `yaml` to be Corruption naming the file and `key`.
void ExpectCorruption(const std::string& yaml, const std::string& key) {
  auto r = Revision::FromYaml(yaml, "repo/revisions/abc.rev");
  ASSERT_FALSE(r.ok()) << yaml;
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().ToString().find("repo/revisions/abc.rev"),
            std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().ToString().find("'" + key + "'"), std::string::npos)
      << r.status().ToString();
}

TEST(RevisionTest, TheHelperYamlIsValid) {
  auto r = Revision::FromYaml(WithField("trust", "verified"), "t");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->trust, Trust::kVerified);
  EXPECT_EQ(r->tags, std::set<std::string>{"daily"});
}

// Issue 9 item 13: yaml-cpp's as<T>(fallback) turned a value of the wrong
// type into the fallback, so damage read as plausible metadata.
TEST(RevisionTest, WrongYamlTypesAreCorruptionNamingFileAndKey) {
  ExpectCorruption(WithField("trust", "{a: 1}"), "trust");
  ExpectCorruption(WithField("trust", "[trusted]"), "trust");
  ExpectCorruption(WithField("tags", "daily"), "tags");
  ExpectCorruption(WithField("tags", "{daily: 1}"), "tags");
  ExpectCorruption(WithField("tags", "[[a]]"), "tags");
  ExpectCorruption(WithField("id", "[abc]"), "id");
  ExpectCorruption(WithField("parent", "{x: y}"), "parent");
  ExpectCorruption(WithField("timestamp", "{}"), "timestamp");
  ExpectCorruption(WithField("size", "[1]"), "size");
  ExpectCorruption(WithField("size", "-1"), "size");
  ExpectCorruption(WithField("size", "12abc"), "size");
  ExpectCorruption(WithField("size", "18446744073709551616"), "size");
  ExpectCorruption(WithField("chunk_size", "4294967296"), "chunk_size");
  ExpectCorruption(WithField("stats", "5"), "stats");
  ExpectCorruption(WithField("verification", "[1]"), "verification");
  auto with_nested = [](std::string key, std::string value) {
    std::string y = WithField("trust", "trusted");
    size_t pos = y.find("  " + key + ":");
    size_t end = y.find('\n', pos);
    return y.substr(0, pos) + "  " + key + ": " + value + y.substr(end);
  };
  ExpectCorruption(with_nested("bytes_read", "lots"), "stats.bytes_read");
  ExpectCorruption(with_nested("duration", "-1"), "stats.duration");
  ExpectCorruption(with_nested("duration", ".nan"), "stats.duration");
  ExpectCorruption(with_nested("complete", "maybe"), "verification.complete");
  ExpectCorruption(with_nested("method", "{a: b}"), "verification.method");
}

TEST(RevisionTest, ImpossibleValuesAreCorruptionNamingFileAndKey) {
  ExpectCorruption(WithField("timestamp", "0000-13-45T99:99:99Z"), "timestamp");
  ExpectCorruption(WithField("timestamp", "2026-02-29T00:00:00Z"), "timestamp");
  ExpectCorruption(WithField("timestamp", "yesterday"), "timestamp");
  ExpectCorruption(WithField("trust", "bogus"), "trust");
  ExpectCorruption(WithField("id", "''"), "id");
}

TEST(RevisionTest, TimestampsMustExist) {
  EXPECT_OK(ParseTimestamp("2024-02-29T23:59:59Z").status());
  EXPECT_OK(ParseTimestamp("2026-11-22").status());
  EXPECT_OK(ParseTimestamp("2026-11-22T03:10:02.5Z").status());
  for (const char* bad :
       {"0000-13-45T99:99:99Z", "2026-13-01", "2026-00-10", "2026-04-31",
        "2025-02-29", "2026-11-22T24:00:00Z", "2026-11-22T23:60:00Z",
        "2026-11-22T23:59:60Z", "0000-01-01", " 2026-11-22", "2026-1-22",
        "+2026-11-22", "2026-11-22T1:02:03Z", "2026-11-22T01:02:03.Z",
        "2026-11-22T01:02:03ZZ", "2026-11-22x"}) {
    auto t = ParseTimestamp(bad);
    EXPECT_FALSE(t.ok()) << bad;
    EXPECT_TRUE(t.status().IsInvalidArgument()) << bad;
  }
}

TEST(RevisionTest, TagListsSplitOnCommasAndRefuseEmptyItems) {
  auto tags = ParseTagList("daily,manual:before-upgrade,daily");
  ASSERT_OK(tags.status());
  EXPECT_EQ(*tags, (std::set<std::string>{"daily", "manual:before-upgrade"}));
  for (const char* bad : {"", ",", "daily,,weekly", ",daily", "daily,"}) {
    auto r = ParseTagList(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
    EXPECT_NE(r.status().Message().find("empty tag"), std::string::npos)
        << r.status().Message();
  }
  // Each item is a tag as ValidateTag sees it.
  EXPECT_TRUE(ParseTagList("daily,we ekly").status().IsInvalidArgument());
  EXPECT_TRUE(ParseTagList("daily,a/b").status().IsInvalidArgument());
}

TEST(RevisionTest, ABareManualTagIsRefused) {
  Status s = ValidateTag("manual:");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.Message().find("manual:"), std::string::npos) << s.Message();
  EXPECT_TRUE(ParseTagList("daily,manual:").status().IsInvalidArgument());
  ASSERT_OK(ValidateTag("manual:x"));
  // Only the bare prefix: "manual" alone is an ordinary tag.
  ASSERT_OK(ValidateTag("manual"));
}

TEST(RevisionTest, IdsAreUniqueAndFileSafe) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRevisionId();
    EXPECT_EQ(id.size(), 22u);
    EXPECT_EQ(
        id.find_first_not_of(
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
        std::string::npos);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace backy::store

namespace backy::store {
namespace {

// Found by tests/fuzz (revision): values that would not survive being
// written back are Corruption, not quietly changed by the next rewrite.
TEST(RevisionTest, IdsParentsAndTagsMustSurviveARewrite) {
  const std::string base =
      "format: 1\ntimestamp: 2026-01-01T00:00:00Z\nsize: 1\nchunk_size: 4\n";
  EXPECT_TRUE(Revision::FromYaml(base + "id: \"a\\r\"\n", "t.rev")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(
      Revision::FromYaml(base + "id: ../x\n", "t.rev").status().IsCorruption());
  EXPECT_TRUE(Revision::FromYaml(base + "id: a\nparent: \"b/c\"\n", "t.rev")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(Revision::FromYaml(base + "id: a\ntags: [\"a\xff\"]\n", "t.rev")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(Revision::FromYaml(base + "id: a\ntags: [\"x\\ty\"]\n", "t.rev")
                  .status()
                  .IsCorruption());
  auto ok = Revision::FromYaml(
      base + "id: 3f2a-uuid_1.b\ntags: [\"daily\", \"manual:caf\\u00e9\"]\n",
      "t.rev");
  ASSERT_OK(ok.status());
  auto again = Revision::FromYaml(ok->ToYaml(), "t.rev");
  ASSERT_OK(again.status());
  EXPECT_EQ(again->tags, ok->tags);
  EXPECT_EQ(again->id, ok->id);
}

}  // namespace
}  // namespace backy::store
