// RadosRepository against a real cluster: the head object's omap (config,
// revisions, pins), index objects, and the leases (writer, purge, pins)
// with their fencing, seen from several clients of one pool. Part of
// rados_store_test, run under tests/ceph/cluster.sh (CEPH_CONF); the suite
// makes a pool of its own and deletes it. Each test uses a repository name
// of its own.
#include "store/rados_repository.h"

#include <rados/librados.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/test_util.h"

namespace backy::store {
namespace {

bool Contains(const Status& s, const std::string& what) {
  return s.ToString().find(what) != std::string::npos;
}

// One locker of a lock, as rados_list_lockers gives it.
struct Locker {
  std::string client, cookie;
};

class RadosRepositoryTest : public ::testing::Test {
 protected:
  static rados_t admin_;
  static rados_ioctx_t io_;  // the admin's view of the pool: "another host"

  static const std::string& PoolName() {
    static const std::string name =
        "backy-repo-test-" + std::to_string(::getpid());
    return name;
  }

  static void SetUpTestSuite() {
    ASSERT_NE(std::getenv("CEPH_CONF"), nullptr)
        << "run under tests/ceph/cluster.sh run";
    ASSERT_EQ(rados_create(&admin_, nullptr), 0);
    ASSERT_EQ(rados_conf_read_file(admin_, nullptr), 0);
    ASSERT_EQ(rados_connect(admin_), 0);
    ASSERT_EQ(rados_pool_create(admin_, PoolName().c_str()), 0);
    ASSERT_EQ(rados_ioctx_create(admin_, PoolName().c_str(), &io_), 0);
  }
  static void TearDownTestSuite() {
    if (io_ != nullptr) rados_ioctx_destroy(io_);
    if (admin_ != nullptr) {
      rados_pool_delete(admin_, PoolName().c_str());
      rados_shutdown(admin_);
    }
    io_ = nullptr;
    admin_ = nullptr;
  }

  RadosRepositoryTest() {
    static std::atomic<int> n{0};
    name_ = "vm" + std::to_string(++n);
    config_.source = {{"type", "file"}, {"filename", "/nonexistent"}};
  }

  RepositoryLocation Location(const std::string& name = "") const {
    RepositoryLocation l;
    l.kind = RepositoryLocation::Kind::kRados;
    l.pool = PoolName();
    l.name = name.empty() ? name_ : name;
    return l;
  }
  static RadosOptions Options(int lease_s = 30) {
    RadosOptions o;
    o.connect_timeout_s = 20;
    o.lease_s = lease_s;
    return o;
  }
  // Another client of the pool (a connection of its own, as another
  // process or host would have).
  std::unique_ptr<RadosRepository> Open(int lease_s = 30) {
    auto r = RadosRepository::Open(Location(), Options(lease_s));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::unique_ptr<RadosRepository> InitAndOpen(int lease_s = 30) {
    EXPECT_OK(RadosRepository::Init(Location(), config_, Options()));
    return Open(lease_s);
  }

  static Revision MakeRevision(int64_t ts, uint64_t size) {
    Revision r;
    r.id = NewRevisionId();
    r.timestamp_us = ts;
    r.size = size;
    r.chunk_size = kDefaultChunkSize;
    r.tags = {"daily"};
    return r;
  }
  // An index whose slots are distinct digests, so a round trip shows.
  static RevisionIndex MakeIndex(uint64_t size, int seed) {
    RevisionIndex index(size, kDefaultChunkSize);
    for (size_t i = 0; i < index.slot_count(); ++i) {
      if (i % 3 == 2) continue;  // holes too
      const std::string s = std::to_string(seed) + "/" + std::to_string(i);
      index.set_slot(
          i, Digest::Of(std::span<const uint8_t>(
                 reinterpret_cast<const uint8_t*>(s.data()), s.size())));
    }
    return index;
  }

  std::string Head() const { return name_ + "/head"; }

  static std::vector<Locker> Lockers(const std::string& oid,
                                     const std::string& lock) {
    size_t tag_len = 256, clients_len = 4096, cookies_len = 4096,
           addrs_len = 4096;
    std::vector<char> tag(tag_len), clients(clients_len), cookies(cookies_len),
        addrs(addrs_len);
    int exclusive = 0;
    ssize_t r = rados_list_lockers(io_, oid.c_str(), lock.c_str(), &exclusive,
                                   tag.data(), &tag_len, clients.data(),
                                   &clients_len, cookies.data(), &cookies_len,
                                   addrs.data(), &addrs_len);
    std::vector<Locker> out;
    const char* c = clients.data();
    const char* k = cookies.data();
    for (ssize_t i = 0; i < r; ++i) {
      out.push_back({c, k});
      c += std::strlen(c) + 1;
      k += std::strlen(k) + 1;
    }
    return out;
  }
  // Breaks every holder's `lock` on `oid`, as an operator (or a client
  // that found the lease expired) would: the holder's process keeps
  // running and believes it still holds it.
  static void BreakLock(const std::string& oid, const std::string& lock) {
    auto lockers = Lockers(oid, lock);
    ASSERT_FALSE(lockers.empty()) << lock << " on " << oid;
    for (const auto& l : lockers) {
      ASSERT_EQ(rados_break_lock(io_, oid.c_str(), lock.c_str(),
                                 l.client.c_str(), l.cookie.c_str()),
                0);
    }
  }
  static bool Exists(const std::string& oid) {
    uint64_t size = 0;
    time_t mtime = 0;
    return rados_stat(io_, oid.c_str(), &size, &mtime) == 0;
  }

  std::string name_;
  RepositoryConfig config_;
};

rados_t RadosRepositoryTest::admin_ = nullptr;
rados_ioctx_t RadosRepositoryTest::io_ = nullptr;

TEST_F(RadosRepositoryTest, InitTwiceIsRefused) {
  ASSERT_OK(RadosRepository::Init(Location(), config_, Options()));
  Status again = RadosRepository::Init(Location(), config_, Options());
  EXPECT_TRUE(again.IsInvalidArgument()) << again.ToString();
  EXPECT_TRUE(Contains(again, Location().ToString())) << again.ToString();
  // The first one's config is untouched.
  auto repo = Open();
  ASSERT_NE(repo, nullptr);
  EXPECT_EQ(repo->config().source.at("type"), "file");
}

TEST_F(RadosRepositoryTest, OpenOfAMissingRepositoryIsNotFoundNamingIt) {
  auto r = RadosRepository::Open(Location("nosuch"), Options());
  ASSERT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status(), Location("nosuch").ToString()))
      << r.status().ToString();
  RepositoryLocation no_pool = Location();
  no_pool.pool = "backy-no-such-pool";
  auto p = RadosRepository::Open(no_pool, Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Contains(p.status(), "backy-no-such-pool"))
      << p.status().ToString();
}

TEST_F(RadosRepositoryTest, PublishScanAndLoadIndexRoundTrip) {
  auto repo = InitAndOpen();
  ASSERT_NE(repo, nullptr);
  Revision b = MakeRevision(2000, 10 * kDefaultChunkSize + 5);
  Revision a = MakeRevision(1000, 3 * kDefaultChunkSize);
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Publish(b, MakeIndex(b.size, 2)));
    ASSERT_OK(repo->Publish(a, MakeIndex(a.size, 1)));
    b.tags.insert("weekly");
    ASSERT_OK(repo->UpdateMetadata(b));
  }
  // Read through another client: what is published is in the pool.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  auto list = other->ScanRevisions();
  ASSERT_OK(list.status());
  EXPECT_TRUE(list->damaged.empty());
  ASSERT_EQ(list->healthy.size(), 2u);
  EXPECT_EQ(list->healthy[0].id, a.id);  // oldest first
  EXPECT_EQ(list->healthy[1].id, b.id);
  EXPECT_EQ(list->healthy[1].tags, (std::set<std::string>{"daily", "weekly"}));
  EXPECT_EQ(list->healthy[1].size, b.size);
  for (const auto& [rev, seed] : {std::pair{a, 1}, std::pair{b, 2}}) {
    auto index = other->LoadIndex(rev.id);
    ASSERT_OK(index.status());
    EXPECT_EQ(index->Encode(), MakeIndex(rev.size, seed).Encode());
    auto has = other->HasRevision(rev);
    ASSERT_OK(has.status());
    EXPECT_TRUE(*has);
  }
  auto ids = other->IndexIds();
  ASSERT_OK(ids.status());
  EXPECT_EQ(std::set<std::string>(ids->begin(), ids->end()),
            (std::set<std::string>{a.id, b.id}));
  // Forget: gone from the list at once, its index object stays for purge.
  {
    auto lock = repo->LockWriter("forget");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Forget(a.id));
  }
  auto after = other->Revisions();
  ASSERT_OK(after.status());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, b.id);
  EXPECT_TRUE(Exists(repo->IndexOid(a.id)));
}

TEST_F(RadosRepositoryTest, DamagedRevisionValueIsListedAndOthersStayUsable) {
  auto repo = InitAndOpen();
  ASSERT_NE(repo, nullptr);
  Revision a = MakeRevision(1000, kDefaultChunkSize);
  Revision b = MakeRevision(2000, kDefaultChunkSize);
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Publish(a, MakeIndex(a.size, 1)));
    ASSERT_OK(repo->Publish(b, MakeIndex(b.size, 2)));
  }
  // Another host overwrites a's metadata with garbage.
  rados_write_op_t op = rados_create_write_op();
  const std::string key = "rev." + a.id;
  const std::string garbage = "id: [unterminated\n\x01\x02";
  const char* k = key.c_str();
  const char* v = garbage.data();
  const size_t kl = key.size(), vl = garbage.size();
  rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
  ASSERT_EQ(rados_write_op_operate2(op, io_, Head().c_str(), nullptr, 0), 0);
  rados_release_write_op(op);

  auto list = repo->ScanRevisions();
  ASSERT_OK(list.status());
  ASSERT_EQ(list->damaged.size(), 1u);
  EXPECT_EQ(list->damaged[0].id, a.id);
  EXPECT_TRUE(list->damaged[0].status.IsCorruption())
      << list->damaged[0].status.ToString();
  EXPECT_TRUE(Contains(list->damaged[0].status, "rev." + a.id))
      << list->damaged[0].status.ToString();
  ASSERT_EQ(list->healthy.size(), 1u);
  EXPECT_EQ(list->healthy[0].id, b.id);
  auto revisions = repo->Revisions();
  ASSERT_OK(revisions.status());
  ASSERT_EQ(revisions->size(), 1u);
  ASSERT_OK(repo->LoadIndex(b.id).status());
  // A damaged revision's index still counts for purge.
  auto ids = repo->IndexIds();
  ASSERT_OK(ids.status());
  EXPECT_EQ(ids->size(), 2u);
}

TEST_F(RadosRepositoryTest, DamagedIndexObjectIsCorruptionNamingIt) {
  auto repo = InitAndOpen();
  ASSERT_NE(repo, nullptr);
  Revision r = MakeRevision(1000, 5 * kDefaultChunkSize);
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Publish(r, MakeIndex(r.size, 1)));
  }
  const std::string oid = repo->IndexOid(r.id);
  const std::string name = repo->IndexName(r);
  EXPECT_NE(name.find(oid), std::string::npos) << name;
  uint64_t size = 0;
  time_t mtime = 0;
  ASSERT_EQ(rados_stat(io_, oid.c_str(), &size, &mtime), 0);
  auto expect_corrupt = [&](const char* what) {
    auto index = repo->LoadIndex(r.id);
    ASSERT_TRUE(index.status().IsCorruption())
        << what << ": " << index.status().ToString();
    EXPECT_TRUE(Contains(index.status(), name))
        << what << ": " << index.status().ToString();
  };
  // Longer and shorter than the header says.
  ASSERT_EQ(rados_trunc(io_, oid.c_str(), size + 1), 0);
  expect_corrupt("one byte more");
  ASSERT_EQ(rados_trunc(io_, oid.c_str(), size - 16), 0);
  expect_corrupt("16 bytes short");
  // Back to the right size, but the magic damaged.
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Publish(r, MakeIndex(r.size, 1)));
  }
  ASSERT_OK(repo->LoadIndex(r.id).status());
  char b = 0;
  ASSERT_EQ(rados_read(io_, oid.c_str(), &b, 1, 0), 1);
  b ^= 0x55;
  ASSERT_EQ(rados_write(io_, oid.c_str(), &b, 1, 0), 0);
  expect_corrupt("damaged header");
  // A slot flipped: the checksum finds it.
  b ^= 0x55;
  ASSERT_EQ(rados_write(io_, oid.c_str(), &b, 1, 0), 0);
  ASSERT_OK(repo->LoadIndex(r.id).status());
  ASSERT_EQ(rados_read(io_, oid.c_str(), &b, 1, size - 3), 1);
  b ^= 1;
  ASSERT_EQ(rados_write(io_, oid.c_str(), &b, 1, size - 3), 0);
  expect_corrupt("damaged slot");
  // Gone altogether.
  ASSERT_EQ(rados_remove(io_, oid.c_str()), 0);
  expect_corrupt("missing");
}

TEST_F(RadosRepositoryTest, ChangesWithoutTheWriterLockAreRefused) {
  auto repo = InitAndOpen();
  ASSERT_NE(repo, nullptr);
  Revision r = MakeRevision(1000, kDefaultChunkSize);
  Status p = repo->Publish(r, MakeIndex(r.size, 1));
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(Contains(p, "writer lock")) << p.ToString();
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(repo->Publish(r, MakeIndex(r.size, 1)));
  }
  // The lock released: refused again.
  r.tags.insert("weekly");
  Status u = repo->UpdateMetadata(r);
  EXPECT_FALSE(u.ok());
  EXPECT_TRUE(Contains(u, "writer lock")) << u.ToString();
  Status f = repo->Forget(r.id);
  EXPECT_FALSE(f.ok());
  EXPECT_TRUE(Contains(f, "writer lock")) << f.ToString();
  Revision other = MakeRevision(2000, kDefaultChunkSize);
  EXPECT_FALSE(repo->Publish(other, MakeIndex(other.size, 2)).ok());
  // Nothing of it happened.
  auto revisions = repo->Revisions();
  ASSERT_OK(revisions.status());
  ASSERT_EQ(revisions->size(), 1u);
  EXPECT_EQ((*revisions)[0].id, r.id);
  EXPECT_EQ((*revisions)[0].tags, std::set<std::string>{"daily"});
}

TEST_F(RadosRepositoryTest, SecondWriterIsBusyNamingTheHolder) {
  auto a = InitAndOpen();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  {
    auto lock = a->LockWriter("backup");
    ASSERT_OK(lock.status());
    auto second = b->LockWriter("expire");
    ASSERT_TRUE(second.status().IsBusy()) << second.status().ToString();
    EXPECT_TRUE(Contains(second.status(),
                         "backup (pid " + std::to_string(::getpid()) + ")"))
        << second.status().ToString();
    EXPECT_TRUE(Contains(second.status(), Location().ToString()))
        << second.status().ToString();
    // And purge.lock exclusive cannot be had while a writer holds it shared.
    auto purge = b->LockPurge();
    ASSERT_TRUE(purge.status().IsBusy()) << purge.status().ToString();
  }
  // Released: the other one gets both.
  {
    auto lock = b->LockWriter("expire");
    ASSERT_OK(lock.status());
  }
  auto purge = b->LockPurge();
  ASSERT_OK(purge.status());
  // While purge runs, no writer slips in: LockWriter waits for it, so
  // check from a thread that it has not returned while purge is held.
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto lock = a->LockWriter("backup");
    EXPECT_OK(lock.status());
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(got.load());
  purge->Release();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST_F(RadosRepositoryTest, LockOfAVanishedHolderExpiresWithItsLease) {
  auto repo = InitAndOpen(3);
  ASSERT_NE(repo, nullptr);
  // A holder that took the writer lock for 3 s and died without renewing
  // (as kill -9 leaves it): taken here by the admin client, never renewed.
  struct timeval tv = {3, 0};
  ASSERT_EQ(rados_lock_exclusive(io_, Head().c_str(), "writer", "deadbeef",
                                 "backup (pid 1) on gone", &tv, 0),
            0);
  const auto start = std::chrono::steady_clock::now();
  auto busy = repo->LockWriter("backup");
  ASSERT_TRUE(busy.status().IsBusy()) << busy.status().ToString();
  while (true) {
    auto lock = repo->LockWriter("backup");
    if (lock.ok()) break;
    ASSERT_TRUE(lock.status().IsBusy()) << lock.status().ToString();
    ASSERT_LT(std::chrono::steady_clock::now() - start,
              std::chrono::seconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(2500));
}

TEST_F(RadosRepositoryTest, LiveReleasedAndStalePins) {
  auto writer = InitAndOpen();
  auto reader = Open(3);
  auto purger = Open();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(purger, nullptr);
  Revision r = MakeRevision(1000, kDefaultChunkSize);
  Revision q = MakeRevision(2000, kDefaultChunkSize);
  {
    auto lock = writer->LockWriter("backup");
    ASSERT_OK(lock.status());
    ASSERT_OK(writer->Publish(r, MakeIndex(r.size, 1)));
    ASSERT_OK(writer->Publish(q, MakeIndex(q.size, 2)));
  }
  auto pin = reader->PinRevision(r, "nbd-server");
  ASSERT_OK(pin.status());
  ASSERT_OK(pin->LoadIndex().status());
  {
    auto lock = writer->LockWriter("forget");
    ASSERT_OK(lock.status());
    ASSERT_OK(writer->Forget(r.id));
  }
  // A pin of a revision forgotten since it was listed is refused.
  auto late = reader->PinRevision(r, "restore");
  EXPECT_TRUE(late.status().IsNotFound()) << late.status().ToString();

  // Leases are 3 s on the reader: the live pin outlives them (renewed).
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto marks = [&](std::vector<std::string>* ids) {
    return purger->ForEachLivePin(
        [&](const Repository::PinnedIndex& p, const Result<RevisionIndex>& i) {
          ids->push_back(p.revision_id);
          EXPECT_OK(i.status());
          if (i.ok()) {
            EXPECT_EQ(i->Encode(), MakeIndex(r.size, 1).Encode());
          }
          return Status::OK();
        });
  };
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    std::vector<std::string> ids;
    auto stale = marks(&ids);
    ASSERT_OK(stale.status());
    EXPECT_EQ(ids, std::vector<std::string>{r.id});
    EXPECT_TRUE(stale->empty());
  }
  // Released: gone, key and object.
  pin->Release();
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    std::vector<std::string> ids;
    auto stale = marks(&ids);
    ASSERT_OK(stale.status());
    EXPECT_TRUE(ids.empty());
    EXPECT_TRUE(stale->empty());
  }
  // A reader that pinned q with a 3 s lease and vanished without
  // renewing it or letting go: its pin object and key stay, the lock
  // expires, and purge lists it stale.
  const std::string token = "00000000deadbeef";
  const std::string pin_oid = writer->PinOid(token);
  const std::string note = q.id + "\nrestore (pid 1) on gone\n";
  ASSERT_EQ(rados_write_full(io_, pin_oid.c_str(), note.data(), note.size()),
            0);
  struct timeval tv = {3, 0};
  ASSERT_EQ(rados_lock_exclusive(io_, pin_oid.c_str(), "pin", "c0ffee",
                                 "restore (pid 1) on gone", &tv, 0),
            0);
  {
    rados_write_op_t op = rados_create_write_op();
    const std::string key = "pin." + token;
    const std::string value = q.id + "\trestore (pid 1) on gone";
    const char* k = key.c_str();
    const char* v = value.data();
    const size_t kl = key.size(), vl = value.size();
    rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
    ASSERT_EQ(rados_write_op_operate2(op, io_, Head().c_str(), nullptr, 0), 0);
    rados_release_write_op(op);
  }
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    std::vector<std::string> ids;
    auto stale = purger->ForEachLivePin(
        [&](const Repository::PinnedIndex& p, const Result<RevisionIndex>&) {
          ids.push_back(p.revision_id);
          return Status::OK();
        });
    ASSERT_OK(stale.status());
    EXPECT_EQ(ids, std::vector<std::string>{q.id});  // still live
    EXPECT_TRUE(stale->empty());
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    std::vector<std::string> ids;
    auto stale = purger->ForEachLivePin(
        [&](const Repository::PinnedIndex& p, const Result<RevisionIndex>&) {
          ids.push_back(p.revision_id);
          return Status::OK();
        });
    ASSERT_OK(stale.status());
    EXPECT_TRUE(ids.empty());
    EXPECT_EQ(*stale, std::vector<std::string>{token});
    ASSERT_OK(purger->RemoveStalePins(*stale));
    EXPECT_FALSE(Exists(pin_oid));
    auto again = purger->ForEachLivePin(
        [](const Repository::PinnedIndex&, const Result<RevisionIndex>&) {
          return Status::OK();
        });
    ASSERT_OK(again.status());
    EXPECT_TRUE(again->empty());
  }
}

// Fencing: a writer whose lock was broken behind its back (an operator's
// `rados lock break`, or a lease another client saw expire) believes it
// still holds it — Valid() says OK until its renewer next runs — yet the
// OSD refuses its publish, through assert_locked in the same operation.
TEST_F(RadosRepositoryTest, PublishIsFencedByTheOsdOnceTheLockIsBroken) {
  auto repo = InitAndOpen(30);  // renewed every 10 s: not before the publish
  auto other = Open();
  ASSERT_NE(repo, nullptr);
  ASSERT_NE(other, nullptr);
  Revision r = MakeRevision(1000, kDefaultChunkSize);
  Revision s = MakeRevision(2000, kDefaultChunkSize);
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    BreakLock(Head(), "writer");
    ASSERT_OK(lock->Valid());  // this process cannot know yet
    Status p = repo->Publish(r, MakeIndex(r.size, 1));
    ASSERT_TRUE(p.IsBusy()) << p.ToString();
    EXPECT_TRUE(Contains(p, "writer lock")) << p.ToString();
    EXPECT_TRUE(Contains(p, r.id)) << p.ToString();
    // The other client takes the lock meanwhile and publishes; the first
    // one still cannot, and cannot forget the other's revision.
    auto theirs = other->LockWriter("backup");
    ASSERT_OK(theirs.status());
    ASSERT_OK(other->Publish(s, MakeIndex(s.size, 2)));
    EXPECT_TRUE(repo->Forget(s.id).IsBusy());
    EXPECT_TRUE(repo->Publish(r, MakeIndex(r.size, 1)).IsBusy());
  }
  auto revisions = other->Revisions();
  ASSERT_OK(revisions.status());
  ASSERT_EQ(revisions->size(), 1u);
  EXPECT_EQ((*revisions)[0].id, s.id);
  // The same for the purge lease a writer holds shared: once broken (a
  // purge may have run since), the publish is refused naming it.
  {
    auto lock = repo->LockWriter("backup");
    ASSERT_OK(lock.status());
    BreakLock(Head(), "purge");
    ASSERT_OK(lock->Valid());
    Status p = repo->Publish(r, MakeIndex(r.size, 1));
    ASSERT_TRUE(p.IsBusy()) << p.ToString();
    EXPECT_TRUE(Contains(p, "purge lock")) << p.ToString();
  }
  auto has = other->HasRevision(r);
  ASSERT_OK(has.status());
  EXPECT_FALSE(*has);
}

TEST_F(RadosRepositoryTest, RemoveLeftoversKeepsPinnedForgottenIndexes) {
  auto writer = InitAndOpen();
  auto reader = Open();
  auto purger = Open();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(purger, nullptr);
  Revision kept = MakeRevision(1000, kDefaultChunkSize);
  Revision gone = MakeRevision(2000, kDefaultChunkSize);
  Revision pinned = MakeRevision(3000, kDefaultChunkSize);
  {
    auto lock = writer->LockWriter("backup");
    ASSERT_OK(lock.status());
    for (const auto& r : {kept, gone, pinned}) {
      ASSERT_OK(writer->Publish(r, MakeIndex(r.size, 1)));
    }
  }
  auto pin = reader->PinRevision(pinned, "restore");
  ASSERT_OK(pin.status());
  {
    auto lock = writer->LockWriter("forget");
    ASSERT_OK(lock.status());
    ASSERT_OK(writer->Forget(gone.id));
    ASSERT_OK(writer->Forget(pinned.id));
  }
  // A crashed writer's index that never got its metadata.
  const std::string crashed = writer->IndexOid(NewRevisionId());
  const std::string bytes = "x";
  ASSERT_EQ(rados_write_full(io_, crashed.c_str(), bytes.data(), 1), 0);
  // Another repository's index in the same pool is not this one's.
  const std::string foreign = "other/index/" + NewRevisionId();
  ASSERT_EQ(rados_write_full(io_, foreign.c_str(), bytes.data(), 1), 0);

  // Without purge.lock exclusive it does nothing.
  ASSERT_OK(purger->RemoveLeftovers());
  EXPECT_TRUE(Exists(crashed));
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    ASSERT_OK(purger->RemoveLeftovers());
  }
  EXPECT_TRUE(Exists(writer->IndexOid(kept.id)));
  EXPECT_TRUE(Exists(writer->IndexOid(pinned.id)));
  EXPECT_FALSE(Exists(writer->IndexOid(gone.id)));
  EXPECT_FALSE(Exists(crashed));
  EXPECT_TRUE(Exists(foreign));
  ASSERT_OK(pin->LoadIndex().status());
  // Once the pin is let go, the next purge removes it.
  pin->Release();
  {
    auto purge = purger->LockPurge();
    ASSERT_OK(purge.status());
    ASSERT_OK(purger->RemoveLeftovers());
  }
  EXPECT_FALSE(Exists(writer->IndexOid(pinned.id)));
  EXPECT_TRUE(Exists(writer->IndexOid(kept.id)));
  rados_remove(io_, foreign.c_str());
}

}  // namespace
}  // namespace backy::store
