// RadosChunkStore against a real cluster: the conformance suite, and what
// only a RADOS store has (objects damaged or planted with librados, a pool
// shared with other prefixes, connecting). Run under tests/ceph/cluster.sh,
// which exports CEPH_CONF; the tests make a pool of their own and delete it.
#include "store/rados_chunk_store.h"

#include <netinet/in.h>
#include <rados/librados.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "store/chunk_store_conformance.h"
#include "store/rados_pool.h"

namespace backy::store {
namespace {

// The test pool, made once for the binary.
class RadosEnvironment : public ::testing::Environment {
 public:
  static std::shared_ptr<RadosPool>& Pool() {
    static std::shared_ptr<RadosPool> pool;
    return pool;
  }
  static const std::string& PoolName() {
    static const std::string name = "backy-test-" + std::to_string(::getpid());
    return name;
  }

  void SetUp() override {
    ASSERT_NE(std::getenv("CEPH_CONF"), nullptr)
        << "run under tests/ceph/cluster.sh run";
    ASSERT_EQ(rados_create(&admin_, nullptr), 0);
    ASSERT_EQ(rados_conf_read_file(admin_, nullptr), 0);
    ASSERT_EQ(rados_connect(admin_), 0);
    ASSERT_EQ(rados_pool_create(admin_, PoolName().c_str()), 0);
    RadosOptions options;
    options.connect_timeout_s = 20;
    auto pool = RadosPool::Connect(options, PoolName());
    ASSERT_OK(pool.status());
    Pool() = *pool;
  }
  void TearDown() override {
    Pool().reset();
    if (admin_ != nullptr) {
      rados_pool_delete(admin_, PoolName().c_str());
      rados_shutdown(admin_);
    }
  }

 private:
  rados_t admin_ = nullptr;
};

// Each store gets a prefix of its own in the shared pool, so tests see
// only their own chunks (and List's prefix filter is exercised by all).
std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(++n) + "/";
}

struct RadosFactory {
  std::unique_ptr<ChunkStore> Make() {
    return std::make_unique<RadosChunkStore>(
        RadosEnvironment::Pool(), FreshPrefix(), CompressionOptions{});
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Rados, ChunkStoreTest, RadosFactory);

class RadosChunkStoreTest : public ::testing::Test {
 protected:
  RadosChunkStoreTest()
      : pool_(RadosEnvironment::Pool()),
        store_(pool_, FreshPrefix(), CompressionOptions{}) {}

  rados_ioctx_t io() { return pool_->io(); }

  Digest PutOne(size_t size, uint64_t seed) {
    auto data = RandomData(size, seed);
    Digest d = Digest::Of(data);
    EXPECT_OK(store_.Put(d, data).status());
    EXPECT_OK(store_.Sync());
    return d;
  }

  std::shared_ptr<RadosPool> pool_;
  RadosChunkStore store_;
};

TEST_F(RadosChunkStoreTest, ObjectNamesAndChunkName) {
  Digest d = PutOne(1000, 1);
  const std::string oid = store_.ChunkOid(d);
  EXPECT_EQ(oid.substr(oid.find('/')), "/chunk/" + d.Hex());
  EXPECT_EQ(store_.ChunkName(d),
            "rados:" + RadosEnvironment::PoolName() + ":" + oid);
  uint64_t size = 0;
  time_t mtime = 0;
  EXPECT_EQ(rados_stat(io(), oid.c_str(), &size, &mtime), 0);
  ASSERT_OK(store_.Quarantine(d));
  EXPECT_EQ(rados_stat(io(), oid.c_str(), &size, &mtime), -ENOENT);
  const std::string q = store_.QuarantineOid(d);
  EXPECT_EQ(q.substr(q.find('/')), "/quarantine/" + d.Hex());
  uint64_t qsize = 0;
  EXPECT_EQ(rados_stat(io(), q.c_str(), &qsize, &mtime), 0);
  EXPECT_EQ(qsize, size);
}

TEST_F(RadosChunkStoreTest, CorruptObjectIsCorruptionNamingIt) {
  auto data = RandomData(1 << 20, 42);
  Digest d = Digest::Of(data);
  ASSERT_OK(store_.Put(d, data).status());
  ASSERT_OK(store_.Sync());
  const std::string oid = store_.ChunkOid(d);
  char b = 0;
  ASSERT_EQ(rados_read(io(), oid.c_str(), &b, 1, 5000), 1);
  b ^= 1;
  ASSERT_EQ(rados_write(io(), oid.c_str(), &b, 1, 5000), 0);
  std::vector<uint8_t> out;
  Status s = store_.Get(d, &out);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find(store_.ChunkName(d)), std::string::npos)
      << s.ToString();
  // The reader finds it in the block that holds byte 5000 of the object.
  auto reader = store_.Open(d);
  ASSERT_OK(reader.status());
  bool found = false;
  std::vector<uint8_t> part(4096);
  for (uint64_t off = 0; off < data.size(); off += part.size()) {
    Status r = (*reader)->Read(off, part);
    if (r.IsCorruption()) {
      found = true;
      EXPECT_NE(r.ToString().find(store_.ChunkName(d)), std::string::npos);
    } else {
      ASSERT_OK(r);
    }
  }
  EXPECT_TRUE(found);
  // A damaged header is found by Open() itself.
  b = 'X';
  ASSERT_EQ(rados_write(io(), oid.c_str(), &b, 1, 0), 0);
  EXPECT_TRUE(store_.Open(d).status().IsCorruption());
  EXPECT_TRUE(store_.PlainSize(d).status().IsCorruption());
}

TEST_F(RadosChunkStoreTest, ObjectOfTheWrongSizeIsRefused) {
  Digest d = PutOne(1 << 20, 5);
  const std::string oid = store_.ChunkOid(d);
  uint64_t size = 0;
  time_t mtime = 0;
  ASSERT_EQ(rados_stat(io(), oid.c_str(), &size, &mtime), 0);
  // One byte more than the block table says, then larger than any chunk
  // can be: Corruption, without reading (or allocating) the object.
  for (uint64_t bad : {size + 1, RadosChunkStore::kMaxObjectSize + 1}) {
    ASSERT_EQ(rados_trunc(io(), oid.c_str(), bad), 0);
    std::vector<uint8_t> out;
    Status get = store_.Get(d, &out);
    auto reader = store_.Open(d);
    auto plain = store_.PlainSize(d);
    std::vector<uint8_t> part(4096);
    Status read = store_.Read(d, 0, part);
    for (const Status& s : {get, reader.status(), plain.status(), read}) {
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.ToString().find(store_.ChunkName(d)), std::string::npos)
          << s.ToString();
    }
    if (bad > RadosChunkStore::kMaxObjectSize) {
      EXPECT_NE(get.ToString().find("larger than a chunk can be"),
                std::string::npos)
          << get.ToString();
    }
  }
  ASSERT_EQ(rados_trunc(io(), oid.c_str(), size - 1), 0);
  std::vector<uint8_t> out;
  EXPECT_TRUE(store_.Get(d, &out).IsCorruption());
  ASSERT_OK(store_.Remove(d));
}

TEST_F(RadosChunkStoreTest, ListIgnoresOtherPrefixesAndForeignObjects) {
  std::set<Digest> put;
  for (int i = 0; i < 3; ++i) put.insert(PutOne(1000 + i, 70 + i));
  const Digest other = Digest::Of(RandomData(10, 99));
  const std::string prefix =
      store_.ChunkOid(other).substr(0, store_.ChunkOid(other).find('/') + 1);
  std::string upper = other.Hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  for (const std::string& foreign : {
           prefix + "chunk/notadigest",
           prefix + "chunk/" + upper,
           prefix + "chunk/" + other.Hex() + ".tmp",
           prefix + "chunk/" + other.Hex().substr(1),
           prefix + "quarantine/" + other.Hex(),
           prefix + "head",
           "chunk/" + other.Hex(),
           "elsewhere/chunk/" + other.Hex(),
       }) {
    ASSERT_EQ(rados_write_full(io(), foreign.c_str(), "x", 1), 0) << foreign;
  }
  // Another store's chunks in the same pool.
  RadosChunkStore neighbour(pool_, FreshPrefix(), CompressionOptions{});
  auto data = RandomData(500, 98);
  ASSERT_OK(neighbour.Put(Digest::Of(data), data).status());
  ASSERT_OK(neighbour.Sync());
  std::set<Digest> listed;
  ASSERT_OK(store_.List([&](const Digest& d) { listed.insert(d); }));
  EXPECT_EQ(listed, put);
}

TEST_F(RadosChunkStoreTest, ConcurrentPutsAndReadsFromThreads) {
  // 8 threads, 160 Puts of 40 distinct chunks (each put by 4 threads),
  // each read back at once by the thread that put it: more than the
  // window of writes in flight, so Put() has to wait for room.
  constexpr int kThreads = 8, kPerThread = 20, kDistinct = 40;
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto data = RandomData(256 * 1024, (t * kPerThread + i) % kDistinct);
        Digest d = Digest::Of(data);
        auto put = store_.Put(d, data);
        EXPECT_TRUE(put.ok()) << put.status().ToString();
        if (put.ok() && put->created) ++created;
        std::vector<uint8_t> out;
        Status s = store_.Get(d, &out);  // waits for its write
        EXPECT_TRUE(s.ok()) << s.ToString();
        EXPECT_EQ(out, data);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK(store_.Sync());
  EXPECT_EQ(created.load(), kDistinct);  // exactly one Put created each
  size_t n = 0;
  ASSERT_OK(store_.List([&](const Digest&) { ++n; }));
  EXPECT_EQ(n, static_cast<size_t>(kDistinct));
}

// Sets an option of osd.0 at run time; the command's status.
int SetOsdOption(rados_t cluster, const std::string& name,
                 const std::string& value) {
  const std::string json = R"({"prefix": "injectargs", "injected_args": ["--)" +
                           name + "=" + value + R"("]})";
  const char* cmd[] = {json.c_str()};
  char* out = nullptr;
  char* outs = nullptr;
  size_t out_len = 0, outs_len = 0;
  const int r = rados_osd_command(cluster, 0, cmd, 1, nullptr, 0, &out,
                                  &out_len, &outs, &outs_len);
  rados_buffer_free(out);
  rados_buffer_free(outs);
  return r;
}

// A write that fails after Put() returned (here: the OSD refuses writes
// larger than osd_max_write_size, while the stat before it succeeds) is
// reported by the next Sync(), once, naming the chunk; a Put() of the
// chunk while its write is in flight is deduplicated, and one after the
// failure writes it again.
TEST_F(RadosChunkStoreTest, FailedWriteIsReportedBySync) {
  rados_t cluster = pool_->cluster();
  std::vector<uint8_t> noise(kMaxChunkSize);  // incompressible: > 4 MiB stored
  std::mt19937_64 rng(12);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  const Digest d = Digest::Of(noise);
  ASSERT_EQ(SetOsdOption(cluster, "osd_max_write_size", "4"), 0);
  struct Restore {
    rados_t cluster;
    ~Restore() { SetOsdOption(cluster, "osd_max_write_size", "90"); }
  } restore{cluster};
  auto put = store_.Put(d, noise);
  ASSERT_OK(put.status());
  EXPECT_TRUE(put->created);
  auto again = store_.Put(d, noise);
  ASSERT_OK(again.status());
  EXPECT_FALSE(again->created);
  Status s = store_.Sync();
  ASSERT_EQ(SetOsdOption(cluster, "osd_max_write_size", "90"), 0);
  EXPECT_FALSE(s.ok());
  std::printf("the failed write: %s\n", s.ToString().c_str());
  EXPECT_NE(s.ToString().find("writing chunk " + d.Hex()), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.ToString().find(store_.ChunkName(d)), std::string::npos)
      << s.ToString();
  EXPECT_OK(store_.Sync());  // reported once
  put = store_.Put(d, noise);
  ASSERT_OK(put.status());
  EXPECT_TRUE(put->created);
  ASSERT_OK(store_.Sync());
  std::vector<uint8_t> out;
  ASSERT_OK(store_.Get(d, &out));
  EXPECT_EQ(out, noise);
}

// The round trips the design promises (rados_chunk_store.h): a backed-up
// chunk costs a stat plus, when new, one write; an open chunk one read per
// Read() of just its blocks. Also prints what they take on this cluster.
TEST_F(RadosChunkStoreTest, RoundTripsPerOperation) {
  auto calls = [&] { return store_.RadosCalls(); };
  auto data = RandomData(kMaxChunkSize, 11);
  Digest d = Digest::Of(data);
  uint64_t before = calls();
  ASSERT_OK(store_.Put(d, data).status());
  ASSERT_OK(store_.Sync());
  EXPECT_EQ(calls() - before, 2u) << "new chunk: stat + write";
  before = calls();
  ASSERT_OK(store_.Put(d, data).status());
  EXPECT_EQ(calls() - before, 1u) << "existing chunk: stat";
  before = calls();
  std::vector<uint8_t> out;
  ASSERT_OK(store_.Get(d, &out));
  EXPECT_EQ(calls() - before, 1u) << "Get";
  before = calls();
  auto reader = store_.Open(d);
  ASSERT_OK(reader.status());
  EXPECT_EQ(calls() - before, 1u) << "Open: stat + header and table";
  std::mt19937 rng(3);
  std::vector<uint8_t> part(4096);
  constexpr int kReads = 200;
  before = calls();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) {
    const uint64_t off = (rng() % (data.size() / 4096)) * 4096;
    ASSERT_OK((*reader)->Read(off, part));
    ASSERT_TRUE(std::equal(part.begin(), part.end(), data.begin() + off));
  }
  const double read_us = std::chrono::duration<double, std::micro>(
                             std::chrono::steady_clock::now() - start)
                             .count() /
                         kReads;
  EXPECT_EQ(calls() - before, uint64_t{kReads}) << "one read per 4 KiB Read";
  before = calls();
  ASSERT_OK(store_.Read(d, 12345, part));
  EXPECT_EQ(calls() - before, 2u) << "Read by digest: Open + read";

  // The same on incompressible data (16 KiB raw blocks).
  std::vector<uint8_t> noise(kMaxChunkSize);
  std::mt19937_64 noise_rng(4);
  for (auto& b : noise) b = static_cast<uint8_t>(noise_rng());
  const Digest nd = Digest::Of(noise);
  ASSERT_OK(store_.Put(nd, noise).status());
  auto raw_reader = store_.Open(nd);
  ASSERT_OK(raw_reader.status());
  EXPECT_TRUE((*raw_reader)->IsRawBlock(0));
  before = calls();
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) {
    const uint64_t off = (rng() % (noise.size() / 4096)) * 4096;
    ASSERT_OK((*raw_reader)->Read(off, part));
  }
  const double raw_read_us = std::chrono::duration<double, std::micro>(
                                 std::chrono::steady_clock::now() - start)
                                 .count() /
                             kReads;
  EXPECT_EQ(calls() - before, uint64_t{kReads});

  // Throughput of new chunks through the window of writes in flight.
  constexpr int kChunks = 24;
  std::vector<std::vector<uint8_t>> chunks;
  for (int i = 0; i < kChunks; ++i) {
    chunks.push_back(RandomData(kMaxChunkSize, 100 + i));
  }
  before = calls();
  start = std::chrono::steady_clock::now();
  for (const auto& c : chunks) ASSERT_OK(store_.Put(Digest::Of(c), c).status());
  ASSERT_OK(store_.Sync());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(calls() - before, 2u * kChunks);
  std::printf(
      "RADOS round trips: new chunk 2, existing chunk 1, Open 1, 4 KiB read "
      "1 (%.0f us from a 512 KiB zstd block, %.0f us from a 16 KiB raw "
      "block), Get 1; %d new 4 MiB chunks (zstd + write, one thread) at "
      "%.0f MiB/s\n",
      read_us, raw_read_us, kChunks, kChunks * 4 / seconds);
}

// Writes a ceph.conf whose monitor is a closed port on this host.
std::string UnreachableConf() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);  // nobody listens there now
  const std::string path =
      std::filesystem::temp_directory_path() /
      ("backy-unreachable-" + std::to_string(::getpid()) + ".conf");
  std::ofstream(path) << "[global]\nmon host = v2:127.0.0.1:"
                      << ntohs(addr.sin_port)
                      << "\nauth client required = none\n"
                         "ms bind msgr1 = false\n";
  return path;
}

TEST(RadosPoolTest, UnreachableMonitorFailsWithinTheTimeout) {
  RadosOptions options;
  options.conf_path = UnreachableConf();
  options.connect_timeout_s = 3;
  const auto start = std::chrono::steady_clock::now();
  auto pool = RadosPool::Connect(options, "rbd");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::filesystem::remove(options.conf_path);
  ASSERT_FALSE(pool.ok());
  const std::string msg = pool.status().ToString();
  EXPECT_TRUE(pool.status().IsIOError()) << msg;
  EXPECT_LT(seconds, 10.0) << msg;
  EXPECT_NE(msg.find("connecting to the Ceph cluster at v2:127.0.0.1:"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("gave up after 3 s"), std::string::npos) << msg;
  EXPECT_NE(msg.find("client.admin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(rbd)"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// The test cluster runs without cephx, so a client that insists on it
// (with a keyring holding a wrong key) is refused as one with a wrong key
// would be: within the timeout, in one line naming the client.
TEST(RadosPoolTest, RefusedKeyFailsWithinTheTimeout) {
  const std::string keyring =
      std::filesystem::temp_directory_path() /
      ("backy-wrong-key-" + std::to_string(::getpid()) + ".keyring");
  std::ofstream(keyring)
      << "[client.admin]\n\tkey = AQBnVlBlAAAAABAAqg6OWMx+bm5dT1tuI0MeWQ==\n";
  const char* old_args = std::getenv("CEPH_ARGS");
  const std::string saved = old_args != nullptr ? old_args : "";
  ::setenv("CEPH_ARGS", "--auth_supported=cephx --auth_client_required=cephx",
           1);
  RadosOptions options;
  options.keyring = keyring;
  options.connect_timeout_s = 3;
  const auto start = std::chrono::steady_clock::now();
  auto pool = RadosPool::Connect(options, RadosEnvironment::PoolName());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (old_args != nullptr) {
    ::setenv("CEPH_ARGS", saved.c_str(), 1);
  } else {
    ::unsetenv("CEPH_ARGS");
  }
  std::filesystem::remove(keyring);
  ASSERT_FALSE(pool.ok());
  const std::string msg = pool.status().ToString();
  std::printf("refused key: %s (%.1f s)\n", msg.c_str(), seconds);
  EXPECT_TRUE(pool.status().IsIOError()) << msg;
  EXPECT_LT(seconds, 10.0) << msg;
  EXPECT_NE(msg.find("connecting to the Ceph cluster at"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("as client.admin"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(RadosPoolTest, MissingPoolIsNotFoundNamingIt) {
  const auto start = std::chrono::steady_clock::now();
  auto pool = RadosPool::Connect(RadosOptions{}, "no-such-pool", "ns1");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(pool.status().IsNotFound()) << pool.status().ToString();
  EXPECT_NE(pool.status().ToString().find(
                "pool 'no-such-pool' does not exist (no-such-pool/ns1)"),
            std::string::npos)
      << pool.status().ToString();
  EXPECT_LT(seconds, 30.0);
}

TEST(RadosPoolTest, UnreadableConfigurationIsNamed) {
  RadosOptions options;
  options.conf_path = "/nonexistent/ceph.conf";
  auto pool = RadosPool::Connect(options, "rbd", "", "rbd/vm1");
  ASSERT_FALSE(pool.ok());
  const std::string msg = pool.status().ToString();
  EXPECT_NE(msg.find("reading Ceph configuration /nonexistent/ceph.conf"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("(rbd/vm1)"), std::string::npos) << msg;
}

TEST(RadosPoolTest, NamesOfPoolNamespaceAndObject) {
  auto pool =
      RadosPool::Connect(RadosOptions{}, RadosEnvironment::PoolName(), "ns1");
  ASSERT_OK(pool.status());
  EXPECT_EQ((*pool)->Name(), RadosEnvironment::PoolName() + "/ns1");
  EXPECT_EQ((*pool)->ObjectName("vm1/head"),
            RadosEnvironment::PoolName() + "/ns1:vm1/head");
  // A namespace is a separate space of names: a store there lists nothing
  // of the default namespace's.
  RadosChunkStore in_ns(*pool, "t/", CompressionOptions{});
  RadosChunkStore outside(RadosEnvironment::Pool(), "t/", CompressionOptions{});
  auto data = RandomData(100, 3);
  ASSERT_OK(outside.Put(Digest::Of(data), data).status());
  ASSERT_OK(outside.Sync());
  size_t n = 0;
  ASSERT_OK(in_ns.List([&](const Digest&) { ++n; }));
  EXPECT_EQ(n, 0u);
  auto c = in_ns.Contains(Digest::Of(data));
  ASSERT_OK(c.status());
  EXPECT_FALSE(*c);
  ASSERT_OK(outside.Remove(Digest::Of(data)));
}

}  // namespace
}  // namespace backy::store

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(
      new backy::store::RadosEnvironment);  // gtest owns it
  return RUN_ALL_TESTS();
}
