// Cross-checks the test helper that writes backy 2.x repositories
// (tests/support/legacy_repo_writer.h) against the genuine repositories
// backy 2.4.3 and 2.5.3 wrote (tests/data/legacy-backy): each revision's
// image, rebuilt from its mapping's chunks, has the recorded sha256; written
// again by the helper into a new directory, it gives the same mapping file,
// .rev, config, `last` links and chunk files, byte for byte.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "legacy_repo_writer.h"
#include "store/legacy_chunk.h"
#include "support/test_util.h"

namespace backy::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChunk = 4 * 1024 * 1024;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string Sha256(const fs::path& p) {
  std::string cmd = "sha256sum '" + p.string() + "'";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return "popen failed";
  char buf[65] = {};
  size_t n = fread(buf, 1, 64, f);
  pclose(f);
  return std::string(buf, n);
}

// What a fixture .rev says, as the writer needs it.
struct FixtureRev {
  std::string uuid, timestamp, trust, duration;
  std::vector<std::string> tags;
};

FixtureRev ParseRev(const std::string& text) {
  FixtureRev r;
  std::istringstream lines(text);
  bool in_tags = false;
  for (std::string line; std::getline(lines, line);) {
    if (in_tags && line.starts_with("- ")) {
      r.tags.push_back(line.substr(2));
      continue;
    }
    in_tags = line == "tags:";
    if (line.starts_with("uuid: ")) r.uuid = line.substr(6);
    if (line.starts_with("timestamp: ")) r.timestamp = line.substr(11);
    if (line.starts_with("trust: ")) r.trust = line.substr(7);
    if (line.starts_with("  duration: ")) r.duration = line.substr(12);
  }
  return r;
}

// name -> bytes of every chunk file under DIR/chunks.
std::map<std::string, std::string> ChunkFiles(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir / "chunks")) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".chunk.lzo")) out[name] = Slurp(e.path());
  }
  return out;
}

class LegacyWriterTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fixtures_ = fs::path(BACKY_SOURCE_DIR) / "tests" / "data" / "legacy-backy";
    ASSERT_TRUE(fs::is_directory(fixtures_)) << fixtures_;
    char tmpl[] = "/tmp/legacy-writer-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
  }
  void TearDown() override {
    if (!tmp_.empty()) {
      // The writer leaves 0440 files as 2.x did; rm needs no write bit.
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  fs::path fixtures_, tmp_;
};

TEST_P(LegacyWriterTest, RewritesTheGenuineRepositoryByteForByte) {
  const std::string folder = GetParam();
  const fs::path src = fixtures_ / folder;
  const fs::path dst = tmp_ / folder;
  const fs::path image = tmp_ / "image";

  // expected.txt: folder uuid sha256 size tags
  std::map<std::string, std::pair<std::string, uint64_t>> expected;
  {
    std::istringstream lines(Slurp(fixtures_ / "expected.txt"));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string dir, uuid, sha, tags;
      uint64_t size;
      if (f >> dir >> uuid >> sha >> size >> tags && dir == folder) {
        expected[uuid] = {sha, size};
      }
    }
  }
  ASSERT_EQ(expected.size(), 3u);

  std::vector<FixtureRev> revs;
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().extension() == ".rev" && !e.is_symlink()) {
      revs.push_back(ParseRev(Slurp(e.path())));
    }
  }
  std::sort(revs.begin(), revs.end(), [](const auto& a, const auto& b) {
    return a.timestamp < b.timestamp;
  });
  ASSERT_EQ(revs.size(), 3u);

  std::smatch m;
  const std::string config = Slurp(src / "config");
  ASSERT_TRUE(std::regex_search(config, m, std::regex("/srv/images/[^ }\n]+")));
  const std::string source = m.str();

  const auto genuine_chunks = ChunkFiles(src);
  for (const auto& rev : revs) {
    SCOPED_TRACE(folder + "/" + rev.uuid);
    // Rebuild the image from the genuine mapping's chunks.
    const std::string mapping_text = Slurp(src / rev.uuid);
    auto mapping = ParseLegacyMapping(mapping_text, rev.uuid);
    ASSERT_OK(mapping.status());
    ASSERT_EQ(mapping->size, expected[rev.uuid].second);
    const uint64_t slots = (mapping->size + kChunk - 1) / kChunk;
    ASSERT_EQ(mapping->slots.size(), slots);
    {
      std::ofstream out(image, std::ios::binary | std::ios::trunc);
      for (uint64_t slot = 0; slot < slots; ++slot) {
        auto it = std::find_if(mapping->slots.begin(), mapping->slots.end(),
                               [&](const auto& e) { return e.first == slot; });
        ASSERT_NE(it, mapping->slots.end()) << slot;
        const std::string file =
            Slurp(src / "chunks" / it->second.substr(0, 2) /
                  (it->second + ".chunk.lzo"));
        std::vector<uint8_t> plain;
        ASSERT_OK(store::DecodeLegacyChunk(
            std::span(reinterpret_cast<const uint8_t*>(file.data()),
                      file.size()),
            it->second, it->second, &plain));
        const uint64_t want = std::min(kChunk, mapping->size - slot * kChunk);
        ASSERT_GE(plain.size(), want);
        out.write(reinterpret_cast<const char*>(plain.data()), want);
      }
    }
    ASSERT_EQ(fs::file_size(image), expected[rev.uuid].second);
    ASSERT_EQ(Sha256(image), expected[rev.uuid].first);

    // Write it again with the helper, as the real backy did.
    LegacyRevisionSpec spec;
    spec.version = folder == "v243" ? 24 : 25;
    spec.dir = dst.string();
    spec.image = image.string();
    spec.source = source;
    spec.uuid = rev.uuid;
    spec.tags = rev.tags;
    spec.trust = rev.trust;
    spec.timestamp = rev.timestamp;
    spec.duration = rev.duration;
    ASSERT_OK(WriteLegacyRevision(spec));

    EXPECT_EQ(Slurp(dst / rev.uuid), mapping_text);
    EXPECT_EQ(Slurp(dst / (rev.uuid + ".rev")),
              Slurp(src / (rev.uuid + ".rev")));
    struct stat st;
    ASSERT_EQ(stat((dst / rev.uuid).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0440u);
    ASSERT_EQ(stat((dst / (rev.uuid + ".rev")).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0440u);
    for (const auto& [name, bytes] : ChunkFiles(dst)) {
      auto g = genuine_chunks.find(name);
      ASSERT_NE(g, genuine_chunks.end()) << "not in the genuine one: " << name;
      EXPECT_EQ(bytes, g->second) << name;
    }
  }
  EXPECT_EQ(ChunkFiles(dst), genuine_chunks);
  EXPECT_EQ(Slurp(dst / "config"), config);
  EXPECT_EQ(Slurp(dst / "chunks" / "store"), Slurp(src / "chunks" / "store"));
  EXPECT_TRUE(fs::exists(dst / ".backup"));
  EXPECT_TRUE(fs::exists(dst / ".purge"));
  if (folder == "v243") {
    EXPECT_EQ(fs::read_symlink(dst / "last"), fs::read_symlink(src / "last"));
    EXPECT_EQ(fs::read_symlink(dst / "last.rev"),
              fs::read_symlink(src / "last.rev"));
  } else {
    EXPECT_FALSE(fs::exists(fs::symlink_status(dst / "last")));
    EXPECT_TRUE(fs::is_directory(dst / "quarantine" / "chunks"));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LegacyWriterTest,
                         ::testing::Values("v243", "v253"));

// Cases the fixtures lack, as 2.x's File would leave them.
class LegacyWriterCasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/legacy-writer-cases.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  void WriteImage(const std::string& bytes) {
    std::ofstream out(tmp_ / "img", std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  LegacyRevisionSpec Spec(int version, const std::string& uuid) {
    LegacyRevisionSpec s;
    s.version = version;
    s.dir = (tmp_ / "repo").string();
    s.image = (tmp_ / "img").string();
    s.uuid = uuid;
    return s;
  }
  fs::path tmp_;
};

TEST_F(LegacyWriterCasesTest, IncompleteRevisionHasNoDuration) {
  WriteImage(std::string(100, 'a'));
  auto spec = Spec(24, "Inc0mplete");
  spec.incomplete = true;
  ASSERT_OK(WriteLegacyRevision(spec));
  const std::string rev = Slurp(tmp_ / "repo" / "Inc0mplete.rev");
  EXPECT_EQ(rev.find("duration"), std::string::npos) << rev;
  EXPECT_NE(rev.find("stats:\n  bytes_written: 0\n"), std::string::npos) << rev;
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp_ / "repo" / "last")));
  EXPECT_EQ(Slurp(tmp_ / "repo" / "Inc0mplete"),
            "{\"mapping\": {\"0\": \"" +
                store::LegacyChunkHash(std::vector<uint8_t>(100, 'a')) +
                "\"}, \"size\": 100}");
}

TEST_F(LegacyWriterCasesTest, ParentDefaultsToTheNewestAndKeepsItsOrder) {
  // 2 slots, then 3: the new slot is appended; the parent is the first.
  WriteImage(std::string(kChunk + 10, 'x'));
  auto a = Spec(25, "First");
  a.timestamp = "2026-01-01 00:00:00+00:00";
  ASSERT_OK(WriteLegacyRevision(a));
  EXPECT_NE(Slurp(tmp_ / "repo" / "First.rev").find("parent: ''\n"),
            std::string::npos);
  WriteImage(std::string(2 * kChunk + 10, 'x'));
  auto b = Spec(25, "Second");
  b.timestamp = "2026-01-01 00:00:00.000001+00:00";
  ASSERT_OK(WriteLegacyRevision(b));
  EXPECT_NE(Slurp(tmp_ / "repo" / "Second.rev").find("parent: First\n"),
            std::string::npos);
  auto m = ParseLegacyMapping(Slurp(tmp_ / "repo" / "Second"), "Second");
  ASSERT_OK(m.status());
  ASSERT_EQ(m->slots.size(), 3u);
  EXPECT_EQ(m->slots[0].first, 0u);
  EXPECT_EQ(m->slots[2].first, 2u);
  EXPECT_EQ(m->slots[0].second, m->slots[1].second);  // both all 'x'
}

TEST_F(LegacyWriterCasesTest, ShrinkingKeepsTheOldTailAndTheBoundarySlot) {
  // 2.x writes a shorter last chunk into the old one's bytes, so its file
  // holds more than the size shows; and 2.4's truncate keeps a slot that
  // starts exactly at the new size.
  std::string big(2 * kChunk, 'y');
  WriteImage(big);
  ASSERT_OK(WriteLegacyRevision(Spec(24, "Big")));
  std::string small(kChunk + 5, 'y');
  small[kChunk] = 'z';
  WriteImage(small);
  auto s = Spec(24, "Small");
  s.parent = "Big";
  ASSERT_OK(WriteLegacyRevision(s));
  auto m = ParseLegacyMapping(Slurp(tmp_ / "repo" / "Small"), "Small");
  ASSERT_OK(m.status());
  ASSERT_EQ(m->size, kChunk + 5);
  ASSERT_EQ(m->slots.size(), 2u);
  std::string tail(kChunk, 'y');
  tail[0] = 'z';
  EXPECT_EQ(m->slots[1].second, store::LegacyChunkHash(std::vector<uint8_t>(
                                    tail.begin(), tail.end())));

  WriteImage(std::string(kChunk, 'y'));
  auto e = Spec(24, "Exact");
  e.parent = "Big";
  ASSERT_OK(WriteLegacyRevision(e));
  m = ParseLegacyMapping(Slurp(tmp_ / "repo" / "Exact"), "Exact");
  ASSERT_OK(m.status());
  EXPECT_EQ(m->slots.size(), 2u) << "2.4 keeps slot 1 at size 4 MiB";
}

TEST_F(LegacyWriterCasesTest, RefusesWhatPyYamlWouldQuoteDifferently) {
  WriteImage("abc");
  auto s = Spec(25, "bad uuid");
  EXPECT_TRUE(WriteLegacyRevision(s).IsInvalidArgument());
  s = Spec(25, "Good");
  s.tags = {"daily", "x:"};
  EXPECT_TRUE(WriteLegacyRevision(s).IsInvalidArgument());
}

}  // namespace
}  // namespace backy::testing
