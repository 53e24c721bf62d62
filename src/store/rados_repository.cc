#include "store/rados_repository.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "store/test_point.h"

namespace backy::store {

namespace {

// Caps on what is read: far above what backy writes (a revision's YAML is
// under 1 KiB), so only a damaged or hostile value hits them.
constexpr size_t kMaxValueSize = 1 << 20;
// An index of 2^30 slots is 16 GiB (kMaxIndexSlots): read in pieces.
constexpr uint64_t kIndexReadPiece = uint64_t{16} << 20;
constexpr uint64_t kIndexWritePiece = uint64_t{16} << 20;
constexpr char kRevKey[] = "rev.";
constexpr char kPinKey[] = "pin.";
constexpr char kConfigKey[] = "config";
constexpr char kHolderKey[] = "holder.writer";
constexpr char kWriterLock[] = "writer";
constexpr char kPurgeLock[] = "purge";
constexpr char kPinLock[] = "pin";

// What a revision id may be: the same as in a directory, where it is a
// file name (revisions/<id>.rev).
bool IsValidRevisionId(std::string_view id) {
  return !id.empty() && id.size() <= 200 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return c != '/' && static_cast<unsigned char>(c) > ' ';
         });
}

// A write operation, released at scope exit.
struct WriteOp {
  rados_write_op_t op = rados_create_write_op();
  ~WriteOp() { rados_release_write_op(op); }
};
struct ReadOp {
  rados_read_op_t op = rados_create_read_op();
  ~ReadOp() { rados_release_read_op(op); }
};

void SetValue(rados_write_op_t op, const std::string& key,
              const std::string& value) {
  const char* k = key.c_str();
  const char* v = value.data();
  const size_t kl = key.size(), vl = value.size();
  rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
}

void RemoveKey(rados_write_op_t op, const std::string& key) {
  const char* k = key.c_str();
  const size_t kl = key.size();
  rados_write_op_omap_rm_keys2(op, &k, &kl, 1);
}

// Reads the values of `keys` on `oid`: NotFound when the object is gone.
Status ReadValues(RadosPool& pool, const std::string& oid,
                  const std::vector<std::string>& keys,
                  std::map<std::string, std::string>* out) {
  std::vector<const char*> k;
  std::vector<size_t> kl;
  for (const auto& key : keys) {
    k.push_back(key.c_str());
    kl.push_back(key.size());
  }
  ReadOp op;
  rados_omap_iter_t iter = nullptr;
  int prval = 0;
  rados_read_op_omap_get_vals_by_keys2(op.op, k.data(), k.size(), kl.data(),
                                       &iter, &prval);
  int r = rados_read_op_operate(op.op, pool.io(), oid.c_str(), 0);
  if (r == 0 && prval < 0) r = prval;
  if (r < 0) {
    if (iter != nullptr) rados_omap_get_end(iter);
    if (r == -ENOENT)
      return Status::NotFound("no such object", pool.ObjectName(oid));
    return RadosError(r, "reading", pool.ObjectName(oid));
  }
  char* key = nullptr;
  char* val = nullptr;
  size_t key_len = 0, val_len = 0;
  while (rados_omap_get_next2(iter, &key, &val, &key_len, &val_len) == 0 &&
         key != nullptr) {
    (*out)[std::string(key, key_len)] = std::string(val, val_len);
  }
  rados_omap_get_end(iter);
  return Status::OK();
}

Status Operate(RadosPool& pool, rados_write_op_t op, const std::string& oid,
               const std::string& what) {
  int r = rados_write_op_operate2(op, pool.io(), oid.c_str(), nullptr, 0);
  if (r < 0) return RadosError(r, what, pool.ObjectName(oid));
  return Status::OK();
}

Result<RevisionIndex> ReadIndexObject(RadosPool& pool, const std::string& oid,
                                      const std::string& id) {
  const std::string name = pool.ObjectName(oid);
  uint64_t size = 0;
  time_t mtime = 0;
  int r = rados_stat(pool.io(), oid.c_str(), &size, &mtime);
  if (r == -ENOENT) {
    return Status::Corruption("index of revision " + id + " is missing", name);
  }
  if (r < 0) return RadosError(r, "reading the index", name);
  std::vector<uint8_t> bytes(std::min<uint64_t>(size, kIndexHeaderSize));
  auto read_at = [&](uint64_t offset, uint64_t length) -> Status {
    uint64_t done = 0;
    while (done < length) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(length - done, kIndexReadPiece));
      int got =
          rados_read(pool.io(), oid.c_str(),
                     reinterpret_cast<char*>(bytes.data() + offset + done), n,
                     offset + done);
      if (got < 0) return RadosError(got, "reading the index", name);
      if (got == 0) {
        return Status::Corruption("index object is shorter than it was", name);
      }
      done += static_cast<uint64_t>(got);
    }
    return Status::OK();
  };
  Status s = read_at(0, bytes.size());
  if (!s.ok()) return s;
  // The header says how large the index must be: checked before the
  // slots are read (and allocated for).
  auto expected = RevisionIndex::FileSizeFromHeader(bytes, name);
  if (!expected.ok()) return expected.status();
  if (size != *expected) {
    return Status::Corruption("index object is " + std::to_string(size) +
                                  " bytes, its header says " +
                                  std::to_string(*expected),
                              name);
  }
  bytes.resize(*expected);
  s = read_at(kIndexHeaderSize, *expected - kIndexHeaderSize);
  if (!s.ok()) return s;
  return RevisionIndex::Decode(bytes, name);
}

// A reader's pin in a pool: the pin object's lease; letting go removes
// the pin's omap key and object.
class RadosPinKeeper final : public RevisionPin::Keeper {
 public:
  RadosPinKeeper(std::shared_ptr<RadosPool> pool, std::string head,
                 std::string token, std::string index_oid, std::string id,
                 std::shared_ptr<RadosLease> lease)
      : pool_(std::move(pool)),
        head_(std::move(head)),
        token_(std::move(token)),
        index_oid_(std::move(index_oid)),
        id_(std::move(id)),
        lease_(std::move(lease)) {}
  ~RadosPinKeeper() override {
    WriteOp op;
    RemoveKey(op.op, kPinKey + token_);
    rados_write_op_operate2(op.op, pool_->io(), head_.c_str(), nullptr, 0);
    const std::string oid = lease_->oid();
    lease_.reset();  // unlocks
    rados_remove(pool_->io(), oid.c_str());
  }
  Result<RevisionIndex> LoadIndex() const override {
    Status v = lease_->Valid();
    if (!v.ok()) return v;
    return ReadIndexObject(*pool_, index_oid_, id_);
  }

 private:
  std::shared_ptr<RadosPool> pool_;
  std::string head_, token_, index_oid_, id_;
  std::shared_ptr<RadosLease> lease_;
};

class LeasePart final : public RepositoryLock::Part {
 public:
  explicit LeasePart(std::shared_ptr<RadosLease> lease)
      : lease_(std::move(lease)) {}
  Status Valid() const override { return lease_->Valid(); }

 private:
  std::shared_ptr<RadosLease> lease_;
};

RepositoryLock AsLock(std::shared_ptr<RadosLease> lease) {
  return RepositoryLock(std::make_unique<LeasePart>(std::move(lease)));
}

Result<std::shared_ptr<RadosPool>> Connect(const RepositoryLocation& l,
                                           const RadosOptions& options) {
  return RadosPool::Connect(options, l.pool, l.ns, l.ToString());
}

}  // namespace

RadosRepository::RadosRepository(std::string location, RepositoryConfig config,
                                 std::shared_ptr<RadosPool> pool,
                                 std::string prefix, std::chrono::seconds lease)
    : Repository(std::move(location), std::move(config)),
      pool_(std::move(pool)),
      prefix_(std::move(prefix)),
      lease_(lease) {
  chunks_ = std::make_unique<RadosChunkStore>(pool_, prefix_,
                                              this->config().compression);
}

Status RadosRepository::Init(const RepositoryLocation& location,
                             const RepositoryConfig& config,
                             const RadosOptions& options) {
  auto pool = Connect(location, options);
  if (!pool.ok()) return pool.status();
  const std::string head = location.name + "/head";
  WriteOp op;
  rados_write_op_create(op.op, LIBRADOS_CREATE_EXCLUSIVE, nullptr);
  SetValue(op.op, kConfigKey, config.ToYaml());
  int r =
      rados_write_op_operate2(op.op, (*pool)->io(), head.c_str(), nullptr, 0);
  if (r == -EEXIST) {
    return Status::InvalidArgument("already a repository", location.ToString());
  }
  if (r < 0) {
    return RadosError(r, "creating the repository", (*pool)->ObjectName(head));
  }
  return Status::OK();
}

Status RadosRepository::WriteConfig(const RepositoryLocation& location,
                                    const RepositoryConfig& config,
                                    const RadosOptions& options) {
  auto pool = Connect(location, options);
  if (!pool.ok()) return pool.status();
  const std::string head = location.name + "/head";
  WriteOp op;
  rados_write_op_assert_exists(op.op);
  SetValue(op.op, kConfigKey, config.ToYaml());
  return Operate(**pool, op.op, head, "writing the config");
}

Result<std::unique_ptr<RadosRepository>> RadosRepository::Open(
    const RepositoryLocation& location, const RadosOptions& options) {
  auto pool = Connect(location, options);
  if (!pool.ok()) return pool.status();
  const std::string head = location.name + "/head";
  std::map<std::string, std::string> values;
  Status s = ReadValues(**pool, head, {kConfigKey}, &values);
  if (s.IsNotFound()) {
    return Status::NotFound("not a backy repository (no object " + head +
                                " in the pool; run 'backy init' first)",
                            location.ToString());
  }
  if (!s.ok()) return s;
  auto it = values.find(kConfigKey);
  const std::string name = (*pool)->ObjectName(head) + " config";
  if (it == values.end()) {
    return Status::Corruption("repository head has no config", name);
  }
  if (it->second.size() > kMaxValueSize) {
    return Status::Corruption("config is larger than 1 MiB", name);
  }
  auto config = RepositoryConfig::FromYaml(it->second, name);
  if (!config.ok()) return config.status();
  if (config->legacy) {
    return Status::Corruption("config has no format (not ours)", name);
  }
  const int lease_s = std::clamp(options.lease_s, 3, 3600);
  return std::unique_ptr<RadosRepository>(new RadosRepository(
      location.ToString(), std::move(*config), std::move(*pool),
      location.name + "/", std::chrono::seconds(lease_s)));
}

std::string RadosRepository::ConfigName() const {
  return pool_->ObjectName(HeadOid()) + " config";
}

std::string RadosRepository::IndexName(const Revision& revision) const {
  return pool_->ObjectName(IndexOid(revision.id));
}

Status RadosRepository::ReadHeadValues(
    const std::string& prefix,
    const std::function<void(std::string_view, std::string_view)>& fn) const {
  std::string after;
  while (true) {
    ReadOp op;
    rados_omap_iter_t iter = nullptr;
    unsigned char more = 0;
    int prval = 0;
    rados_read_op_omap_get_vals2(op.op, after.c_str(), prefix.c_str(), 1000,
                                 &iter, &more, &prval);
    int r = rados_read_op_operate(op.op, pool_->io(), HeadOid().c_str(), 0);
    if (r == 0 && prval < 0) r = prval;
    if (r < 0) {
      if (iter != nullptr) rados_omap_get_end(iter);
      return RadosError(r, "listing " + prefix + "* of",
                        pool_->ObjectName(HeadOid()));
    }
    char* key = nullptr;
    char* val = nullptr;
    size_t key_len = 0, val_len = 0;
    size_t n = 0;
    while (rados_omap_get_next2(iter, &key, &val, &key_len, &val_len) == 0 &&
           key != nullptr) {
      after.assign(key, key_len);
      fn(std::string_view(key, key_len), std::string_view(val, val_len));
      ++n;
    }
    rados_omap_get_end(iter);
    if (!more || n == 0) return Status::OK();
  }
}

Result<Repository::RevisionList> RadosRepository::ScanRevisions() const {
  RevisionList list;
  Status s = ReadHeadValues(kRevKey, [&](std::string_view key,
                                         std::string_view value) {
    const std::string id(key.substr(std::strlen(kRevKey)));
    const std::string name = pool_->ObjectName(HeadOid()) + " rev." + id;
    if (!IsValidRevisionId(id)) {
      list.damaged.push_back(
          {id, Status::Corruption("not a revision id", name)});
      return;
    }
    if (value.size() > kMaxValueSize) {
      list.damaged.push_back(
          {id,
           Status::Corruption("revision metadata is larger than 1 MiB", name)});
      return;
    }
    auto rev = Revision::FromYaml(std::string(value), name);
    if (!rev.ok()) {
      list.damaged.push_back({id, rev.status()});
      return;
    }
    if (rev->id != id) {
      list.damaged.push_back(
          {id,
           Status::Corruption(
               "revision id '" + rev->id + "' does not match its key", name)});
      return;
    }
    list.healthy.push_back(std::move(*rev));
  });
  if (!s.ok()) return s;
  std::sort(list.healthy.begin(), list.healthy.end(), IsOlder);
  return list;
}

Result<bool> RadosRepository::HasRevision(const Revision& revision) const {
  std::map<std::string, std::string> values;
  Status s = ReadValues(*pool_, HeadOid(), {kRevKey + revision.id}, &values);
  if (!s.ok()) return s;
  return !values.empty();
}

Result<std::vector<std::string>> RadosRepository::IndexIds() const {
  std::vector<std::string> ids;
  Status s =
      ReadHeadValues(kRevKey, [&](std::string_view key, std::string_view) {
        ids.emplace_back(key.substr(std::strlen(kRevKey)));
      });
  if (!s.ok()) return s;
  return ids;
}

Result<RevisionIndex> RadosRepository::LoadIndex(const std::string& id) const {
  return ReadIndexObject(*pool_, IndexOid(id), id);
}

Status RadosRepository::WriteHeadUnderLock(
    const std::string& what,
    const std::function<void(rados_write_op_t)>& fill) {
  std::shared_ptr<RadosLease> writer, purge;
  {
    std::lock_guard<std::mutex> l(mu_);
    writer = writer_.lock();
    purge = writer_purge_.lock();
  }
  if (!writer || !purge) {
    return Status::InvalidArgument(what + ": the writer lock is not held",
                                   location());
  }
  Status v = writer->Valid();
  if (v.ok()) v = purge->Valid();
  if (!v.ok()) return v.WithContext(what + " not done");
  WriteOp op;
  int writer_rval = 0, purge_rval = 0;
  writer->AssertHeld(op.op, &writer_rval);
  purge->AssertHeld(op.op, &purge_rval);
  fill(op.op);
  int r = rados_write_op_operate2(op.op, pool_->io(), HeadOid().c_str(),
                                  nullptr, 0);
  if (r < 0 && (writer_rval < 0 || purge_rval < 0 || r == -EBUSY)) {
    return Status::Busy(what + " refused: this process no longer holds the " +
                            (writer_rval < 0 ? "writer" : "purge") +
                            " lock (its lease ran out)",
                        pool_->ObjectName(HeadOid()));
  }
  if (r < 0) return RadosError(r, what, pool_->ObjectName(HeadOid()));
  return Status::OK();
}

Status RadosRepository::Publish(const Revision& revision,
                                const RevisionIndex& index) {
  // The index object first; the revision is visible only once its omap
  // key is set, and by then the index (and every chunk) is stored.
  const std::string oid = IndexOid(revision.id);
  const std::vector<uint8_t> bytes = index.Encode();
  for (uint64_t off = 0; off < bytes.size() || off == 0;
       off += kIndexWritePiece) {
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(bytes.size() - off, kIndexWritePiece));
    const char* p = reinterpret_cast<const char*>(bytes.data() + off);
    int r = off == 0 ? rados_write_full(pool_->io(), oid.c_str(), p, n)
                     : rados_write(pool_->io(), oid.c_str(), p, n, off);
    if (r < 0) {
      return RadosError(
          r, "publishing revision " + revision.id + ": writing its index",
          pool_->ObjectName(oid));
    }
    if (bytes.empty()) break;
  }
  TestPoint("index");
  return WriteHeadUnderLock(
      "publishing revision " + revision.id, [&](rados_write_op_t op) {
        SetValue(op, kRevKey + revision.id, revision.ToYaml());
      });
}

Status RadosRepository::UpdateMetadata(const Revision& revision) {
  auto has = HasRevision(revision);
  if (!has.ok()) return has.status();
  if (!*has) return Status::NotFound("no such revision", revision.id);
  return WriteHeadUnderLock(
      "updating revision " + revision.id, [&](rados_write_op_t op) {
        SetValue(op, kRevKey + revision.id, revision.ToYaml());
      });
}

Status RadosRepository::Forget(const std::string& id) {
  return WriteHeadUnderLock(
      "forgetting revision " + id,
      [&](rados_write_op_t op) { RemoveKey(op, kRevKey + id); });
}

Result<std::shared_ptr<RadosLease>> RadosRepository::TakePurgeShared() {
  bool said = false;
  while (true) {
    auto l = RadosLease::Acquire(pool_, HeadOid(), kPurgeLock,
                                 RadosLease::Mode::kShared,
                                 RadosLease::Describe("reader"), lease_);
    if (!l.status().IsBusy()) return l;
    if (!said) {
      spdlog::info("waiting for a purge of {} to finish", location());
      said = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

Result<RepositoryLock> RadosRepository::LockWriter(std::string_view what) {
  const std::string desc = RadosLease::Describe(what);
  auto w = RadosLease::Acquire(pool_, HeadOid(), kWriterLock,
                               RadosLease::Mode::kExclusive, desc, lease_);
  if (w.status().IsBusy()) {
    std::map<std::string, std::string> values;
    std::string holder;
    if (ReadValues(*pool_, HeadOid(), {kHolderKey}, &values).ok() &&
        values.count(kHolderKey)) {
      holder = values[kHolderKey];
    }
    return Status::Busy("repository is locked" +
                            (holder.empty() ? "" : " by " + holder) + " (" +
                            w.status().Message() + ")",
                        location());
  }
  if (!w.ok()) return w.status();
  auto p = TakePurgeShared();
  if (!p.ok()) return p.status();
  {
    std::lock_guard<std::mutex> l(mu_);
    writer_ = *w;
    writer_purge_ = *p;
  }
  // Who holds it, for the Busy message of the next one (best effort).
  WriteOp op;
  SetValue(op.op, kHolderKey, desc);
  (void)rados_write_op_operate2(op.op, pool_->io(), HeadOid().c_str(), nullptr,
                                0);
  RepositoryLock locks = AsLock(std::move(*w));
  locks.Add(AsLock(std::move(*p)));
  return locks;
}

Result<RepositoryLock> RadosRepository::LockJob(std::string_view holder) {
  auto l =
      RadosLease::Acquire(pool_, HeadOid(), "job", RadosLease::Mode::kExclusive,
                          RadosLease::Describe(holder), lease_);
  if (l.status().IsBusy()) {
    return Status::Busy("job is locked (" + l.status().Message() + ")",
                        location());
  }
  if (!l.ok()) return l.status();
  return AsLock(std::move(*l));
}

Result<RepositoryLock> RadosRepository::LockReader() {
  auto p = TakePurgeShared();
  if (!p.ok()) return p.status();
  return AsLock(std::move(*p));
}

Result<RepositoryLock> RadosRepository::LockPurge() {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (true) {
    auto p = RadosLease::Acquire(pool_, HeadOid(), kPurgeLock,
                                 RadosLease::Mode::kExclusive,
                                 RadosLease::Describe("purge"), lease_);
    if (p.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      purge_exclusive_ = *p;
      return AsLock(std::move(*p));
    }
    if (!p.status().IsBusy()) return p.status();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Busy(
          "repository is in use by a backup, forget, expire, distrust, "
          "copy or verify; purge later",
          location());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<RevisionPin> RadosRepository::PinRevision(const Revision& revision,
                                                 std::string_view what) {
  // Under purge.lock shared, so no purge sees half a pin.
  auto purge = TakePurgeShared();
  if (!purge.ok()) return purge.status();
  const std::string token = RadosLease::NewCookie();
  const std::string oid = PinOid(token);
  const std::string holder = RadosLease::Describe(what);
  const std::string note = revision.id + "\n" + holder + "\n";
  int r = rados_write_full(pool_->io(), oid.c_str(), note.data(), note.size());
  if (r < 0) return RadosError(r, "pinning", pool_->ObjectName(oid));
  auto lease = RadosLease::Acquire(
      pool_, oid, kPinLock, RadosLease::Mode::kExclusive, holder, lease_);
  if (!lease.ok()) {
    rados_remove(pool_->io(), oid.c_str());
    return lease.status();
  }
  WriteOp op;
  SetValue(op.op, kPinKey + token, revision.id + "\t" + holder);
  Status s =
      Operate(*pool_, op.op, HeadOid(), "pinning revision " + revision.id);
  RevisionPin pin(revision.id,
                  std::make_unique<RadosPinKeeper>(
                      pool_, HeadOid(), token, IndexOid(revision.id),
                      revision.id, std::move(*lease)));
  if (!s.ok()) return s;
  // Forgotten since it was listed? Then its index may go at the next
  // purge: refuse, as a directory's pin does.
  auto has = HasRevision(revision);
  if (!has.ok()) return has.status();
  if (!*has) {
    return Status::NotFound("revision was removed before it could be pinned",
                            revision.id);
  }
  return pin;
}

Result<std::vector<std::string>> RadosRepository::ForEachLivePin(
    const std::function<Status(const PinnedIndex&,
                               const Result<RevisionIndex>&)>& mark) {
  std::vector<std::pair<std::string, std::string>> pins;  // token, id
  Status s = ReadHeadValues(
      kPinKey, [&](std::string_view key, std::string_view value) {
        std::string id(value.substr(0, value.find('\t')));
        pins.emplace_back(std::string(key.substr(std::strlen(kPinKey))),
                          std::move(id));
      });
  if (!s.ok()) return s;
  std::vector<std::string> stale;
  for (const auto& [token, id] : pins) {
    auto holders = RadosLease::CountHolders(*pool_, PinOid(token), kPinLock);
    if (!holders.ok()) return holders.status();
    if (*holders == 0) {
      stale.push_back(token);
      continue;
    }
    s = mark({id, pool_->ObjectName(PinOid(token))}, LoadIndex(id));
    if (!s.ok()) return s;
  }
  return stale;
}

Status RadosRepository::RemoveStalePins(
    const std::vector<std::string>& tokens) {
  for (const auto& token : tokens) {
    WriteOp op;
    RemoveKey(op.op, kPinKey + token);
    Status s = Operate(*pool_, op.op, HeadOid(), "removing a stale pin");
    if (!s.ok()) return s;
    int r = rados_remove(pool_->io(), PinOid(token).c_str());
    if (r < 0 && r != -ENOENT) {
      return RadosError(r, "removing a stale pin",
                        pool_->ObjectName(PinOid(token)));
    }
  }
  return Status::OK();
}

Status RadosRepository::RemoveLeftovers() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!purge_exclusive_.lock()) return Status::OK();  // see the header
  }
  std::set<std::string> keep;
  auto ids = IndexIds();
  if (!ids.ok()) return ids.status();
  keep.insert(ids->begin(), ids->end());
  Status s =
      ReadHeadValues(kPinKey, [&](std::string_view, std::string_view value) {
        keep.insert(std::string(value.substr(0, value.find('\t'))));
      });
  if (!s.ok()) return s;
  rados_list_ctx_t ctx = nullptr;
  int r = rados_nobjects_list_open(pool_->io(), &ctx);
  if (r < 0) return RadosError(r, "listing objects of", pool_->Name());
  const std::string index_prefix = prefix_ + "index/";
  std::vector<std::string> leftovers;
  const char* entry = nullptr;
  size_t entry_size = 0;
  while ((r = rados_nobjects_list_next2(ctx, &entry, nullptr, nullptr,
                                        &entry_size, nullptr, nullptr)) == 0) {
    std::string_view name(entry, entry_size);
    if (name.substr(0, index_prefix.size()) != index_prefix) continue;
    std::string id(name.substr(index_prefix.size()));
    if (!keep.count(id)) leftovers.push_back(std::string(name));
  }
  rados_nobjects_list_close(ctx);
  if (r != -ENOENT) return RadosError(r, "listing objects of", pool_->Name());
  for (const auto& oid : leftovers) {
    r = rados_remove(pool_->io(), oid.c_str());
    if (r < 0 && r != -ENOENT) {
      return RadosError(r, "removing a leftover index", pool_->ObjectName(oid));
    }
  }
  return Status::OK();
}

}  // namespace backy::store
