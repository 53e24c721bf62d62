// Protocol tests: nbd_test_server in a child process, driven through the
// libnbd C API and, for misbehaving clients, through raw sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace backy::nbd {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1024 * 1024;

// A running nbd_test_server; stopped with SIGTERM on destruction.
class ServerProcess {
 public:
  ServerProcess(const std::string& socket, std::vector<std::string> args)
      : socket_(socket) {
    args.insert(args.begin(), {NBD_TEST_SERVER, "--socket", socket});
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Ready once the socket accepts connections.
    for (int i = 0; i < 500; ++i) {
      const int fd = Dial();
      if (fd >= 0) {
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "server did not come up on " << socket;
  }
  ~ServerProcess() {
    if (pid_ > 0) Stop();
  }

  // SIGTERM, then the exit status (-1 if it did not exit within 10 s).
  int Stop() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

  // A raw connected socket, or -1.
  int Dial() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, socket_.c_str(), sizeof(sa.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

struct HandleCloser {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

struct ConnectOptions {
  std::string name = "disk";
  bool structured = true;
  bool meta = true;
  bool opt_mode = false;
};

// Connects with libnbd; returns null (and records the error) on failure.
Handle Connect(const ServerProcess& server, const ConnectOptions& o = {},
               std::string* error = nullptr) {
  Handle h(nbd_create());
  if (!h) return nullptr;
  nbd_set_export_name(h.get(), o.name.c_str());
  nbd_set_request_structured_replies(h.get(), o.structured);
  nbd_set_full_info(h.get(), true);
  if (o.meta) nbd_add_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (o.opt_mode) nbd_set_opt_mode(h.get(), true);
  if (nbd_connect_unix(h.get(), server.socket().c_str()) == -1) {
    if (error) *error = nbd_get_error();
    return nullptr;
  }
  return h;
}

bool SendAll(int fd, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = ::send(fd, c, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool RecvAll(int fd, void* p, size_t n) {
  auto* c = static_cast<uint8_t*>(p);
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1) return false;
    const ssize_t r = ::recv(fd, c, n, 0);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// True if the peer closes `fd` within 5 s (pending data is discarded).
bool PeerCloses(int fd) {
  uint8_t buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1) return false;
    const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    if (r < 0) return false;
  }
}

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}
uint64_t GetBe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Raw handshake: fixed newstyle, NO_ZEROES, NBD_OPT_EXPORT_NAME; simple
// replies only. Returns the export size, or 0 on failure.
uint64_t RawHandshake(int fd, const std::string& name) {
  uint8_t greeting[18];
  if (!RecvAll(fd, greeting, sizeof(greeting))) return 0;
  if (GetBe(greeting, 8) != 0x4e42444d41474943ull) return 0;
  uint8_t cflags[4];
  PutBe(cflags, 3, 4);
  uint8_t opt[16];
  PutBe(opt, 0x49484156454F5054ull, 8);
  PutBe(opt + 8, 1, 4);  // NBD_OPT_EXPORT_NAME
  PutBe(opt + 12, name.size(), 4);
  if (!SendAll(fd, cflags, 4) || !SendAll(fd, opt, 16) ||
      !SendAll(fd, name.data(), name.size())) {
    return 0;
  }
  uint8_t reply[10];
  if (!RecvAll(fd, reply, sizeof(reply))) return 0;
  return GetBe(reply, 8);
}

void RawRequest(uint8_t* out, uint16_t type, uint64_t handle, uint64_t offset,
                uint32_t length, uint16_t flags = 0) {
  PutBe(out, 0x25609513, 4);
  PutBe(out + 4, flags, 2);
  PutBe(out + 6, type, 2);
  PutBe(out + 8, handle, 8);
  PutBe(out + 16, offset, 8);
  PutBe(out + 24, length, 4);
}

// Raw option haggling: greeting and client flags, then options.
bool RawGreet(int fd) {
  uint8_t greeting[18];
  if (!RecvAll(fd, greeting, sizeof(greeting))) return false;
  uint8_t cflags[4];
  PutBe(cflags, 3, 4);
  return SendAll(fd, cflags, 4);
}

bool RawOption(int fd, uint32_t option, const std::vector<uint8_t>& data) {
  uint8_t opt[16];
  PutBe(opt, 0x49484156454F5054ull, 8);
  PutBe(opt + 8, option, 4);
  PutBe(opt + 12, data.size(), 4);
  return SendAll(fd, opt, 16) && SendAll(fd, data.data(), data.size());
}

// Reads one option reply; returns its type (0 on failure).
uint32_t RawOptionReply(int fd, uint32_t option, std::string* payload) {
  uint8_t hdr[20];
  if (!RecvAll(fd, hdr, sizeof(hdr))) return 0;
  if (GetBe(hdr, 8) != 0x3e889045565a9ull || GetBe(hdr + 8, 4) != option) {
    return 0;
  }
  payload->resize(GetBe(hdr + 16, 4));
  if (!RecvAll(fd, payload->data(), payload->size())) return 0;
  return static_cast<uint32_t>(GetBe(hdr + 12, 4));
}

std::vector<uint8_t> GoPayload(const std::string& name) {
  std::vector<uint8_t> v(4 + name.size() + 2);
  PutBe(v.data(), name.size(), 4);
  std::memcpy(v.data() + 4, name.data(), name.size());
  PutBe(v.data() + 4 + name.size(), 0, 2);  // no info requests
  return v;
}

constexpr uint32_t kOptGo = 7;
constexpr uint32_t kOptList = 3;
constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepErrUnsup = 0x80000001;
constexpr uint32_t kRepErrPolicy = 0x80000002;
constexpr uint32_t kRepErrInvalid = 0x80000003;
constexpr uint32_t kRepErrUnknown = 0x80000006;

class NbdServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "nbd_server_test." +
                           std::to_string(::getpid()));
    fs::create_directories(*dir_);
    // 8 MiB + 1000 bytes of random data with zero regions: whole 64 KiB
    // blocks, a single 4 KiB block, and an unaligned run.
    image_ = new std::vector<uint8_t>(8 * kMiB + 1000);
    std::mt19937_64 rng(1234);
    for (auto& b : *image_) b = static_cast<uint8_t>(rng() | 1);
    auto zero = [](uint64_t off, uint64_t len) {
      std::fill(image_->begin() + off, image_->begin() + off + len, 0);
    };
    zero(0x10000, 0x30000);
    zero(0x200000, 0x1000);
    zero(0x300123, 0x5000);
    zero(6 * kMiB, 2 * kMiB);
    image_path_ = new std::string(*dir_ + "/disk.img");
    std::ofstream(*image_path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(image_->data()),
               static_cast<std::streamsize>(image_->size()));
    server_ = new ServerProcess(
        *dir_ + "/main.sock",
        {"--file", "disk=" + *image_path_ + "=test disk", "--mem",
         "big=" + std::to_string(40 * kMiB), "--threads", "4"});
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
    delete image_;
    delete image_path_;
  }

  static std::string Socket(const std::string& name) {
    return *dir_ + "/" + name + ".sock";
  }
  static std::vector<std::string> DiskArgs() {
    return {"--file", "disk=" + *image_path_ + "=test disk"};
  }
  // Sends `count` reads of `len` bytes at random offsets without waiting,
  // then checks every reply against the image.
  static void ExpectPipelinedReadsMatch(nbd_handle* h, int count, size_t len,
                                        uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::vector<uint8_t>> bufs(count, std::vector<uint8_t>(len));
    std::vector<uint64_t> offsets;
    std::vector<int64_t> cookies;
    for (int i = 0; i < count; ++i) {
      offsets.push_back(rng() % (image_->size() - len));
      const int64_t c = nbd_aio_pread(h, bufs[i].data(), len, offsets[i],
                                      NBD_NULL_COMPLETION, 0);
      ASSERT_GT(c, 0) << nbd_get_error();
      cookies.push_back(c);
    }
    while (nbd_aio_in_flight(h) > 0) {
      ASSERT_NE(nbd_poll(h, 5000), -1) << nbd_get_error();
    }
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(nbd_aio_command_completed(h, cookies[i]), 1);
      EXPECT_TRUE(std::equal(bufs[i].begin(), bufs[i].end(),
                             image_->begin() + offsets[i]))
          << "request " << i;
    }
  }
  static bool ReadMatches(nbd_handle* h, uint64_t offset, size_t len) {
    std::vector<uint8_t> buf(len);
    if (nbd_pread(h, buf.data(), len, offset, 0) != 0) {
      ADD_FAILURE() << nbd_get_error();
      return false;
    }
    return std::equal(buf.begin(), buf.end(), image_->begin() + offset);
  }

  static std::string* dir_;
  static std::vector<uint8_t>* image_;
  static std::string* image_path_;
  static ServerProcess* server_;
};

std::string* NbdServerTest::dir_;
std::vector<uint8_t>* NbdServerTest::image_;
std::string* NbdServerTest::image_path_;
ServerProcess* NbdServerTest::server_;

TEST_F(NbdServerTest, NegotiatesStructuredRepliesAndMetadata) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h) << nbd_get_error();
  EXPECT_EQ(nbd_get_structured_replies_negotiated(h.get()), 1);
  EXPECT_EQ(nbd_can_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
  EXPECT_EQ(nbd_get_size(h.get()), static_cast<int64_t>(image_->size()));
  EXPECT_EQ(nbd_is_read_only(h.get()), 1);
  EXPECT_EQ(nbd_can_multi_conn(h.get()), 1);
  EXPECT_EQ(nbd_can_flush(h.get()), 1);
  EXPECT_EQ(nbd_can_cache(h.get()), 1);
  EXPECT_EQ(nbd_can_df(h.get()), 1);
  EXPECT_EQ(nbd_can_trim(h.get()), 0);
  EXPECT_EQ(nbd_can_zero(h.get()), 0);
  EXPECT_EQ(nbd_get_block_size(h.get(), LIBNBD_SIZE_MINIMUM), 1);
  EXPECT_EQ(nbd_get_block_size(h.get(), LIBNBD_SIZE_PREFERRED), 4096);
  EXPECT_EQ(nbd_get_block_size(h.get(), LIBNBD_SIZE_MAXIMUM), 32 * kMiB);
  char* desc = nbd_get_export_description(h.get());
  ASSERT_NE(desc, nullptr) << nbd_get_error();
  EXPECT_STREQ(desc, "test disk");
  free(desc);
  const char* proto = nbd_get_protocol(h.get());
  EXPECT_STREQ(proto, "newstyle-fixed");
}

TEST_F(NbdServerTest, ReadsEqualTheFile) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  for (uint64_t off = 0; off < image_->size(); off += kMiB) {
    const size_t len = std::min<uint64_t>(kMiB, image_->size() - off);
    EXPECT_TRUE(ReadMatches(h.get(), off, len)) << "at " << off;
  }
  EXPECT_TRUE(ReadMatches(h.get(), 12345, 100000));     // unaligned
  EXPECT_TRUE(ReadMatches(h.get(), 0x300000, 0x6000));  // partly zero
  EXPECT_TRUE(ReadMatches(h.get(), image_->size() - 1, 1));
  // The maximum block size is accepted.
  Handle big = Connect(*server_, {.name = "big"});
  ASSERT_TRUE(big);
  std::vector<uint8_t> buf(32 * kMiB, 0xff);
  ASSERT_EQ(nbd_pread(big.get(), buf.data(), buf.size(), 0, 0), 0);
  EXPECT_TRUE(
      std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(NbdServerTest, SimpleRepliesWhenNotNegotiated) {
  Handle h = Connect(*server_, {.structured = false, .meta = false});
  ASSERT_TRUE(h);
  EXPECT_EQ(nbd_get_structured_replies_negotiated(h.get()), 0);
  EXPECT_EQ(nbd_can_df(h.get()), 0);
  EXPECT_TRUE(ReadMatches(h.get(), 0, 2 * kMiB));
  EXPECT_TRUE(ReadMatches(h.get(), 6 * kMiB - 100, 1000));
}

struct Chunks {
  int data = 0, holes = 0;
  static int Callback(void* user, const void*, size_t, uint64_t,
                      unsigned status, int*) {
    auto* self = static_cast<Chunks*>(user);
    if (status == LIBNBD_READ_DATA) ++self->data;
    if (status == LIBNBD_READ_HOLE) ++self->holes;
    return 0;
  }
};

TEST_F(NbdServerTest, StructuredReadsSendHolesUnlessDontFragment) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  // [0, 0x80000) holds data, a 192 KiB zero run, data.
  std::vector<uint8_t> buf(0x80000);
  Chunks sparse;
  ASSERT_EQ(
      nbd_pread_structured(h.get(), buf.data(), buf.size(), 0,
                           nbd_chunk_callback{.callback = Chunks::Callback,
                                              .user_data = &sparse,
                                              .free = nullptr},
                           0),
      0)
      << nbd_get_error();
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), image_->begin()));
  EXPECT_EQ(sparse.holes, 1);
  EXPECT_EQ(sparse.data, 2);

  std::fill(buf.begin(), buf.end(), 0xee);
  Chunks whole;
  ASSERT_EQ(
      nbd_pread_structured(h.get(), buf.data(), buf.size(), 0,
                           nbd_chunk_callback{.callback = Chunks::Callback,
                                              .user_data = &whole,
                                              .free = nullptr},
                           LIBNBD_CMD_FLAG_DF),
      0)
      << nbd_get_error();
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), image_->begin()));
  EXPECT_EQ(whole.holes, 0);
  EXPECT_EQ(whole.data, 1);
}

struct Extents {
  std::vector<std::pair<uint64_t, uint32_t>> list;  // (length, flags)
  static int Callback(void* user, const char* ctx, uint64_t, uint32_t* e,
                      size_t n, int*) {
    if (std::strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
    auto* self = static_cast<Extents*>(user);
    for (size_t i = 0; i + 1 < n; i += 2)
      self->list.push_back({e[i], e[i + 1]});
    return 0;
  }
};

TEST_F(NbdServerTest, BlockStatusShowsZeroBlocksAsHoles) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  // Expected: per 4 KiB block of the file, hole|zero iff all zeros.
  const uint64_t size = image_->size();
  std::vector<uint32_t> want;
  for (uint64_t off = 0; off < size; off += 4096) {
    const uint64_t end = std::min(size, off + 4096);
    const bool zero = std::all_of(image_->begin() + off, image_->begin() + end,
                                  [](uint8_t b) { return b == 0; });
    want.push_back(zero ? (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO) : 0);
  }
  ASSERT_GT(std::count(want.begin(), want.end(), 3u), 0);
  std::vector<uint32_t> got(want.size(), 99);
  uint64_t pos = 0;
  while (pos < size) {
    Extents ex;
    ASSERT_EQ(
        nbd_block_status(h.get(), size - pos, pos,
                         nbd_extent_callback{.callback = Extents::Callback,
                                             .user_data = &ex,
                                             .free = nullptr},
                         0),
        0)
        << nbd_get_error();
    ASSERT_FALSE(ex.list.empty());
    for (auto [len, flags] : ex.list) {
      ASSERT_EQ(pos % 4096, 0u);
      for (uint64_t b = pos / 4096; b < (pos + len + 4095) / 4096; ++b) {
        got[b] = flags;
      }
      pos += len;
    }
  }
  EXPECT_EQ(pos, size);
  EXPECT_EQ(got, want);
}

TEST_F(NbdServerTest, ReadPastEndIsEinvalAndConnectionSurvives) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  nbd_set_strict_mode(h.get(), 0);
  std::vector<uint8_t> buf(1024);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), 1024, image_->size() - 512, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), 1024, UINT64_MAX - 10, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL);
  EXPECT_TRUE(ReadMatches(h.get(), image_->size() - 512, 512));
}

TEST_F(NbdServerTest, ZeroLengthAndOversizedReadsAreEinval) {
  Handle h = Connect(*server_, {.name = "big"});
  ASSERT_TRUE(h);
  nbd_set_strict_mode(h.get(), 0);
  std::vector<uint8_t> buf(33 * kMiB);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), 0, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), 32 * kMiB + 1, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), 4096, 0, 0), 0);
}

TEST_F(NbdServerTest, WritesOnReadOnlyExportGetEpermAndPayloadIsDrained) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  nbd_set_strict_mode(h.get(), 0);
  std::vector<uint8_t> buf(256 * 1024, 0x42);
  EXPECT_EQ(nbd_pwrite(h.get(), buf.data(), buf.size(), 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM);
  EXPECT_EQ(nbd_trim(h.get(), 4096, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM);
  EXPECT_EQ(nbd_zero(h.get(), 4096, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM);
  // If the payload had not been skipped, this read would be garbage.
  EXPECT_TRUE(ReadMatches(h.get(), 0, 256 * 1024));
  EXPECT_EQ(nbd_flush(h.get(), 0), 0);
  EXPECT_EQ(nbd_cache(h.get(), 4096, 0, 0), 0);
}

TEST_F(NbdServerTest, UnknownExportIsReportedAndConnectionStaysUsable) {
  Handle h = Connect(*server_, {.opt_mode = true});
  ASSERT_TRUE(h);
  nbd_set_export_name(h.get(), "no-such-export");
  EXPECT_EQ(nbd_opt_go(h.get()), -1);
  EXPECT_EQ(nbd_get_errno(), ENOENT) << nbd_get_error();  // ERR_UNKNOWN
  nbd_set_export_name(h.get(), "disk");
  ASSERT_EQ(nbd_opt_go(h.get()), 0) << nbd_get_error();
  EXPECT_TRUE(ReadMatches(h.get(), 0, 4096));
  EXPECT_FALSE(Connect(*server_, {.name = "nope"}));
}

TEST_F(NbdServerTest, RawOptionErrorsCarryMessages) {
  const int fd = server_->Dial();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawGreet(fd));
  std::string payload;
  ASSERT_TRUE(RawOption(fd, kOptGo, GoPayload("no-such-export")));
  EXPECT_EQ(RawOptionReply(fd, kOptGo, &payload), kRepErrUnknown);
  EXPECT_NE(payload.find("no-such-export"), std::string::npos) << payload;
  ASSERT_TRUE(RawOption(fd, 200, {1, 2, 3}));  // unknown option
  EXPECT_EQ(RawOptionReply(fd, 200, &payload), kRepErrUnsup);
  ASSERT_TRUE(RawOption(fd, kOptList, {1}));  // LIST takes no data
  EXPECT_EQ(RawOptionReply(fd, kOptList, &payload), kRepErrInvalid);
  ASSERT_TRUE(RawOption(fd, kOptGo, {0, 0, 0, 9}));  // truncated
  EXPECT_EQ(RawOptionReply(fd, kOptGo, &payload), kRepErrInvalid);
  ASSERT_TRUE(RawOption(fd, 10, {0, 0, 0, 0, 0, 0, 0, 0}));  // SET_META
  EXPECT_EQ(RawOptionReply(fd, 10, &payload), kRepErrInvalid)
      << "meta contexts need structured replies";
  // Still in step: GO succeeds with INFO_EXPORT, then ACK.
  ASSERT_TRUE(RawOption(fd, kOptGo, GoPayload("disk")));
  uint32_t type;
  bool saw_export = false;
  while ((type = RawOptionReply(fd, kOptGo, &payload)) == kRepInfo) {
    if (payload.size() == 12 && payload[0] == 0 && payload[1] == 0) {
      saw_export = true;
      EXPECT_EQ(GetBe(reinterpret_cast<const uint8_t*>(payload.data()) + 2, 8),
                image_->size());
    }
  }
  EXPECT_EQ(type, kRepAck);
  EXPECT_TRUE(saw_export);
  ::close(fd);
}

TEST_F(NbdServerTest, EmptyNameOpensTheDefaultExport) {
  Handle h = Connect(*server_, {.name = ""});
  ASSERT_TRUE(h) << nbd_get_error();
  EXPECT_EQ(nbd_get_size(h.get()), static_cast<int64_t>(image_->size()));
}

TEST_F(NbdServerTest, ListShowsExportsWithDescriptions) {
  Handle h = Connect(*server_, {.opt_mode = true});
  ASSERT_TRUE(h);
  std::vector<std::pair<std::string, std::string>> seen;
  auto cb = [](void* user, const char* name, const char* desc) {
    static_cast<decltype(seen)*>(user)->push_back({name, desc});
    return 0;
  };
  ASSERT_EQ(nbd_opt_list(h.get(), nbd_list_callback{.callback = cb,
                                                    .user_data = &seen,
                                                    .free = nullptr}),
            2)
      << nbd_get_error();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0],
            std::make_pair(std::string("disk"), std::string("test disk")));
  EXPECT_EQ(seen[1].first, "big");
  // INFO then GO on the same connection.
  ASSERT_EQ(nbd_opt_info(h.get()), 0) << nbd_get_error();
  EXPECT_EQ(nbd_get_size(h.get()), static_cast<int64_t>(image_->size()));
  ASSERT_EQ(nbd_opt_go(h.get()), 0) << nbd_get_error();
  EXPECT_TRUE(ReadMatches(h.get(), 8 * kMiB, 1000));
}

TEST_F(NbdServerTest, ManyRequestsInFlight) {
  Handle h = Connect(*server_);
  ASSERT_TRUE(h);
  // More than the per-connection limit.
  ExpectPipelinedReadsMatch(h.get(), 200, 64 * 1024, 99);
}

// The main server answers reads of the (page-cached) file on its I/O
// thread; this one sends every read to the worker pool. Both must give the
// same answers, also with many requests in flight and zero runs as holes.
TEST_F(NbdServerTest, WorkerPoolPathServesTheSameData) {
  ServerProcess workers(Socket("workers"),
                        {"--workers-only", "--threads", "3", "--file",
                         "disk=" + *image_path_ + "=test disk"});
  Handle h = Connect(workers);
  ASSERT_TRUE(h);
  for (uint64_t off : {uint64_t{0}, uint64_t{0x10000 - 7}, 3 * kMiB + 5}) {
    EXPECT_TRUE(ReadMatches(h.get(), off, 300000)) << off;
  }
  ExpectPipelinedReadsMatch(h.get(), 100, 20000, 7);
}

// An export that reads asynchronously (a RADOS repository) gets a client's
// whole queue of reads at once, however few workers there are: this one
// answers nothing until 16 reads wait (of 32 sent; the rest are zeros,
// answered at once), and fails any read given to a worker.
TEST_F(NbdServerTest, AsyncReadsAreInFlightBeyondTheWorkers) {
  ServerProcess gated(Socket("gated"),
                      {"--threads", "1", "--async-gate", "16", "--file",
                       "disk=" + *image_path_ + "=test disk"});
  Handle h = Connect(gated);
  ASSERT_TRUE(h);
  ExpectPipelinedReadsMatch(h.get(), 32, 4096, 11);
  // Once open, the gate passes single reads too.
  EXPECT_TRUE(ReadMatches(h.get(), 3 * kMiB + 5, 4096));
}

TEST_F(NbdServerTest, TwoConnectionsAtOnce) {
  Handle a = Connect(*server_);
  Handle b = Connect(*server_);
  ASSERT_TRUE(a && b);
  std::thread ta([&] {
    for (int i = 0; i < 8; ++i)
      EXPECT_TRUE(ReadMatches(a.get(), i * kMiB, kMiB));
  });
  std::thread tb([&] {
    for (int i = 7; i >= 0; --i)
      EXPECT_TRUE(ReadMatches(b.get(), i * kMiB, kMiB));
  });
  ta.join();
  tb.join();
}

TEST_F(NbdServerTest, AbruptDisconnectMidRequestLeavesServerServing) {
  Handle keep = Connect(*server_);
  ASSERT_TRUE(keep);
  for (int i = 0; i < 10; ++i) {
    // A big read, then gone before the reply.
    int fd = server_->Dial();
    ASSERT_GE(fd, 0);
    ASSERT_EQ(RawHandshake(fd, "big"), 40 * kMiB);
    uint8_t req[28];
    for (int j = 0; j < 4; ++j) {
      RawRequest(req, 0, j, j * 8 * kMiB, 8 * kMiB);
      ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
    }
    ::close(fd);
    // A write whose payload never fully arrives.
    fd = server_->Dial();
    ASSERT_GE(fd, 0);
    ASSERT_GT(RawHandshake(fd, "disk"), 0u);
    RawRequest(req, 1, 7, 0, kMiB);
    ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
    ASSERT_TRUE(SendAll(fd, req, sizeof(req)));  // 28 bytes of "payload"
    ::close(fd);
    // Gone in the middle of a request header.
    fd = server_->Dial();
    ASSERT_GE(fd, 0);
    ASSERT_GT(RawHandshake(fd, "disk"), 0u);
    ASSERT_TRUE(SendAll(fd, req, 10));
    ::close(fd);
  }
  EXPECT_TRUE(ReadMatches(keep.get(), 0, kMiB));
  Handle fresh = Connect(*server_);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(ReadMatches(fresh.get(), kMiB, kMiB));
}

TEST_F(NbdServerTest, GarbageAfterHandshakeDropsOnlyThatConnection) {
  Handle keep = Connect(*server_);
  ASSERT_TRUE(keep);
  const int fd = server_->Dial();
  ASSERT_GE(fd, 0);
  ASSERT_GT(RawHandshake(fd, "disk"), 0u);
  std::vector<uint8_t> garbage(100, 0xa5);
  ASSERT_TRUE(SendAll(fd, garbage.data(), garbage.size()));
  EXPECT_TRUE(PeerCloses(fd));
  ::close(fd);
  EXPECT_TRUE(ReadMatches(keep.get(), 0, 4096));
}

TEST_F(NbdServerTest, GarbageDuringHandshakeDropsConnection) {
  const int fd = server_->Dial();
  ASSERT_GE(fd, 0);
  uint8_t greeting[18];
  ASSERT_TRUE(RecvAll(fd, greeting, sizeof(greeting)));
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(SendAll(fd, junk, sizeof(junk)));
  EXPECT_TRUE(PeerCloses(fd));
  ::close(fd);
  Handle h = Connect(*server_);
  EXPECT_TRUE(h);
}

TEST_F(NbdServerTest, UnknownCommandAndBadFlagsGetEinvalInStream) {
  const int fd = server_->Dial();
  ASSERT_GE(fd, 0);
  ASSERT_GT(RawHandshake(fd, "disk"), 0u);
  uint8_t req[28];
  RawRequest(req, 99, 0x1111, 0, 512);  // unknown command
  ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
  RawRequest(req, 0, 0x2222, 0, 512, /*flags=*/0x80);  // unknown flag
  ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
  RawRequest(req, 7, 0x3333, 0, 512);  // BLOCK_STATUS, no context
  ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
  RawRequest(req, 0, 0x4444, 4096, 512);  // a valid read
  ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
  // Replies may come in any order.
  int valid_reads = 0, errors = 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t reply[16];
    ASSERT_TRUE(RecvAll(fd, reply, sizeof(reply)));
    ASSERT_EQ(GetBe(reply, 4), 0x67446698u);
    const uint64_t handle = GetBe(reply + 8, 8);
    if (handle == 0x4444) {
      ASSERT_EQ(GetBe(reply + 4, 4), 0u);
      std::vector<uint8_t> data(512);
      ASSERT_TRUE(RecvAll(fd, data.data(), data.size()));
      EXPECT_TRUE(std::equal(data.begin(), data.end(), image_->begin() + 4096));
      ++valid_reads;
    } else {
      EXPECT_EQ(GetBe(reply + 4, 4), static_cast<uint64_t>(EINVAL)) << handle;
      ++errors;
    }
  }
  EXPECT_EQ(valid_reads, 1);
  EXPECT_EQ(errors, 3);
  RawRequest(req, 2, 0, 0, 0);  // NBD_CMD_DISC: the server hangs up
  ASSERT_TRUE(SendAll(fd, req, sizeof(req)));
  EXPECT_TRUE(PeerCloses(fd));
  ::close(fd);
}

TEST_F(NbdServerTest, CopyOnWriteOverlayIsPrivateAndDiscarded) {
  std::vector<std::string> args = DiskArgs();
  args.push_back("--cow");
  ServerProcess cow(Socket("cow"), args);
  Handle a = Connect(cow);
  ASSERT_TRUE(a) << nbd_get_error();
  EXPECT_EQ(nbd_is_read_only(a.get()), 0);
  EXPECT_EQ(nbd_can_multi_conn(a.get()), 0);
  EXPECT_EQ(nbd_can_zero(a.get()), 1);
  EXPECT_EQ(nbd_can_trim(a.get()), 1);
  EXPECT_EQ(nbd_can_fua(a.get()), 1);
  std::vector<uint8_t> data(10000, 0x77);
  ASSERT_EQ(nbd_pwrite(a.get(), data.data(), data.size(), 5000, 0), 0)
      << nbd_get_error();
  ASSERT_EQ(nbd_zero(a.get(), 65536, kMiB, LIBNBD_CMD_FLAG_FUA), 0);
  ASSERT_EQ(nbd_flush(a.get(), 0), 0);
  std::vector<uint8_t> buf(10000);
  ASSERT_EQ(nbd_pread(a.get(), buf.data(), buf.size(), 5000, 0), 0);
  EXPECT_EQ(buf, data);
  ASSERT_EQ(nbd_pread(a.get(), buf.data(), buf.size(), kMiB, 0), 0);
  EXPECT_TRUE(
      std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));

  // Another connection sees the original image.
  Handle b = Connect(cow);
  ASSERT_TRUE(b);
  EXPECT_TRUE(ReadMatches(b.get(), 0, 2 * kMiB));
  // A new connection after disconnecting sees the original image too.
  a.reset();
  Handle c = Connect(cow);
  ASSERT_TRUE(c);
  EXPECT_TRUE(ReadMatches(c.get(), 0, 2 * kMiB));
  EXPECT_EQ(cow.Stop(), 0);
}

TEST_F(NbdServerTest, IdleConnectionsAreClosed) {
  std::vector<std::string> args = DiskArgs();
  args.insert(args.end(), {"--idle-timeout", "1"});
  ServerProcess srv(Socket("idle"), args);
  const int fd = srv.Dial();
  ASSERT_GE(fd, 0);
  ASSERT_GT(RawHandshake(fd, "disk"), 0u);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(PeerCloses(fd));
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(500));
  ::close(fd);
  // A busy connection is not closed.
  Handle h = Connect(srv);
  ASSERT_TRUE(h);
  for (int i = 0; i < 15; ++i) {
    EXPECT_TRUE(ReadMatches(h.get(), 0, 4096));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_F(NbdServerTest, ConnectionLimitRefusesExtraClients) {
  std::vector<std::string> args = DiskArgs();
  args.insert(args.end(), {"--max-connections", "1"});
  ServerProcess srv(Socket("limit"), args);
  Handle first = Connect(srv);
  ASSERT_TRUE(first);
  std::string error;
  EXPECT_FALSE(Connect(srv, {}, &error));
  const int fd = srv.Dial();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RawGreet(fd));
  ASSERT_TRUE(RawOption(fd, kOptList, {}));
  std::string payload;
  EXPECT_EQ(RawOptionReply(fd, kOptList, &payload), kRepErrPolicy);
  EXPECT_NE(payload.find("too many connections"), std::string::npos) << payload;
  ::close(fd);
  EXPECT_TRUE(ReadMatches(first.get(), 0, 4096));
  first.reset();
  Handle again;
  for (int i = 0; i < 100 && !again; ++i) {
    again = Connect(srv);
    if (!again) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(again);
}

TEST_F(NbdServerTest, SigtermShutsDownWithClientsConnected) {
  ServerProcess srv(Socket("term"), DiskArgs());
  Handle h = Connect(srv);
  ASSERT_TRUE(h);
  EXPECT_TRUE(ReadMatches(h.get(), 0, 4096));
  EXPECT_EQ(srv.Stop(), 0);
  EXPECT_FALSE(fs::exists(srv.socket()));
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ(nbd_pread(h.get(), buf.data(), buf.size(), 0, 0), -1);
}

}  // namespace
}  // namespace backy::nbd
