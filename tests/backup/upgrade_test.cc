// Tests for `backy upgrade` (backup/upgrade.h): 2.x repositories written
// here with the 2.x chunk codec (and the genuine ones of tests/data) are
// converted; every revision reads the same before and after; a second
// upgrade is a no-op; damage and held locks stop it before anything is
// removed; an interrupted upgrade resumes.
#include "backup/upgrade.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/digest.h"
#include "store/filename.h"
#include "store/fs_util.h"
#include "store/legacy_chunk.h"
#include "store/legacy_repository.h"
#include "store/repository.h"
#include "store/test_point.h"
#include "support/legacy_repo_writer.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

namespace fs = std::filesystem;
using store::Repository;
using store::Revision;

constexpr size_t kChunk = 4 << 20;

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A 2.x revision to write: `image` is the whole image; slots in `omit`
// are left out of the mapping (2.x reads them as zeros).
struct LegacyRev {
  std::string id;
  std::string parent;
  std::string timestamp;  // as 2.x wrote it
  std::vector<std::string> tags;
  std::string trust = "trusted";
  bool complete = true;
  std::vector<uint8_t> image;
  std::set<size_t> omit;
};

// Writes a 2.x repository as backy 2.5 did: config, .backup/.purge,
// chunks/store, <uuid>.rev, <uuid> (JSON mapping), chunks/xx/<h>.chunk.lzo.
void WriteLegacyRepository(
    const fs::path& dir, const std::vector<LegacyRev>& revs,
    const std::string& source = "{type: file, filename: /nonexistent.raw}") {
  fs::create_directories(dir / "chunks");
  WriteText(dir / "config", "source: " + source +
                                "\nschedule:\n  daily: {interval: 1d, "
                                "keep: 9}\n");
  WriteText(dir / ".backup", "");
  WriteText(dir / ".purge", "");
  WriteText(dir / "chunks" / "store", "v2");
  for (const LegacyRev& r : revs) {
    std::string mapping = "{\"mapping\": {";
    bool first = true;
    for (size_t slot = 0; slot * kChunk < r.image.size(); ++slot) {
      if (r.omit.count(slot)) continue;
      std::span<const uint8_t> plain(
          r.image.data() + slot * kChunk,
          std::min(kChunk, r.image.size() - slot * kChunk));
      const std::string hash = store::LegacyChunkHash(plain);
      const fs::path file =
          dir / "chunks" / hash.substr(0, 2) / (hash + ".chunk.lzo");
      if (!fs::exists(file)) {
        fs::create_directories(file.parent_path());
        std::vector<uint8_t> bytes;
        ASSERT_OK(store::EncodeLegacyChunk(plain, &bytes));
        std::ofstream(file, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()));
      }
      mapping += std::string(first ? "" : ", ") + "\"" + std::to_string(slot) +
                 "\": \"" + hash + "\"";
      first = false;
    }
    mapping += "}, \"size\": " + std::to_string(r.image.size()) + "}";
    WriteText(dir / r.id, mapping);
    std::string rev =
        "backend_type: chunked\nparent: '" + r.parent +
        "'\nstats:\n  bytes_written: " + std::to_string(r.image.size()) + "\n";
    if (r.complete) rev += "  duration: 1.5\n";
    rev += "tags:\n";
    for (const auto& t : r.tags) rev += "- " + t + "\n";
    rev += "timestamp: " + r.timestamp + "\ntrust: " + r.trust +
           "\nuuid: " + r.id + "\n";
    WriteText(dir / (r.id + ".rev"), rev);
  }
}

// Every byte of `rev`, read slot by slot through the store its index names
// (2.x or ours), each chunk checked.
std::vector<uint8_t> ReadImage(Repository& repo, const Revision& rev) {
  auto index = repo.LoadIndex(rev);
  EXPECT_OK(index.status());
  if (!index.ok()) return {};
  std::vector<uint8_t> out(index->image_size(), 0);
  for (size_t i = 0; i < index->slot_count(); ++i) {
    if (index->IsZero(i)) continue;
    std::vector<uint8_t> chunk;
    Status s = repo.ChunksOf(rev).Get(index->slot(i), &chunk);
    EXPECT_OK(s);
    EXPECT_EQ(chunk.size(), index->SlotLength(i)) << rev.id << " slot " << i;
    std::copy(chunk.begin(), chunk.end(), out.begin() + i * kChunk);
  }
  return out;
}

std::vector<uint8_t> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Three complete revisions and an incomplete one: random data, a written
// all-zero chunk, text, a short last chunk; later revisions change a few
// bytes, leave a slot out of the mapping, are distrusted.
std::vector<LegacyRev> ThreeRevisions() {
  std::vector<uint8_t> img = Random(kChunk, 1);
  img.resize(2 * kChunk, 0);  // slot 1: zeros, stored by 2.x as a chunk
  while (img.size() < 3 * kChunk) {
    const std::string line = "text line " + std::to_string(img.size()) + "\n";
    img.insert(img.end(), line.begin(), line.end());
  }
  img.resize(3 * kChunk);
  const auto tail = Random(kChunk / 3 + 123, 2);
  img.insert(img.end(), tail.begin(), tail.end());

  LegacyRev a{"Aaaaaaaaaaaaaaaaaaaaa1",
              "",
              "2026-01-01 00:00:00+00:00",
              {"daily"},
              "trusted",
              true,
              img,
              {}};
  LegacyRev b = a;
  b.id = "Bbbbbbbbbbbbbbbbbbbbb2";
  b.parent = a.id;
  b.timestamp = "2026-01-02 00:00:00.250000+00:00";
  b.tags = {"daily", "weekly"};
  b.trust = "distrusted";
  b.image[100] ^= 0xff;
  b.image[3 * kChunk + 5] ^= 0x55;
  LegacyRev c = b;
  c.id = "Ccccccccccccccccccccc3";
  c.parent = b.id;
  c.timestamp = "2026-01-03 00:00:00+00:00";
  c.tags = {"manual:before-upgrade"};
  c.trust = "trusted";
  c.omit = {2};
  std::fill(c.image.begin() + 2 * kChunk, c.image.begin() + 3 * kChunk, 0);
  LegacyRev d = c;
  d.id = "Ddddddddddddddddddddd4";
  d.parent = c.id;
  d.timestamp = "2026-01-04 00:00:00+00:00";
  d.complete = false;
  return {a, b, c, d};
}

struct Snapshot {
  std::vector<Revision> revisions;
  std::map<std::string, std::vector<uint8_t>> images;
};

Snapshot Take(const fs::path& dir) {
  auto repo = Repository::Open(dir);
  EXPECT_OK(repo.status());
  Snapshot snap;
  if (!repo.ok()) return snap;
  auto revs = (*repo)->Revisions();
  EXPECT_OK(revs.status());
  if (!revs.ok()) return snap;
  snap.revisions = *revs;
  for (const auto& r : *revs) snap.images[r.id] = ReadImage(**repo, r);
  return snap;
}

void ExpectSameRevisions(const Snapshot& before, const Snapshot& after) {
  ASSERT_EQ(before.revisions.size(), after.revisions.size());
  for (size_t i = 0; i < before.revisions.size(); ++i) {
    const Revision& b = before.revisions[i];
    const Revision& a = after.revisions[i];
    EXPECT_EQ(b.id, a.id);
    EXPECT_EQ(b.timestamp_us, a.timestamp_us) << b.id;
    EXPECT_EQ(b.parent, a.parent) << b.id;
    EXPECT_EQ(b.tags, a.tags) << b.id;
    EXPECT_EQ(b.trust, a.trust) << b.id;
    EXPECT_EQ(b.size, a.size) << b.id;
    EXPECT_EQ(b.stats.bytes_written, a.stats.bytes_written) << b.id;
    EXPECT_DOUBLE_EQ(b.stats.duration, a.stats.duration) << b.id;
    EXPECT_TRUE(before.images.at(b.id) == after.images.at(a.id)) << b.id;
  }
}

// The names in `dir` (recursively) that only a 2.x repository has.
std::vector<std::string> LegacyNames(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string rel = fs::relative(e.path(), dir).string();
    if (name.ends_with(".chunk.lzo") || name == ".backup" || name == ".purge" ||
        rel == "chunks/store" || name == "last" || name == "last.rev" ||
        (e.path().parent_path() == dir && name != "config" && name != "lock" &&
         name != "purge.lock" && name != "chunks" && name != "revisions" &&
         name != "tmp")) {
      out.push_back(rel);
    }
  }
  return out;
}

class UpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("backy-upgrade-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(UpgradeTest, EveryRevisionReadsTheSameAfterwards) {
  const auto revs = ThreeRevisions();
  WriteLegacyRepository(dir_, revs);
  const Snapshot before = Take(dir_);
  ASSERT_EQ(before.revisions.size(), 3u);  // the incomplete one is no revision
  ASSERT_TRUE(before.revisions[0].legacy);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(before.images.at(revs[i].id) == revs[i].image) << revs[i].id;
  }

  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_FALSE(sum->was_current);
  EXPECT_FALSE(sum->clean_up_only);
  EXPECT_EQ(sum->revisions_converted, 3u);
  EXPECT_EQ(sum->image_bytes, 3 * revs[0].image.size());
  // Slot 1 (written zeros) and c's omitted slot 2 have no chunk; slots
  // shared by the revisions are decoded once.
  EXPECT_GE(sum->zero_slots, 2u);
  EXPECT_GT(sum->slots_deduplicated, 0u);
  EXPECT_EQ(sum->chunks_written, sum->legacy_chunks_read - 1);  // not zeros

  const Snapshot after = Take(dir_);
  ExpectSameRevisions(before, after);
  for (const auto& r : after.revisions) EXPECT_FALSE(r.legacy) << r.id;
  auto repo = Repository::Open(dir_);
  ASSERT_OK(repo.status());
  EXPECT_FALSE((*repo)->legacy());
  EXPECT_EQ((*repo)->config().source.at("type"), "file");
  EXPECT_EQ((*repo)->config().schedule.tags.count("daily"), 1u);
  EXPECT_TRUE(LegacyNames(dir_).empty())
      << "left: " << ::testing::PrintToString(LegacyNames(dir_));
  // An ordinary repository: backups are allowed, the layout is Init's.
  EXPECT_OK((*repo)->RequireCurrentFormat("backup"));
  for (const char* sub : {"", "chunks", "revisions", "tmp"}) {
    struct stat st;
    ASSERT_EQ(::stat((dir_ / sub).c_str(), &st), 0) << sub;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << sub;
  }
}

TEST_F(UpgradeTest, SecondUpgradeIsANoOp) {
  WriteLegacyRepository(dir_, ThreeRevisions());
  ASSERT_OK(Upgrade(dir_.string(), {}).status());
  const Snapshot before = Take(dir_);
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_TRUE(sum->was_current);
  EXPECT_EQ(sum->files_removed, 0u);
  ExpectSameRevisions(before, Take(dir_));
}

TEST_F(UpgradeTest, CurrentRepositoryIsANoOp) {
  store::RepositoryConfig config;
  config.source = {{"type", "file"}, {"filename", "/x"}};
  ASSERT_OK(Repository::Init(dir_.string(), config));
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_TRUE(sum->was_current);
}

TEST_F(UpgradeTest, DamagedChunkStopsBeforeAnythingIsRemoved) {
  auto revs = ThreeRevisions();
  WriteLegacyRepository(dir_, revs);
  // The third slot's chunk of revision a (text), which b shares.
  std::span<const uint8_t> slot2(revs[0].image.data() + 2 * kChunk, kChunk);
  const std::string hash = store::LegacyChunkHash(slot2);
  const fs::path file =
      dir_ / "chunks" / hash.substr(0, 2) / (hash + ".chunk.lzo");
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x55');
  }
  const auto files_before = LegacyNames(dir_);
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_FALSE(sum.ok());
  EXPECT_TRUE(sum.status().IsCorruption()) << sum.status().ToString();
  const std::string msg = sum.status().ToString();
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(revs[0].id), std::string::npos) << msg;
  EXPECT_NE(msg.find("nothing was removed"), std::string::npos) << msg;
  EXPECT_EQ(LegacyNames(dir_), files_before);
  auto repo = Repository::Open(dir_);
  ASSERT_OK(repo.status());
  EXPECT_TRUE((*repo)->legacy());
  // c does not need the damaged chunk (its slot 2 is left out): it reads.
  auto r = (*repo)->Revisions();
  ASSERT_OK(r.status());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE(ReadImage(**repo, (*r)[2]) == revs[2].image);
}

TEST_F(UpgradeTest, DamagedRevisionIsRefused) {
  WriteLegacyRepository(dir_, ThreeRevisions());
  WriteText(dir_ / "Bbbbbbbbbbbbbbbbbbbbb2.rev", "uuid: [broken\n");
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_FALSE(sum.ok());
  EXPECT_NE(sum.status().ToString().find("Bbbbbbbbbbbbbbbbbbbbb2"),
            std::string::npos)
      << sum.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "revisions"));  // nothing converted
}

TEST_F(UpgradeTest, HeldLegacyLocksRefuseAtOnce) {
  WriteLegacyRepository(dir_, ThreeRevisions());
  for (const char* lock : {".purge", ".backup"}) {
    auto held = store::FileLock::Acquire((dir_ / lock).string(),
                                         store::FileLock::Mode::kShared);
    ASSERT_OK(held.status());
    auto sum = Upgrade(dir_.string(), {});
    ASSERT_FALSE(sum.ok()) << lock;
    EXPECT_TRUE(sum.status().IsBusy()) << sum.status().ToString();
    EXPECT_NE(sum.status().ToString().find((dir_ / lock).string()),
              std::string::npos)
        << sum.status().ToString();
    EXPECT_FALSE(fs::exists(dir_ / "revisions")) << lock;
  }
  // With `wait`, the upgrade waits until the lock is free.
  auto held = store::FileLock::Acquire((dir_ / ".purge").string(),
                                       store::FileLock::Mode::kShared);
  ASSERT_OK(held.status());
  std::atomic<bool> waited{false};
  UpgradeOptions options;
  options.wait = true;
  options.on_wait = [&](const std::string& lock) {
    EXPECT_EQ(lock, (dir_ / ".purge").string());
    waited = true;
    *held = store::FileLock();  // the 2.x process ends
  };
  ASSERT_OK(Upgrade(dir_.string(), options).status());
  EXPECT_TRUE(waited);
}

TEST_F(UpgradeTest, InterruptedUpgradeResumes) {
  const auto revs = ThreeRevisions();
  WriteLegacyRepository(dir_, revs);
  const Snapshot before = Take(dir_);
  std::atomic<bool> cancel{false};
  {
    // Stops after the first revision is published.
    ScopedTestPoint stop("upgrade-published", [&] { cancel = true; });
    UpgradeOptions options;
    options.cancel = &cancel;
    auto sum = Upgrade(dir_.string(), options);
    ASSERT_FALSE(sum.ok());
    EXPECT_TRUE(sum.status().IsInterrupted()) << sum.status().ToString();
  }
  // Half-way: one revision in our form, two in 2.x's, all reading alike.
  const Snapshot middle = Take(dir_);
  ExpectSameRevisions(before, middle);
  ASSERT_EQ(middle.revisions.size(), 3u);
  EXPECT_FALSE(middle.revisions[0].legacy);
  EXPECT_TRUE(middle.revisions[1].legacy);

  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_EQ(sum->revisions_converted, 2u);
  EXPECT_EQ(sum->revisions_resumed, 1u);
  ExpectSameRevisions(before, Take(dir_));
  EXPECT_TRUE(LegacyNames(dir_).empty());
}

// A crash is simulated by a test point that throws: the upgrade stops
// there, its locks are released, nothing after it runs.
struct Crash {};

TEST_F(UpgradeTest, CleanUpInterruptedAfterTheConfigIsFinished) {
  WriteLegacyRepository(dir_, ThreeRevisions());
  const Snapshot before = Take(dir_);
  for (const char* point : {"upgrade-config", "upgrade-removing"}) {
    SCOPED_TRACE(point);
    {
      ScopedTestPoint crash(point, [] { throw Crash{}; });
      EXPECT_THROW((void)Upgrade(dir_.string(), {}), Crash);
    }
    auto repo = Repository::Open(dir_);
    ASSERT_OK(repo.status());
    EXPECT_FALSE((*repo)->legacy());
    EXPECT_FALSE(LegacyNames(dir_).empty());
    ExpectSameRevisions(before, Take(dir_));
  }
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_FALSE(sum->was_current);
  EXPECT_TRUE(sum->clean_up_only);
  EXPECT_EQ(sum->revisions_converted, 0u);
  EXPECT_GT(sum->files_removed, 0u);
  EXPECT_TRUE(LegacyNames(dir_).empty());
  ExpectSameRevisions(before, Take(dir_));
  EXPECT_TRUE(Upgrade(dir_.string(), {})->was_current);
}

TEST_F(UpgradeTest, PlanCountsWhatItWouldConvert) {
  const auto revs = ThreeRevisions();
  WriteLegacyRepository(dir_, revs);
  auto repo = store::DirectoryRepository::Open(dir_);
  ASSERT_OK(repo.status());
  auto plan = PlanUpgrade(**repo, /*measure=*/true);
  ASSERT_OK(plan.status());
  EXPECT_TRUE(plan->legacy_config);
  EXPECT_EQ(plan->to_convert.size(), 3u);
  EXPECT_EQ(plan->incomplete, std::vector<std::string>{revs[3].id});
  EXPECT_EQ(plan->image_bytes, 3 * revs[0].image.size());
  // a: 4 chunks; b: 2 changed; c: the same as b but slot 2 left out.
  EXPECT_EQ(plan->legacy_chunks, 6u);
  EXPECT_GT(plan->legacy_chunk_file_bytes, 0u);
  EXPECT_LT(plan->legacy_chunk_file_bytes, plan->legacy_chunk_plain_bytes);
  EXPECT_FALSE(plan->NothingToDo());
}

// 2.4 kept the old tail in the last chunk file of an image that shrank:
// only the image's bytes are converted.
TEST_F(UpgradeTest, LastChunkLongerThanAShrunkImage) {
  auto revs = ThreeRevisions();
  revs.resize(1);
  WriteLegacyRepository(dir_, revs);
  const uint64_t size = 3 * kChunk + 1000;  // the last slot: 1000 bytes
  std::string mapping;
  ASSERT_OK(store::ReadWholeFile((dir_ / revs[0].id).string(), &mapping));
  const auto at = mapping.rfind("\"size\": ");
  ASSERT_NE(at, std::string::npos);
  WriteText(dir_ / revs[0].id,
            mapping.substr(0, at) + "\"size\": " + std::to_string(size) + "}");
  ASSERT_OK(Upgrade(dir_.string(), {}).status());
  const Snapshot after = Take(dir_);
  ASSERT_EQ(after.revisions.size(), 1u);
  std::vector<uint8_t> expected(revs[0].image.begin(),
                                revs[0].image.begin() + size);
  EXPECT_TRUE(after.images.at(revs[0].id) == expected);
}

// A 2.4 repository as tests/support/legacy_repo_writer.h writes it (flat
// config, 0440 chunk files, `last` links, an incomplete backup last): each
// converted revision holds the image as it was at its backup.
TEST_F(UpgradeTest, RepositoryOfBacky24) {
  const fs::path img = dir_.string() + ".img";
  std::vector<uint8_t> data = Random(2 * kChunk + 5000, 9);
  std::fill(data.begin() + kChunk, data.begin() + kChunk + 100000, 0);
  std::map<std::string, std::vector<uint8_t>> expected;
  const char* ids[] = {"V24aaaaaaaaaaaaaaaaaa1", "V24bbbbbbbbbbbbbbbbbb2",
                       "V24cccccccccccccccccc3", "V24dddddddddddddddddd4"};
  for (int i = 0; i < 4; ++i) {
    data[static_cast<size_t>(i) * 1234567] ^= 0x5a;
    std::ofstream(img, std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()),
               static_cast<std::streamsize>(data.size()));
    backy::testing::LegacyRevisionSpec spec;
    spec.version = 24;
    spec.dir = dir_.string();
    spec.image = img.string();
    spec.uuid = ids[i];
    spec.tags = {"daily"};
    spec.timestamp = "2026-01-0" + std::to_string(i + 1) + " 10:00:00+00:00";
    spec.incomplete = i == 3;
    ASSERT_OK(backy::testing::WriteLegacyRevision(spec));
    if (i < 3) expected[ids[i]] = data;
  }
  fs::remove(img);
  ASSERT_TRUE(fs::is_symlink(dir_ / "last"));
  auto sum = Upgrade(dir_.string(), {});
  ASSERT_OK(sum.status());
  EXPECT_EQ(sum->revisions_converted, 3u);
  const Snapshot after = Take(dir_);
  ASSERT_EQ(after.revisions.size(), 3u);
  for (const auto& r : after.revisions) {
    EXPECT_FALSE(r.legacy);
    EXPECT_TRUE(after.images.at(r.id) == expected.at(r.id)) << r.id;
  }
  EXPECT_EQ(after.revisions[1].parent, ids[0]);
  EXPECT_TRUE(LegacyNames(dir_).empty())
      << ::testing::PrintToString(LegacyNames(dir_));
}

TEST(UpgradeConfigTest, FlyingcircusBecomesCephRbd) {
  store::RepositoryConfig old;
  old.legacy = true;
  old.source = {{"type", "flyingcircus"},
                {"pool", "rbd.ssd"},
                {"image", "vm1.root"},
                {"vm", "vm1"},
                {"consul_acl_token_file", "/etc/consul/token"},
                {"full-always", "true"}};
  const auto c = CurrentConfigFor(old);
  EXPECT_FALSE(c.legacy);
  EXPECT_EQ(c.source,
            (std::map<std::string, std::string>{{"type", "ceph-rbd"},
                                                {"pool", "rbd.ssd"},
                                                {"image", "vm1.root"},
                                                {"full-always", "true"}}));
  store::RepositoryConfig file;
  file.legacy = true;
  file.source = {{"type", "file"}, {"filename", "/img"}};
  EXPECT_EQ(CurrentConfigFor(file).source, file.source);
}

// The genuine 2.x repositories: every revision reads the same before (2.x
// chunks, each checked against its MurmurHash3) and after the upgrade.
// (tests/e2e/legacy_upgrade.sh checks the sha256 of expected.txt.)
TEST_F(UpgradeTest, GenuineRepositories) {
  const fs::path data = fs::path(BACKY_SOURCE_DIR) / "tests/data/legacy-backy";
  std::ifstream expected(data / "expected.txt");
  ASSERT_TRUE(expected) << data;
  std::map<std::string, std::map<std::string, std::string>> sha;  // dir, id
  for (std::string folder, id, hash, size, tags;
       expected >> folder >> id >> hash >> size >> tags;) {
    sha[folder][id] = hash;
  }
  for (const char* folder : {"v243", "v253"}) {
    const fs::path dir = dir_ / folder;
    fs::create_directories(dir_);
    fs::copy(data / folder, dir,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    const Snapshot before = Take(dir);
    ASSERT_OK(Upgrade(dir.string(), {}).status());
    const Snapshot after = Take(dir);
    ExpectSameRevisions(before, after);
    ASSERT_EQ(after.revisions.size(), sha[folder].size());
    for (const auto& r : after.revisions) {
      EXPECT_EQ(sha[folder].count(r.id), 1u) << r.id;
    }
    EXPECT_TRUE(LegacyNames(dir).empty())
        << ::testing::PrintToString(LegacyNames(dir));
  }
}

}  // namespace
}  // namespace backy::backup
