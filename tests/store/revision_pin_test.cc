// RevisionPin and purge on a real (temporary) repository: a pin keeps the
// chunks of a revision forgotten while it is read; letting go, or a holder
// that died, frees them; hostile entries in pins/ are neither followed nor
// trusted; pinning and purging exclude each other only briefly.
#include "store/revision_pin.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/directory_repository.h"
#include "store/filename.h"
#include "store/purge.h"
#include "support/temp_repository.h"

namespace backy::store {
namespace {

namespace fs = std::filesystem;

class RevisionPinTest : public ::testing::Test {
 protected:
  RevisionPinTest() { pins_ = PinsDirName(dir_); }

  // Publishes a revision of two chunks filled with `fill` and `fill + 1`
  // (no chunk shared with another fill); returns it.
  Revision Publish(uint8_t fill, int64_t ts) {
    RevisionIndex index(2 * uint64_t{kDefaultChunkSize}, kDefaultChunkSize);
    for (size_t i = 0; i < 2; ++i) {
      std::vector<uint8_t> data(5000, static_cast<uint8_t>(fill + i));
      const Digest d = Digest::Of(data);
      EXPECT_OK(repo_->chunks().Put(d, data).status());
      index.set_slot(i, d);
    }
    EXPECT_OK(repo_->chunks().Sync());
    Revision r;
    r.id = NewRevisionId();
    r.timestamp_us = ts;
    r.size = index.image_size();
    r.chunk_size = kDefaultChunkSize;
    EXPECT_OK(repo_->Publish(r, index));
    digests_[r.id] = {index.slot(0), index.slot(1)};
    return r;
  }
  bool HasChunks(const Revision& r) {
    for (const Digest& d : digests_[r.id]) {
      auto has = repo_->chunks().Contains(d);
      EXPECT_OK(has.status());
      if (!*has) return false;
    }
    return true;
  }
  // A whole purge, as `backy purge` runs it.
  Result<PurgePlan> Purge() {
    auto lock = repo_->LockPurge();
    if (!lock.ok()) return lock.status();
    auto plan = PlanPurge(*repo_);
    if (!plan.ok()) return plan.status();
    uint64_t freed = 0;
    Status s = ExecutePurge(*repo_, *plan, &freed);
    if (!s.ok()) return s;
    return plan;
  }
  std::vector<std::string> PinEntries() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(pins_, ec)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  // The path of the only entry of pins/ ending in `suffix`.
  std::string OnlyPinEntry(std::string_view suffix) {
    std::string found;
    for (const auto& name : PinEntries()) {
      if (name.ends_with(suffix)) {
        EXPECT_TRUE(found.empty()) << "two " << suffix;
        found = pins_ + "/" + name;
      }
    }
    EXPECT_FALSE(found.empty()) << "no " << suffix;
    return found;
  }

  TempRepository tmp_;
  const std::string dir_ = tmp_.dir();
  std::unique_ptr<DirectoryRepository> repo_ = tmp_.Take();
  std::string pins_;
  std::map<std::string, std::vector<Digest>> digests_;
};

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

TEST_F(RevisionPinTest, PinKeepsChunksOfForgottenRevisionUntilReleased) {
  Revision a = Publish(10, 1), b = Publish(20, 2);
  auto pin = repo_->PinRevision(a, "test");
  ASSERT_OK(pin.status());
  EXPECT_EQ(pin->revision_id(), a.id);
  ASSERT_OK(repo_->Forget(a.id));

  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->pins_live, 1u);
  EXPECT_EQ(plan->pinned_revisions, 1u);
  EXPECT_EQ(plan->pinned_forgotten, 1u);
  EXPECT_TRUE(plan->unused.empty());
  EXPECT_TRUE(HasChunks(a));
  // The reader still has the index it pinned, and its chunks.
  auto index = pin->LoadIndex();
  ASSERT_OK(index.status());
  EXPECT_EQ(index->slot(0), digests_[a.id][0]);
  EXPECT_OK(repo_->chunks().Open(index->slot(1)).status());

  pin->Release();
  EXPECT_FALSE(pin->held());
  EXPECT_TRUE(PinEntries().empty());
  plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->pins_live, 0u);
  EXPECT_EQ(plan->unused.size(), 2u);
  EXPECT_FALSE(HasChunks(a));
  EXPECT_TRUE(HasChunks(b));
}

TEST_F(RevisionPinTest, PinOfLiveRevisionCountsNotForgotten) {
  Revision a = Publish(10, 1);
  auto p1 = repo_->PinRevision(a, "test");
  auto p2 = repo_->PinRevision(a, "test");
  ASSERT_OK(p1.status());
  ASSERT_OK(p2.status());
  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->pins_live, 2u);
  EXPECT_EQ(plan->pinned_revisions, 1u);
  EXPECT_EQ(plan->pinned_forgotten, 0u);
}

TEST_F(RevisionPinTest, DestructionAndMoveReleaseOnce) {
  Revision a = Publish(10, 1);
  {
    auto pin = repo_->PinRevision(a, "test");
    ASSERT_OK(pin.status());
    RevisionPin moved = std::move(*pin);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(pin->held());
    EXPECT_EQ(PinEntries().size(), 2u);  // .pin and .index
    RevisionPin other;
    other = std::move(moved);
    EXPECT_EQ(PinEntries().size(), 2u);
  }
  EXPECT_TRUE(PinEntries().empty());
}

TEST_F(RevisionPinTest, PinFilesArePrivate) {
  const mode_t old_umask = ::umask(0);
  Revision a = Publish(10, 1);
  auto pin = repo_->PinRevision(a, "test");
  ::umask(old_umask);
  ASSERT_OK(pin.status());
  struct stat st;
  ASSERT_EQ(::lstat(pins_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat(OnlyPinEntry(".pin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(RevisionPinTest, HolderThatDiedLeavesAStalePinPurgeRemoves) {
  Revision a = Publish(10, 1);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto pin = repo_->PinRevision(a, "child");
    // As kill -9 would: no destructor, no unlink.
    ::_exit(pin.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(PinEntries().size(), 2u);
  ASSERT_OK(repo_->Forget(a.id));

  {
    // A dry run (the plan alone) lists it and removes nothing.
    auto lock = repo_->LockPurge();
    ASSERT_OK(lock.status());
    auto plan = PlanPurge(*repo_);
    ASSERT_OK(plan.status());
    EXPECT_EQ(plan->stale_pins.size(), 1u);
    EXPECT_EQ(plan->pins_live, 0u);
    EXPECT_EQ(PinEntries().size(), 2u);
  }
  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->stale_pins.size(), 1u);
  EXPECT_EQ(plan->unused.size(), 2u);
  EXPECT_FALSE(HasChunks(a));
  EXPECT_TRUE(PinEntries().empty());
}

TEST_F(RevisionPinTest, UnlockedPinWithoutIndexLinkIsStale) {
  // A reader killed between creating its pin file and linking the index.
  Publish(10, 1);
  ASSERT_EQ(::mkdir(pins_.c_str(), 0700), 0);
  std::ofstream(pins_ + "/" + kToken + ".pin") << "revision: x\n";
  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_EQ(plan->stale_pins.size(), 1u);
  EXPECT_TRUE(PinEntries().empty());
}

TEST_F(RevisionPinTest, LivePinWithoutIndexLinkStopsThePlan) {
  Revision a = Publish(10, 1);
  auto pin = repo_->PinRevision(a, "test");
  ASSERT_OK(pin.status());
  ASSERT_EQ(::unlink(OnlyPinEntry(".index").c_str()), 0);
  ASSERT_OK(repo_->Forget(a.id));
  auto plan = Purge();
  ASSERT_TRUE(plan.status().IsCorruption()) << plan.status().ToString();
  EXPECT_NE(plan.status().ToString().find("live pin"), std::string::npos);
  EXPECT_NE(plan.status().ToString().find(a.id), std::string::npos)
      << plan.status().ToString();
  EXPECT_TRUE(HasChunks(a));
}

TEST_F(RevisionPinTest, LivePinWhoseIndexLinkIsASymlinkStopsThePlan) {
  Revision a = Publish(10, 1), b = Publish(20, 2);
  auto pin = repo_->PinRevision(a, "test");
  ASSERT_OK(pin.status());
  const std::string link = OnlyPinEntry(".index");
  ASSERT_EQ(::unlink(link.c_str()), 0);
  ASSERT_EQ(::symlink(repo_->IndexPath(b.id).c_str(), link.c_str()), 0);
  auto plan = Purge();
  ASSERT_TRUE(plan.status().IsCorruption()) << plan.status().ToString();
  EXPECT_TRUE(HasChunks(a));
}

TEST_F(RevisionPinTest, HostileEntriesAreNeitherFollowedNorTrusted) {
  Revision a = Publish(10, 1);
  ASSERT_EQ(::mkdir(pins_.c_str(), 0700), 0);
  const std::string victim = dir_ + "/../victim";
  std::ofstream(victim) << "keep me";
  // A symlink posing as a pin: never opened (a lock on its target would
  // make it look stale or live), left alone.
  const std::string sym_pin = pins_ + "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.pin";
  ASSERT_EQ(::symlink(victim.c_str(), sym_pin.c_str()), 0);
  // A directory posing as a pin, with an index link beside it.
  const std::string dir_pin = pins_ + "/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.pin";
  ASSERT_EQ(::mkdir(dir_pin.c_str(), 0700), 0);
  ASSERT_EQ(::link(repo_->IndexPath(a.id).c_str(),
                   (pins_ + "/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.index").c_str()),
            0);
  // An index symlink without a pin: removed as a link, target untouched.
  const std::string sym_index =
      pins_ + "/cccccccccccccccccccccccccccccccc.index";
  ASSERT_EQ(::symlink(victim.c_str(), sym_index.c_str()), 0);
  // Garbage names, a FIFO.
  std::ofstream(pins_ + "/garbage") << "x";
  std::ofstream(pins_ + "/ABCDEF0123456789ABCDEF0123456789.pin") << "x";
  ASSERT_EQ(
      ::mkfifo((pins_ + "/dddddddddddddddddddddddddddddddd.pin").c_str(), 0600),
      0);

  {
    auto lock = repo_->LockPurge();
    ASSERT_OK(lock.status());
    auto scan = ScanPins(dir_);
    ASSERT_OK(scan.status());
    EXPECT_TRUE(scan->live.empty());
    EXPECT_EQ(scan->ignored, 5u);  // garbage, upper case, symlink, dir, FIFO
    EXPECT_EQ(scan->stale.size(), 2u);  // the two orphan index links
  }
  ASSERT_OK(repo_->Forget(a.id));
  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_FALSE(HasChunks(a));  // no live pin named it
  EXPECT_TRUE(fs::is_symlink(sym_pin));
  EXPECT_TRUE(fs::is_directory(dir_pin));
  EXPECT_FALSE(fs::exists(fs::symlink_status(sym_index)));
  std::ifstream in(victim);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(RevisionPinTest, PinsDirectoryThatIsASymlinkIsRefused) {
  Revision a = Publish(10, 1);
  const std::string elsewhere = dir_ + "/../elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), pins_.c_str()), 0);
  auto pin = repo_->PinRevision(a, "test");
  EXPECT_TRUE(pin.status().IsCorruption()) << pin.status().ToString();
  EXPECT_TRUE(fs::is_empty(elsewhere));
  auto plan = Purge();
  EXPECT_TRUE(plan.status().IsCorruption()) << plan.status().ToString();
}

TEST_F(RevisionPinTest, PinningARemovedOrDamagedRevisionFails) {
  Revision a = Publish(10, 1), b = Publish(20, 2), c = Publish(30, 3);
  ASSERT_OK(repo_->Forget(a.id));
  auto pin = repo_->PinRevision(a, "test");
  EXPECT_TRUE(pin.status().IsNotFound()) << pin.status().ToString();
  // The index gone, the metadata still there: damage.
  ASSERT_EQ(::unlink(repo_->IndexPath(b.id).c_str()), 0);
  pin = repo_->PinRevision(b, "test");
  EXPECT_TRUE(pin.status().IsCorruption()) << pin.status().ToString();
  // A symlink instead of the index is not linked.
  ASSERT_EQ(::unlink(repo_->IndexPath(c.id).c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", repo_->IndexPath(c.id).c_str()), 0);
  pin = repo_->PinRevision(c, "test");
  EXPECT_TRUE(pin.status().IsCorruption()) << pin.status().ToString();
  EXPECT_TRUE(PinEntries().empty());
}

TEST_F(RevisionPinTest, PinningWaitsForARunningPurge) {
  Revision a = Publish(10, 1);
  auto purge = repo_->LockPurge();
  ASSERT_OK(purge.status());
  std::atomic<bool> pinned{false};
  std::thread reader([&] {
    auto pin = repo_->PinRevision(a, "test");
    EXPECT_OK(pin.status());
    pinned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(pinned);
  EXPECT_TRUE(PinEntries().empty());  // nothing half made under the purge
  purge->Release();
  reader.join();
  EXPECT_TRUE(pinned);
}

TEST_F(RevisionPinTest, PurgeWaitsBrieflyForPinningNotForWriters) {
  // A reader holds purge.lock shared for the moment it pins.
  auto held =
      FileLock::Acquire(PurgeLockFileName(dir_), FileLock::Mode::kShared);
  ASSERT_OK(held.status());
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    *held = FileLock();
  });
  EXPECT_OK(repo_->LockPurge().status());
  releaser.join();
  // A backup holds it for its whole run: Busy, after the short wait.
  auto writer = repo_->LockWriter("backup");
  ASSERT_OK(writer.status());
  const auto start = std::chrono::steady_clock::now();
  auto purge = repo_->LockPurge();
  EXPECT_TRUE(purge.status().IsBusy()) << purge.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(RevisionPinTest, ConcurrentPinsAndPurgesNeverLoseAPinnedChunk) {
  std::vector<Revision> revs;
  for (int i = 0; i < 4; ++i) revs.push_back(Publish(10 * (i + 1), i));
  std::atomic<bool> stop{false};
  std::atomic<int> checked{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        auto pin = repo_->PinRevision(revs[(t + i) % revs.size()], "test");
        if (pin.status().IsNotFound()) continue;  // forgotten already
        ASSERT_OK(pin.status());
        auto index = pin->LoadIndex();
        ASSERT_OK(index.status());
        for (size_t s = 0; s < index->slot_count(); ++s) {
          ASSERT_OK(repo_->chunks().Open(index->slot(s)).status());
        }
        ++checked;
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    if (round == 5 || round == 10) {
      auto w = repo_->LockWriter("forget");
      ASSERT_OK(w.status());
      ASSERT_OK(repo_->Forget(revs[round / 5].id));
    }
    auto plan = Purge();
    ASSERT_TRUE(plan.ok() || plan.status().IsBusy())
        << plan.status().ToString();
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(checked, 0);
  auto plan = Purge();
  ASSERT_OK(plan.status());
  EXPECT_FALSE(HasChunks(revs[1]));
  EXPECT_FALSE(HasChunks(revs[2]));
  EXPECT_TRUE(HasChunks(revs[0]));
  EXPECT_TRUE(HasChunks(revs[3]));
  EXPECT_TRUE(PinEntries().empty());
}

}  // namespace
}  // namespace backy::store
