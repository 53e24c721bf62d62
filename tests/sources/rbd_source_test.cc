// Tests for RbdSource and RbdImageWriter against a real Ceph cluster.
//
// CTest runs this binary under tests/ceph/cluster.sh, which exports
// CEPH_CONF for a throwaway single-node cluster with pool "rbd". Without
// CEPH_CONF the cluster tests are skipped (the spec parser tests still
// run). Images are created with the rbd CLI (to choose features) and
// written through RbdImageWriter; snapshots are inspected with the CLI.
#include "sources/rbd_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "source_conformance.h"
#include "sources/rbd_image_writer.h"
#include "store/digest.h"
#include "test_util.h"

namespace backy::sources {
namespace {

constexpr uint64_t kObject = 4 << 20;  // RBD's default object size
constexpr uint64_t kImageSize = 8 * kObject;

// Runs a shell command; returns its stdout, fails the test on non-zero exit.
std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0)
    out.append(buf.data(), n);
  const int rc = pclose(f);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  return out;
}

// Deterministic, position-dependent bytes, different for each seed.
std::vector<uint8_t> Pattern(uint64_t offset, uint64_t length, uint8_t seed) {
  std::vector<uint8_t> v(length);
  for (uint64_t i = 0; i < length; ++i) {
    const uint64_t pos = offset + i;
    v[i] = static_cast<uint8_t>((pos * 131 + (pos >> 12) * 7 + seed * 29) | 1);
  }
  return v;
}

Extent Data(uint64_t first_object, uint64_t objects = 1) {
  return Extent{first_object * kObject, objects * kObject, Extent::Kind::kData};
}
Extent Zero(uint64_t first_object, uint64_t objects = 1) {
  return Extent{first_object * kObject, objects * kObject, Extent::Kind::kZero};
}

std::string ToString(const ExtentList& list) {
  std::string s;
  for (const Extent& e : list) {
    s += (e.kind == Extent::Kind::kData ? "D[" : "Z[") +
         std::to_string(e.offset / double(kObject)) + "+" +
         std::to_string(e.length / double(kObject)) + "] ";
  }
  return s;
}

// Snapshot names of an image, in creation order, via the rbd CLI.
std::vector<std::string> SnapNames(const std::string& image) {
  std::vector<std::string> names;
  const std::string out = Shell("rbd snap ls --format json " + image);
  const std::string key = "\"name\":\"";
  for (size_t pos = out.find(key); pos != std::string::npos;
       pos = out.find(key, pos)) {
    pos += key.size();
    names.push_back(out.substr(pos, out.find('"', pos) - pos));
  }
  return names;
}

bool HaveCluster() { return std::getenv("CEPH_CONF") != nullptr; }

// Parameter: the --image-feature list for `rbd create`. "default" uses the
// cluster's defaults (object-map + fast-diff: diffs come from the object
// map); "layering" forces librbd to list objects to compute diffs.
class RbdSourceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HaveCluster()) GTEST_SKIP() << "CEPH_CONF not set";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        std::string(info->name()) + "-" + std::to_string(getpid());
    for (char& c : name) {
      if (c == '/') c = '-';
    }
    config_.pool = "rbd";
    config_.image = name;
    config_.connect_timeout_s = 20;
    std::string features;
    if (GetParam() != "default") features = " --image-feature " + GetParam();
    Shell("rbd create --size " + std::to_string(kImageSize >> 20) + "M" +
          features + " " + Image());
  }

  void TearDown() override {
    if (!HaveCluster() || config_.image.empty()) return;
    std::system(("rbd snap purge " + Image() + " >/dev/null 2>&1; rbd rm " +
                 Image() + " >/dev/null 2>&1")
                    .c_str());
  }

  std::string Image() const { return RbdImageName(config_); }

  // Opens the live image for writing (force: it exists).
  std::unique_ptr<RbdImageWriter> Writer() {
    auto w = RbdImageWriter::Create(config_, kImageSize, /*force=*/true);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return nullptr;
    EXPECT_FALSE((*w)->created());
    return std::move(w).value();
  }

  void WriteObject(RbdImageWriter* w, uint64_t object, uint8_t seed) {
    auto data = Pattern(object * kObject, kObject, seed);
    ASSERT_OK(w->Write(object * kObject, data));
  }

  // One Begin/Commit cycle on a fresh source.
  void Backup(const std::string& id) {
    RbdSource src(config_);
    ASSERT_OK(src.Begin(id));
    ASSERT_OK(src.Commit(id));
  }

  RbdConfig config_;
};

TEST_P(RbdSourceTest, FullExtentsReportAllocatedObjects) {
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    WriteObject(w.get(), 0, 1);
    WriteObject(w.get(), 1, 1);
    WriteObject(w.get(), 4, 1);
    // A partial write allocates its whole object.
    auto small = Pattern(6 * kObject + 100, 4096, 1);
    ASSERT_OK(w->Write(6 * kObject + 100, small));
    ASSERT_OK(w->Commit());
  }
  RbdSource src(config_);
  EXPECT_EQ(src.Name(), Image());
  ASSERT_OK(src.Begin("r1"));
  EXPECT_EQ(src.Size(), kImageSize);
  EXPECT_EQ(src.verify_mode(), VerifyMode::kSample);

  ExtentList extents;
  ASSERT_OK(src.Extents("", &extents));
  // Only kData matters for a full listing; kZero may or may not be listed.
  ExtentList data;
  for (const Extent& e : extents) {
    if (e.kind == Extent::Kind::kData) data.push_back(e);
  }
  const ExtentList want = {Data(0, 2), Data(4), Data(6)};
  EXPECT_EQ(data, want) << ToString(extents);
  src.Abort();
}

TEST_P(RbdSourceTest, DiffExtentsReportExactlyTheChangedObjects) {
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    for (uint64_t o : {0, 1, 2, 3, 5}) WriteObject(w.get(), o, 1);
    ASSERT_OK(w->Commit());
  }
  Backup("r1");
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    auto small = Pattern(kObject + 512, 512, 2);
    ASSERT_OK(w->Write(kObject + 512, small));  // partial write
    WriteObject(w.get(), 7, 2);                 // new object
    ASSERT_OK(w->Zero(3 * kObject, kObject));   // whole-object discard
    ASSERT_OK(w->Commit());
  }
  RbdSource src(config_);
  ASSERT_OK(src.Begin("r2"));
  EXPECT_TRUE(src.CanDiffFrom("r1"));
  EXPECT_FALSE(src.CanDiffFrom("never-made"));
  ExtentList extents;
  ASSERT_OK(src.Extents("r1", &extents));
  const ExtentList want = {Data(1), Zero(3), Data(7)};
  EXPECT_EQ(extents, want) << ToString(extents);

  // The discarded object reads as zeros, the rest as written.
  std::vector<uint8_t> buf(kObject);
  ASSERT_OK(src.Read(3 * kObject, buf));
  EXPECT_EQ(buf, std::vector<uint8_t>(kObject, 0));
  ASSERT_OK(src.Read(7 * kObject, buf));
  EXPECT_EQ(buf, Pattern(7 * kObject, kObject, 2));
  ASSERT_OK(src.Commit("r2"));

  // Nothing changed since r2: an empty diff.
  RbdSource again(config_);
  ASSERT_OK(again.Begin("r3"));
  ASSERT_OK(again.Extents("r2", &extents));
  EXPECT_TRUE(extents.empty()) << ToString(extents);
  again.Abort();
}

TEST_P(RbdSourceTest, ReadsSnapshotContentAfterTheImageChanges) {
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    for (uint64_t o = 0; o < 8; ++o) WriteObject(w.get(), o, 1);
    ASSERT_OK(w->Commit());
  }
  RbdSource src(config_);
  ASSERT_OK(src.Begin("r1"));
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    for (uint64_t o = 0; o < 8; ++o) WriteObject(w.get(), o, 9);
    ASSERT_OK(w->Commit());
  }
  // Four threads read 1 MiB pieces of the whole image concurrently.
  constexpr uint64_t kPiece = 1 << 20;
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> buf(kPiece);
      for (uint64_t off = t * kPiece; off < kImageSize; off += 4 * kPiece) {
        if (!src.Read(off, buf).ok()) ++errors;
        if (buf != Pattern(off, kPiece, 1)) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(src.bytes_read(), kImageSize);

  // Reads past the end are zero-filled and not counted as read.
  std::vector<uint8_t> tail(8192, 0xff);
  ASSERT_OK(src.Read(kImageSize - 4096, tail));
  const auto want_head = Pattern(kImageSize - 4096, 4096, 1);
  EXPECT_TRUE(std::equal(want_head.begin(), want_head.end(), tail.begin()));
  EXPECT_EQ(std::vector<uint8_t>(tail.begin() + 4096, tail.end()),
            std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(src.bytes_read(), kImageSize + 4096);
  src.Abort();
}

TEST_P(RbdSourceTest, DiffAfterResizeCoversTheNewSize) {
  {
    auto w = Writer();
    ASSERT_NE(w, nullptr);
    WriteObject(w.get(), 0, 1);
    WriteObject(w.get(), 7, 1);
    ASSERT_OK(w->Commit());
  }
  Backup("r1");
  Shell("rbd resize --size " +
        std::to_string((kImageSize + 2 * kObject) >> 20) + "M " + Image());
  {
    auto w = RbdImageWriter::Create(config_, kImageSize + 2 * kObject, true);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    WriteObject(w->get(), 9, 2);
    ASSERT_OK((*w)->Commit());
  }
  RbdSource grown(config_);
  ASSERT_OK(grown.Begin("r2"));
  EXPECT_EQ(grown.Size(), kImageSize + 2 * kObject);
  ExtentList extents;
  ASSERT_OK(grown.Extents("r1", &extents));
  EXPECT_EQ(extents, (ExtentList{Data(9)})) << ToString(extents);
  ASSERT_OK(grown.Commit("r2"));

  // Shrunk below an object that existed: nothing past the end is listed.
  Shell("rbd resize --allow-shrink --size " +
        std::to_string((4 * kObject) >> 20) + "M " + Image());
  RbdSource shrunk(config_);
  ASSERT_OK(shrunk.Begin("r3"));
  EXPECT_EQ(shrunk.Size(), 4 * kObject);
  ASSERT_OK(shrunk.Extents("r2", &extents));
  for (const Extent& e : extents) EXPECT_LE(e.end(), 4 * kObject);
  ASSERT_OK(shrunk.Extents("", &extents));
  EXPECT_EQ(extents, (ExtentList{Data(0)})) << ToString(extents);
  shrunk.Abort();
}

TEST_P(RbdSourceTest, BacksUpWhileAnotherClientHoldsTheLock) {
  // The writer keeps the image open and, having written, holds its
  // exclusive lock (default features); the snapshot request is proxied
  // to it and the snapshot still shows the state at Begin().
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  WriteObject(w.get(), 2, 1);
  if (GetParam() == "default") {
    EXPECT_NE(Shell("rbd lock ls " + Image()).find("auto "), std::string::npos)
        << "the writer should hold the exclusive lock";
  }
  RbdSource src(config_);
  ASSERT_OK(src.Begin("r1"));
  WriteObject(w.get(), 2, 2);
  WriteObject(w.get(), 3, 2);
  std::vector<uint8_t> buf(kObject);
  ASSERT_OK(src.Read(2 * kObject, buf));
  EXPECT_EQ(buf, Pattern(2 * kObject, kObject, 1));
  ASSERT_OK(src.Read(3 * kObject, buf));
  EXPECT_EQ(buf, std::vector<uint8_t>(kObject, 0));
  ExtentList extents;
  ASSERT_OK(src.Extents("", &extents));
  ExtentList data;
  for (const Extent& e : extents) {
    if (e.kind == Extent::Kind::kData) data.push_back(e);
  }
  EXPECT_EQ(data, (ExtentList{Data(2)})) << ToString(extents);
  ASSERT_OK(src.Commit("r1"));
  ASSERT_OK(w->Commit());
}

TEST_P(RbdSourceTest, CommitRemovesOnlyOlderBackySnapshots) {
  Shell("rbd snap create " + Image() + "@foreign-before");
  Backup("r1");
  Shell("rbd snap create " + Image() + "@backyish");
  EXPECT_EQ(SnapNames(Image()), (std::vector<std::string>{
                                    "foreign-before", "backy-r1", "backyish"}));
  Backup("r2");
  EXPECT_EQ(SnapNames(Image()), (std::vector<std::string>{
                                    "foreign-before", "backyish", "backy-r2"}));
  // A backup still running elsewhere (newer snapshot) is left alone.
  RbdSource r3(config_);
  ASSERT_OK(r3.Begin("r3"));
  RbdSource r4(config_);
  ASSERT_OK(r4.Begin("r4"));
  ASSERT_OK(r3.Commit("r3"));
  EXPECT_EQ(SnapNames(Image()),
            (std::vector<std::string>{"foreign-before", "backyish", "backy-r3",
                                      "backy-r4"}));
  ASSERT_OK(r4.Commit("r4"));
  EXPECT_EQ(SnapNames(Image()), (std::vector<std::string>{
                                    "foreign-before", "backyish", "backy-r4"}));
}

TEST_P(RbdSourceTest, AbortRemovesTheSnapshotBeginCreated) {
  Shell("rbd snap create " + Image() + "@foreign");
  Backup("r1");
  {
    RbdSource src(config_);
    ASSERT_OK(src.Begin("r2"));
    EXPECT_EQ(SnapNames(Image()),
              (std::vector<std::string>{"foreign", "backy-r1", "backy-r2"}));
    src.Abort();
  }
  EXPECT_EQ(SnapNames(Image()),
            (std::vector<std::string>{"foreign", "backy-r1"}));
  RbdSource src(config_);
  EXPECT_TRUE(src.CanDiffFrom("r1"));
  EXPECT_FALSE(src.CanDiffFrom("r2"));
}

TEST_P(RbdSourceTest, BeginRefusesAnExistingSnapshotAndBadIds) {
  Backup("r1");
  RbdSource src(config_);
  Status s = src.Begin("r1");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find(Image() + "@backy-r1"), std::string::npos)
      << s.ToString();
  src.Abort();  // must not remove the existing snapshot
  EXPECT_EQ(SnapNames(Image()), (std::vector<std::string>{"backy-r1"}));

  RbdSource bad(config_);
  EXPECT_TRUE(bad.Begin("a@b").IsInvalidArgument());
}

TEST_P(RbdSourceTest, ImageWriterRefusesAnExistingImageWithoutForce) {
  auto existing = RbdImageWriter::Create(config_, kImageSize, false);
  ASSERT_FALSE(existing.ok());
  EXPECT_TRUE(existing.status().IsInvalidArgument())
      << existing.status().ToString();
  EXPECT_NE(existing.status().ToString().find(Image()), std::string::npos)
      << existing.status().ToString();

  // A new image: created, written, committed; it keeps its content.
  RbdConfig fresh = config_;
  fresh.image += "-new";
  {
    auto w = RbdImageWriter::Create(fresh, 2 * kObject + 4096, false);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->created());
    EXPECT_EQ((*w)->Size(), 2 * kObject + 4096);
    auto data = Pattern(kObject, kObject + 4096, 3);
    ASSERT_OK((*w)->Write(kObject, data));
    EXPECT_TRUE((*w)->Write(2 * kObject, data).IsInvalidArgument());
    ASSERT_OK((*w)->Commit());
  }
  {
    RbdSource src(fresh);
    ASSERT_OK(src.Begin("check"));
    EXPECT_EQ(src.Size(), 2 * kObject + 4096);
    std::vector<uint8_t> buf(kObject + 4096);
    ASSERT_OK(src.Read(kObject, buf));
    EXPECT_EQ(buf, Pattern(kObject, kObject + 4096, 3));
    src.Abort();
  }
  EXPECT_FALSE(RbdImageWriter::Create(fresh, kObject, false).ok());
  // Forcing resizes the existing image and keeps it after Commit.
  {
    auto w = RbdImageWriter::Create(fresh, kObject, true);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_FALSE((*w)->created());
    ASSERT_OK((*w)->Zero(0, kObject));
    ASSERT_OK((*w)->Commit());
  }
  EXPECT_NE(Shell("rbd info " + RbdImageName(fresh)).find("size 4 MiB"),
            std::string::npos);
  Shell("rbd rm " + RbdImageName(fresh));

  // A created image that is never committed is removed again.
  {
    auto w = RbdImageWriter::Create(fresh, kObject, false);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto data = Pattern(0, 4096, 4);
    ASSERT_OK((*w)->Write(0, data));
  }
  EXPECT_EQ(Shell("rbd ls rbd").find(fresh.image + "\n"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Features, RbdSourceTest,
                         ::testing::Values("default", "layering"));

// Errors that need a cluster but no image of their own.
class RbdSourceErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCluster()) GTEST_SKIP() << "CEPH_CONF not set";
  }

  // Runs Begin() and checks it fails within `limit`.
  Status BeginWithin(const RbdConfig& config, std::chrono::seconds limit) {
    const auto start = std::chrono::steady_clock::now();
    RbdSource src(config);
    Status s = src.Begin("r1");
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, limit) << s.ToString();
    EXPECT_FALSE(s.ok());
    return s;
  }
};

TEST_F(RbdSourceErrorTest, MissingPoolIsNotFound) {
  RbdConfig c;
  c.pool = "no-such-pool";
  c.image = "vm1";
  Status s = BeginWithin(c, std::chrono::seconds(15));
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find("pool 'no-such-pool' does not exist"),
            std::string::npos)
      << s.ToString();
  EXPECT_NE(s.ToString().find("no-such-pool/vm1"), std::string::npos);

  auto w = RbdImageWriter::Create(c, kObject, false);
  EXPECT_TRUE(w.status().IsNotFound()) << w.status().ToString();
}

TEST_F(RbdSourceErrorTest, MissingImageIsNotFound) {
  RbdConfig c;
  c.pool = "rbd";
  c.image = "no-such-image";
  Status s = BeginWithin(c, std::chrono::seconds(15));
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find("rbd/no-such-image"), std::string::npos)
      << s.ToString();
  RbdSource src(c);
  EXPECT_FALSE(src.CanDiffFrom("r1"));
}

TEST_F(RbdSourceErrorTest, UnreachableMonitorFailsWithinTheTimeout) {
  // A port nobody listens on: bind one, note it, close it.
  std::string port = Shell(
      "python3 -c 'import socket; s=socket.socket(); "
      "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'");
  port.erase(port.find_last_not_of("\n") + 1);
  char tmpl[] = "/tmp/backy-rbd-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string conf = std::string(tmpl) + "/ceph.conf";
  {
    std::ofstream f(conf);
    f << "[global]\nmon host = v2:127.0.0.1:" << port
      << "\nauth client required = none\nlog file = /dev/null\n";
  }
  RbdConfig c;
  c.pool = "rbd";
  c.image = "vm1";
  c.conf_path = conf;
  c.connect_timeout_s = 3;
  Status s = BeginWithin(c, std::chrono::seconds(15));
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("rbd/vm1"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("127.0.0.1:" + port), std::string::npos)
      << s.ToString();

  // A named configuration that does not exist is reported as such.
  c.conf_path = std::string(tmpl) + "/missing.conf";
  s = BeginWithin(c, std::chrono::seconds(5));
  EXPECT_NE(s.ToString().find("missing.conf"), std::string::npos)
      << s.ToString();
  std::remove(conf.c_str());
  rmdir(tmpl);
}

TEST(RbdSpecTest, ParsesPoolImageAndNamespace) {
  auto c = ParseRbdSpec("rbd/vm1");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->pool, "rbd");
  EXPECT_EQ(c->image, "vm1");
  EXPECT_EQ(c->rbd_namespace, "");
  EXPECT_EQ(RbdImageName(*c), "rbd/vm1");

  c = ParseRbdSpec("ssd/tenant-a/vm.disk0");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->pool, "ssd");
  EXPECT_EQ(c->rbd_namespace, "tenant-a");
  EXPECT_EQ(c->image, "vm.disk0");
  EXPECT_EQ(RbdImageName(*c), "ssd/tenant-a/vm.disk0");
}

TEST(RbdSpecTest, RejectsMalformedSpecs) {
  for (const char* bad : {"", "rbd", "rbd/", "/vm1", "a/b/c/d", "rbd//vm1",
                          "rbd/vm1@snap", "rbd/vm 1"}) {
    auto c = ParseRbdSpec(bad);
    EXPECT_FALSE(c.ok()) << "'" << bad << "' was accepted";
    if (!c.ok()) {
      EXPECT_TRUE(c.status().IsInvalidArgument()) << c.status().ToString();
    }
  }
  EXPECT_EQ(RbdSnapshotName("2024-01-01T00:00:00"),
            "backy-2024-01-01T00:00:00");
}

}  // namespace

// ---- The Source contract (source_conformance.h) -----------------------------
// In the suite's namespace, as gtest requires of the instantiation.
namespace conformance {

// A fresh image per test, written through RbdImageWriter; a new RbdSource
// for every backup (Begin() may be called once per object).
class RbdHarness {
 public:
  static constexpr bool kDiffs = true;

  void SetUp() {
    if (!HaveCluster()) GTEST_SKIP() << "CEPH_CONF not set";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("conformance-") + info->name() + "-" +
                       std::to_string(getpid());
    for (char& c : name) {
      if (c == '/') c = '-';
    }
    config_.pool = "rbd";
    config_.image = name;
    config_.connect_timeout_s = 20;
  }
  void TearDown() {
    if (!HaveCluster() || config_.image.empty()) return;
    const std::string image = RbdImageName(config_);
    std::system(("rbd snap purge " + image + " >/dev/null 2>&1; rbd rm " +
                 image + " >/dev/null 2>&1")
                    .c_str());
  }
  // Writes runs of data and zeros (zeros only into an image that existed).
  void WriteImage(const std::vector<uint8_t>& bytes) {
    auto w = RbdImageWriter::Create(config_, bytes.size(), /*force=*/true);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    constexpr uint64_t kBlock = 64 * 1024;
    uint64_t off = 0;
    while (off < bytes.size()) {
      auto zero_at = [&](uint64_t at) {
        return IsAllZero(
            {bytes.data() + at, std::min<uint64_t>(kBlock, bytes.size() - at)});
      };
      const bool zero = zero_at(off);
      uint64_t end = off;
      while (end < bytes.size() && zero_at(end) == zero) end += kBlock;
      end = std::min<uint64_t>(end, bytes.size());
      if (!zero) {
        ASSERT_OK((*w)->Write(off, {bytes.data() + off, end - off}));
      } else if (!(*w)->created()) {
        ASSERT_OK((*w)->Zero(off, end - off));
      }
      off = end;
    }
    ASSERT_OK((*w)->Commit());
  }
  Source* NewSource() {
    sources_.push_back(std::make_unique<RbdSource>(config_));
    return sources_.back().get();
  }
  Source* NewMissingSource() {
    RbdConfig missing = config_;
    missing.image += "-missing";
    sources_.push_back(std::make_unique<RbdSource>(missing));
    return sources_.back().get();
  }

 private:
  RbdConfig config_;
  std::vector<std::unique_ptr<RbdSource>> sources_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(RbdSourceConformance, SourceConformanceTest,
                               RbdHarness);

}  // namespace conformance
}  // namespace backy::sources
