// Tests for reading backy 2.x repositories in place (store/legacy_repository.h,
// store/legacy_chunk_store.h, and Repository in its legacy() mode), on
// copies of the genuine 2.x repositories in tests/data/legacy-backy.
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "store/directory_repository.h"
#include "store/filename.h"
#include "store/legacy_chunk.h"
#include "store/legacy_repository.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures =
    fs::path(BACKY_SOURCE_DIR) / "tests" / "data" / "legacy-backy";

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const fs::path& p, const std::string& text) {
  fs::permissions(p.parent_path(), fs::perms::owner_all, fs::perm_options::add);
  if (fs::exists(p)) {
    fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
  }
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Every entry under `dir` with its type, size, mode and mtime: what
// "reading changes nothing" compares.
std::map<std::string, std::string> TreeState(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    out[e.path().string()] = std::to_string(st.st_mode) + " " +
                             std::to_string(st.st_size) + " " +
                             std::to_string(st.st_mtim.tv_sec) + "." +
                             std::to_string(st.st_mtim.tv_nsec);
  }
  return out;
}

class LegacyRepositoryTest : public ::testing::Test {
 protected:
  LegacyRepositoryTest() {
    char tmpl[] = "/tmp/backy-legacy-XXXXXX";
    tmp_ = ::mkdtemp(tmpl);
    fs::copy(kFixtures, tmp_,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    v243_ = tmp_ + "/v243";
    v253_ = tmp_ + "/v253";
  }
  ~LegacyRepositoryTest() override { fs::remove_all(tmp_); }

  std::unique_ptr<DirectoryRepository> Open(const std::string& dir) {
    auto r = DirectoryRepository::Open(dir);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  // The whole image of `rev`, read slot by slot through the repository.
  Status ReadImage(Repository& repo, const Revision& rev,
                   std::vector<uint8_t>* image) {
    auto index = repo.LoadIndex(rev);
    if (!index.ok()) return index.status();
    image->clear();
    std::vector<uint8_t> chunk;
    for (size_t i = 0; i < index->slot_count(); ++i) {
      if (index->IsZero(i)) {
        image->resize(image->size() + index->SlotLength(i), 0);
        continue;
      }
      Status s = repo.ChunksOf(rev).Get(index->slot(i), &chunk);
      if (!s.ok()) return s;
      if (chunk.size() != index->SlotLength(i)) {
        return Status::Corruption("wrong chunk size");
      }
      image->insert(image->end(), chunk.begin(), chunk.end());
    }
    return Status::OK();
  }

  std::string tmp_, v243_, v253_;
};

TEST_F(LegacyRepositoryTest, BothVersionsListTheirRevisionsAsTheRevFilesSay) {
  auto repo = Open(v253_);
  ASSERT_TRUE(repo);
  EXPECT_TRUE(repo->legacy());
  EXPECT_EQ(repo->config().source.at("type"), "file");
  EXPECT_EQ(repo->config().schedule.tags.at("daily").keep, 9u);
  auto revs = repo->Revisions();
  ASSERT_OK(revs.status());
  ASSERT_EQ(revs->size(), 3u);
  EXPECT_EQ((*revs)[0].id, "89tFbaqKqpCNiD4LjjZTdF");
  EXPECT_EQ((*revs)[0].parent, "");
  EXPECT_EQ((*revs)[1].id, "bRE8tzxPYvk9V64VpALFMo");
  EXPECT_EQ((*revs)[1].parent, "89tFbaqKqpCNiD4LjjZTdF");
  EXPECT_EQ((*revs)[1].trust, Trust::kDistrusted);
  EXPECT_EQ((*revs)[1].tags, (std::set<std::string>{"daily", "weekly"}));
  EXPECT_EQ((*revs)[2].id, "57j9s64BLJy5eRB52bv3nq");
  EXPECT_EQ((*revs)[2].tags, (std::set<std::string>{"manual:before-upgrade"}));
  for (const auto& r : *revs) {
    EXPECT_TRUE(r.legacy);
    EXPECT_EQ(r.size, 23592960u);
    EXPECT_EQ(r.chunk_size, kLegacyChunkSize);
    EXPECT_EQ(r.source, "file:/srv/images/vm253.raw");
    EXPECT_GT(r.stats.duration, 0);
    EXPECT_EQ(r.stats.bytes_written, 23592960u);
  }
  EXPECT_EQ(*ParseTimestamp("2026-12-01 19:37:34.453883+00:00"),
            (*revs)[0].timestamp_us);

  auto old = Open(v243_);
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->legacy());
  EXPECT_EQ(old->config().source.at("filename"), "/srv/images/vm243.raw");
  auto list = old->ScanRevisions();
  ASSERT_OK(list.status());
  // last.rev (a symlink) is not a revision, nor damage.
  EXPECT_EQ(list->healthy.size(), 3u);
  EXPECT_TRUE(list->damaged.empty());
}

TEST_F(LegacyRepositoryTest, LastAsAPlainFileIsNotARevision) {
  // Where git checks symlinks out as files naming their targets.
  fs::remove(v243_ + "/last.rev");
  WriteText(v243_ + "/last.rev", "JensP9UhQaqULF9Weon7tM.rev");
  auto list = Open(v243_)->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_EQ(list->healthy.size(), 3u);
  EXPECT_TRUE(list->damaged.empty());
}

TEST_F(LegacyRepositoryTest, ImagesReadThroughTheRepositoryAreWhole) {
  auto repo = Open(v253_);
  auto revs = repo->Revisions();
  ASSERT_OK(revs.status());
  std::vector<uint8_t> first, last;
  ASSERT_OK(ReadImage(*repo, revs->front(), &first));
  ASSERT_OK(ReadImage(*repo, revs->back(), &last));
  EXPECT_EQ(first.size(), 23592960u);
  EXPECT_EQ(last.size(), 23592960u);
  EXPECT_NE(first, last);
  // An open reader reads what Get() reads.
  auto index = repo->LoadIndex(revs->back());
  ASSERT_OK(index.status());
  auto reader = repo->ChunksOf(revs->back()).Open(index->slot(5));
  ASSERT_OK(reader.status());
  EXPECT_EQ((*reader)->PlainSize(), index->SlotLength(5));
  EXPECT_EQ((*reader)->BlockSize(), (*reader)->PlainSize());
  std::vector<uint8_t> part(4096);
  ASSERT_OK((*reader)->Read(100000, part));
  EXPECT_TRUE(std::equal(part.begin(), part.end(),
                         last.begin() + 5 * kLegacyChunkSize + 100000));
}

TEST_F(LegacyRepositoryTest, ReadingChangesNothing) {
  const auto before = TreeState(tmp_);
  for (const auto& dir : {v243_, v253_}) {
    auto repo = Open(dir);
    auto lock = repo->LockReader();
    ASSERT_OK(lock.status());
    auto revs = repo->Revisions();
    ASSERT_OK(revs.status());
    std::vector<uint8_t> image;
    for (const auto& r : *revs) ASSERT_OK(ReadImage(*repo, r, &image));
  }
  EXPECT_EQ(TreeState(tmp_), before);
}

TEST_F(LegacyRepositoryTest, ReadersHoldPurgeSharedAsBacky2Did) {
  auto repo = Open(v253_);
  auto lock = repo->LockReader();
  ASSERT_OK(lock.status());
  // A 2.x purge (exclusive, non-blocking) cannot start meanwhile...
  const int fd = ::open((v253_ + "/.purge").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  // ... but another reader (shared) can.
  EXPECT_EQ(::flock(fd, LOCK_SH | LOCK_NB), 0);
  ::close(fd);
  // A 2.x backup holds .backup: our writers (distrust, forget) are Busy.
  const int b = ::open((v253_ + "/.backup").c_str(), O_RDONLY);
  ASSERT_EQ(::flock(b, LOCK_EX | LOCK_NB), 0);
  EXPECT_TRUE(repo->LockWriter("distrust").status().IsBusy());
  ::close(b);
  EXPECT_OK(repo->LockWriter("distrust").status());
}

TEST_F(LegacyRepositoryTest, ConvertedRevisionShadowsItsLegacyForm) {
  auto repo = Open(v253_);
  auto revs = repo->Revisions();
  ASSERT_OK(revs.status());
  // What `upgrade` does for one revision, by hand: publish its new form.
  fs::create_directories(RevisionsDirName(v253_));
  fs::create_directories(TmpDirName(v253_));
  Revision converted = revs->front();
  converted.legacy = false;
  ASSERT_OK(repo->Publish(converted,
                          RevisionIndex(converted.size, kLegacyChunkSize)));
  auto again = Open(v253_)->Revisions();
  ASSERT_OK(again.status());
  ASSERT_EQ(again->size(), 3u);
  EXPECT_FALSE((*again)[0].legacy);
  EXPECT_EQ((*again)[0].id, converted.id);
  EXPECT_TRUE((*again)[1].legacy);
}

TEST_F(LegacyRepositoryTest, IncompleteRevisionIsNotListed) {
  const std::string rev = v253_ + "/57j9s64BLJy5eRB52bv3nq.rev";
  std::string text = ReadText(rev);
  const auto pos = text.find("  duration:");
  ASSERT_NE(pos, std::string::npos);
  text.erase(pos, text.find('\n', pos) - pos + 1);
  WriteText(rev, text);
  auto list = ScanLegacyRevisions(v253_, "x");
  ASSERT_OK(list.status());
  EXPECT_EQ(list->complete.size(), 2u);
  EXPECT_EQ(list->incomplete,
            std::vector<std::string>{"57j9s64BLJy5eRB52bv3nq"});
  EXPECT_TRUE(list->damaged.empty());
}

TEST_F(LegacyRepositoryTest, DamagedMappingsAreCorruptionNamingTheFile) {
  const std::string id = "57j9s64BLJy5eRB52bv3nq";
  const std::string path = v253_ + "/" + id;
  const std::string good = ReadText(path);
  const std::string hash = "9a5540867be0aed89f57280044c4843d";
  for (const std::string& bad :
       {std::string("not json"), good.substr(0, good.size() / 2),
        std::string("{\"mapping\": {\"0\": \"zz\"}, \"size\": 10}"),
        std::string("{\"mapping\": {\"0\": \"") + hash + "\"}}",
        std::string("{\"size\": 10}"),
        std::string("{\"mapping\": {\"7\": \"") + hash + "\"}, \"size\": 10}",
        std::string("{\"mapping\": {\"-1\": \"") + hash + "\"}, \"size\": 10}",
        std::string("{\"mapping\": {\"x\": \"") + hash + "\"}, \"size\": 10}",
        std::string("{\"mapping\": {}, \"size\": -5}"),
        std::string("{\"mapping\": {}, \"size\": 99999999999999999999}"),
        std::string("{\"mapping\": [1], \"size\": 10}"), std::string("[]")}) {
    WriteText(path, bad);
    auto index = LoadLegacyIndex(v253_, id);
    ASSERT_FALSE(index.ok()) << bad;
    EXPECT_TRUE(index.status().IsCorruption()) << index.status().ToString();
    EXPECT_NE(index.status().ToString().find(path), std::string::npos)
        << index.status().ToString();
  }
  // Damage found by the scan lists the revision as damaged, the rest stay.
  WriteText(path, "{\"mapping\": {}");
  auto list = Open(v253_)->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_EQ(list->healthy.size(), 2u);
  ASSERT_EQ(list->damaged.size(), 1u);
  EXPECT_EQ(list->damaged[0].id, id);
  // The slot 2.4 kept at exactly the size of a shrunk image is ignored; one
  // further out is damage.
  WriteText(path, "{\"mapping\": {\"0\": \"" + hash + "\", \"2\": \"" + hash +
                      "\"}, \"size\": 8388608}");
  auto shrunk = LoadLegacyIndex(v253_, id);
  ASSERT_OK(shrunk.status());
  EXPECT_EQ(shrunk->slot_count(), 2u);
  WriteText(path,
            "{\"mapping\": {\"3\": \"" + hash + "\"}, \"size\": 8388608}");
  EXPECT_TRUE(LoadLegacyIndex(v253_, id).status().IsCorruption());
  // A slot left out reads as zeros, as in 2.x.
  WriteText(path,
            "{\"mapping\": {\"1\": \"" + hash + "\"}, \"size\": 8388608}");
  auto index = LoadLegacyIndex(v253_, id);
  ASSERT_OK(index.status());
  EXPECT_TRUE(index->IsZero(0));
  EXPECT_EQ(index->slot(1).Hex(), hash);
}

TEST_F(LegacyRepositoryTest, DamagedRevFilesAreListedDamaged) {
  WriteText(v253_ + "/57j9s64BLJy5eRB52bv3nq.rev", "uuid: [oops\n");
  WriteText(v253_ + "/bRE8tzxPYvk9V64VpALFMo.rev",
            "uuid: someoneelse\ntimestamp: 2026-12-01 19:37:35\n"
            "stats: {duration: 1}\n");
  auto list = Open(v253_)->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_EQ(list->healthy.size(), 1u);
  ASSERT_EQ(list->damaged.size(), 2u);
  for (const auto& d : list->damaged) {
    EXPECT_TRUE(d.status.IsCorruption()) << d.status.ToString();
    EXPECT_NE(d.status.ToString().find(".rev"), std::string::npos);
  }
}

TEST_F(LegacyRepositoryTest, DamagedAndMissingChunksAreCorruptionNamingThem) {
  auto repo = Open(v253_);
  auto revs = repo->Revisions();
  auto index = repo->LoadIndex(revs->back());
  ASSERT_OK(index.status());
  ChunkStore& chunks = repo->ChunksOf(revs->back());
  const Digest d0 = index->slot(0);
  const std::string path = LegacyChunkFileName(ChunksDirName(v253_), d0);
  EXPECT_EQ(chunks.ChunkName(d0), path);
  std::string bytes = ReadText(path);
  bytes[bytes.size() / 2] ^= 0x40;
  WriteText(path, bytes);
  std::vector<uint8_t> out;
  Status s = chunks.Get(d0, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find(path), std::string::npos);
  EXPECT_TRUE(out.empty());
  fs::remove(path);
  s = chunks.Get(d0, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find(path), std::string::npos);
  EXPECT_TRUE(chunks.Open(d0).status().IsCorruption());
  // List finds every 2.x chunk file (the one removed above excepted).
  size_t listed = 0, on_disk = 0;
  ASSERT_OK(chunks.List([&](const Digest&) { ++listed; }));
  for (const auto& e : fs::recursive_directory_iterator(ChunksDirName(v253_))) {
    on_disk += e.path().string().ends_with(".chunk.lzo");
  }
  EXPECT_GT(listed, 5u);
  EXPECT_EQ(listed, on_disk);
  // Read-only: nothing is quarantined or written.
  EXPECT_TRUE(chunks.Quarantine(index->slot(1)).IsNotSupported());
  EXPECT_TRUE(chunks.Put(d0, out).status().IsNotSupported());
}

TEST_F(LegacyRepositoryTest, DistrustAndForgetUpdateTheRevFilesAs2xDid) {
  auto repo = Open(v243_);
  auto revs = repo->Revisions();
  ASSERT_OK(revs.status());
  Revision r = revs->back();
  r.trust = Trust::kDistrusted;
  ASSERT_OK(repo->UpdateMetadata(r));
  const std::string text = ReadText(v243_ + "/" + r.id + ".rev");
  EXPECT_NE(text.find("trust: distrusted"), std::string::npos) << text;
  EXPECT_NE(text.find("backend_type: chunked"), std::string::npos) << text;
  EXPECT_NE(text.find("uuid: " + r.id), std::string::npos) << text;
  auto again = Open(v243_)->Revisions();
  ASSERT_OK(again.status());
  EXPECT_EQ(again->back().trust, Trust::kDistrusted);
  EXPECT_EQ(again->back().timestamp_us, r.timestamp_us);
  EXPECT_EQ(again->back().tags, r.tags);

  ASSERT_OK(repo->Forget(r.id));
  EXPECT_FALSE(fs::exists(v243_ + "/" + r.id));
  EXPECT_FALSE(fs::exists(v243_ + "/" + r.id + ".rev"));
  // 2.4's last and last.rev named it: they go with it.
  EXPECT_FALSE(fs::is_symlink(v243_ + "/last"));
  EXPECT_FALSE(fs::is_symlink(v243_ + "/last.rev"));
  auto left = Open(v243_)->Revisions();
  ASSERT_OK(left.status());
  EXPECT_EQ(left->size(), 2u);
}

TEST_F(LegacyRepositoryTest, WritersThatNeedTheCurrentFormatRefuse) {
  auto repo = Open(v253_);
  Status s = repo->RequireCurrentFormat("backup");
  EXPECT_TRUE(s.IsNotSupported());
  EXPECT_NE(s.ToString().find("backy upgrade"), std::string::npos);
  EXPECT_TRUE(repo->LockPurge().status().IsNotSupported());
  auto legacy = IsLegacyRepository(v253_);
  ASSERT_OK(legacy.status());
  EXPECT_TRUE(*legacy);
}

TEST(LegacyConfigTest, FlatAndNestedConfigsAreRead) {
  auto flat = RepositoryConfig::FromYaml(
      "type: ceph-rbd\npool: rbd\nimage: vm1.root\nfull-always: false\n",
      "config");
  ASSERT_OK(flat.status());
  EXPECT_TRUE(flat->legacy);
  EXPECT_EQ(flat->source.at("pool"), "rbd");
  EXPECT_EQ(flat->source.at("image"), "vm1.root");
  auto nested = RepositoryConfig::FromYaml(
      "source: {type: flyingcircus, pool: rbd.ssd, image: vm2.root, vm: vm2, "
      "consul_acl_token: secret}\nschedule:\n  daily: {interval: 1d, keep: "
      "9}\n",
      "config");
  ASSERT_OK(nested.status());
  EXPECT_TRUE(nested->legacy);
  EXPECT_EQ(nested->source.at("type"), "flyingcircus");
  EXPECT_EQ(nested->schedule.tags.at("daily").interval_seconds, 86400);
  auto current = RepositoryConfig::FromYaml(
      "format: 1\nsource: {type: file, filename: /x}\n", "config");
  ASSERT_OK(current.status());
  EXPECT_FALSE(current->legacy);
  EXPECT_TRUE(RepositoryConfig::FromYaml("filename: /x\n", "config")
                  .status()
                  .IsCorruption());
}

}  // namespace
}  // namespace backy::store
