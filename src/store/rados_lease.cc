#include "store/rados_lease.h"

#include <spdlog/spdlog.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace backy::store {

namespace {

constexpr char kSharedTag[] = "backy";

// Ceph's encoding of cls_lock_assert_op (src/cls/lock/cls_lock_ops.h):
// ENCODE_START(1, 1) — version, compat version, payload length — then
// name, type (1 exclusive, 2 shared), cookie and tag; strings as a
// little-endian u32 length and the bytes.
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutString(std::string* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}
std::string EncodeAssert(const std::string& name, uint8_t type,
                         const std::string& cookie, const std::string& tag) {
  std::string payload;
  PutString(&payload, name);
  payload.push_back(static_cast<char>(type));
  PutString(&payload, cookie);
  PutString(&payload, tag);
  std::string out;
  out.push_back(1);
  out.push_back(1);
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  return out + payload;
}

// The clients holding `lock_name` on `oid` and their addresses (expired
// leases are not listed); none when the object is gone. The one call of
// rados_list_lockers: it fills in the sizes it needs when a buffer is too
// short (ERANGE), so a few tries with those sizes are enough.
struct Locker {
  std::string client, addr;
};
Result<std::vector<Locker>> ListLockers(RadosPool& pool, const std::string& oid,
                                        const std::string& lock_name) {
  size_t tag_len = 64, clients_len = 1024, cookies_len = 1024, addrs_len = 1024;
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::vector<char> tag(tag_len), clients(clients_len), cookies(cookies_len),
        addrs(addrs_len);
    int exclusive = 0;
    ssize_t r = rados_list_lockers(pool.io(), oid.c_str(), lock_name.c_str(),
                                   &exclusive, tag.data(), &tag_len,
                                   clients.data(), &clients_len, cookies.data(),
                                   &cookies_len, addrs.data(), &addrs_len);
    if (r == -ERANGE) continue;
    if (r == -ENOENT) return std::vector<Locker>{};
    if (r < 0) {
      return RadosError(static_cast<int>(r),
                        "listing the lockers of lock " + lock_name,
                        pool.ObjectName(oid));
    }
    std::vector<Locker> out;
    const char* c = clients.data();
    const char* a = addrs.data();
    for (ssize_t i = 0; i < r; ++i) {
      out.push_back({c, a});
      c += std::strlen(c) + 1;
      a += std::strlen(a) + 1;
    }
    return out;
  }
  return Status::IOError("lockers of lock " + lock_name + " keep changing",
                         pool.ObjectName(oid));
}

}  // namespace

std::string RadosLease::NewCookie() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(dist(rd)));
  return buf;
}

std::string RadosLease::Describe(std::string_view what) {
  char host[256] = "";
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(what) + " (pid " + std::to_string(::getpid()) + ") on " +
         (host[0] != '\0' ? host : "?");
}

Result<int> RadosLease::CountHolders(RadosPool& pool, const std::string& oid,
                                     const std::string& lock_name) {
  auto lockers = ListLockers(pool, oid, lock_name);
  if (!lockers.ok()) return lockers.status();
  return static_cast<int>(lockers->size());
}

std::string RadosLease::Holders(RadosPool& pool, const std::string& oid,
                                const std::string& lock_name) {
  // The C API lists lockers without their descriptions; cls_lock keeps
  // those in the lock's xattr, which is Ceph's encoding. Name the client
  // instead: "client.4123" is what `rados lock info` shows too.
  auto lockers = ListLockers(pool, oid, lock_name);
  if (!lockers.ok()) return "";
  std::string out;
  for (const auto& l : *lockers) {
    if (!out.empty()) out += ", ";
    out += l.client;
    if (!l.addr.empty()) out += " at " + l.addr;
  }
  return out;
}

int RadosLease::Lock(uint8_t flags) {
  struct timeval tv = {static_cast<time_t>(duration_.count()), 0};
  if (mode_ == Mode::kExclusive) {
    return rados_lock_exclusive(pool_->io(), oid_.c_str(), name_.c_str(),
                                cookie_.c_str(), description_.c_str(), &tv,
                                flags);
  }
  return rados_lock_shared(pool_->io(), oid_.c_str(), name_.c_str(),
                           cookie_.c_str(), kSharedTag, description_.c_str(),
                           &tv, flags);
}

Result<std::shared_ptr<RadosLease>> RadosLease::Acquire(
    std::shared_ptr<RadosPool> pool, std::string oid, std::string lock_name,
    Mode mode, std::string description, std::chrono::seconds duration) {
  std::shared_ptr<RadosLease> l(new RadosLease());
  l->pool_ = std::move(pool);
  l->oid_ = std::move(oid);
  l->name_ = std::move(lock_name);
  l->mode_ = mode;
  l->description_ = std::move(description);
  l->duration_ = std::max(duration, std::chrono::seconds(3));
  l->cookie_ = NewCookie();
  l->assert_request_ = EncodeAssert(
      l->name_, mode == Mode::kExclusive ? 1 : 2, l->cookie_,
      mode == Mode::kExclusive ? std::string() : std::string(kSharedTag));
  const auto sent = std::chrono::steady_clock::now();
  int r = l->Lock(0);
  if (r == -EBUSY || r == -EEXIST) {
    std::string holders = Holders(*l->pool_, l->oid_, l->name_);
    return Status::Busy("lock '" + l->name_ + "' is held" +
                            (holders.empty() ? "" : " by " + holders),
                        l->pool_->ObjectName(l->oid_));
  }
  if (r < 0) {
    return RadosError(r, "taking lock '" + l->name_ + "'",
                      l->pool_->ObjectName(l->oid_));
  }
  l->renewed_ = sent;
  RadosLease* self = l.get();
  l->renewer_ = std::thread([self] { self->Renew(); });
  return l;
}

void RadosLease::Renew() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_ && !lost_) {
    const auto next = renewed_ + duration_ / 3;
    if (cv_.wait_until(lk, next, [&] { return stop_; })) break;
    lk.unlock();
    const auto sent = std::chrono::steady_clock::now();
    int r = Lock(LIBRADOS_LOCK_FLAG_MUST_RENEW);
    lk.lock();
    if (r == 0) {
      renewed_ = sent;
    } else if (std::chrono::steady_clock::now() >= renewed_ + duration_ ||
               r == -ENOENT || r == -EBUSY) {
      // Gone (expired and maybe taken by another) or no longer renewable
      // in time: never take it again behind the back of a new holder.
      lost_ = true;
      spdlog::error("lost lock '{}' on {}: {}", name_, pool_->ObjectName(oid_),
                    std::strerror(-r));
    }
    // Other errors (a slow OSD): try again at the next third, or sooner
    // when the lease is about to run out.
  }
}

Status RadosLease::Valid() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (lost_ || std::chrono::steady_clock::now() >= renewed_ + duration_) {
    return Status::Busy("lost lock '" + name_ +
                            "': its lease ran out before it could be renewed",
                        pool_->ObjectName(oid_));
  }
  return Status::OK();
}

void RadosLease::AssertHeld(rados_write_op_t op, int* prval) {
  rados_write_op_exec(op, "lock", "assert_locked", assert_request_.data(),
                      assert_request_.size(), prval);
}

RadosLease::~RadosLease() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  int r =
      rados_unlock(pool_->io(), oid_.c_str(), name_.c_str(), cookie_.c_str());
  if (r < 0 && r != -ENOENT) {
    spdlog::warn("cannot release lock '{}' on {}: {} (it expires by itself)",
                 name_, pool_->ObjectName(oid_), std::strerror(-r));
  }
}

}  // namespace backy::store
