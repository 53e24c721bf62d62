#include "sources/rbd_source.h"

#include <rados/librados.h>
#include <rbd/librbd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace backy::sources {
namespace {

constexpr std::string_view kSnapPrefix = "backy-";
// librbd returns ssize_t/int byte counts; keep single calls well below that.
constexpr uint64_t kMaxIo = uint64_t{1} << 30;

// The one place where a librbd/librados error code becomes a Status.
// `what` says what failed, `object` names it (pool/image@snap).
Status RbdError(int r, std::string_view what, std::string_view object) {
  const int err = r < 0 ? -r : r;
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(msg, object);
    case EEXIST:
    case EINVAL:
    case ENAMETOOLONG:
    case ERANGE:
      return Status::InvalidArgument(msg, object);
    case EBUSY:
    case EWOULDBLOCK:
      return Status::Busy(msg, object);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg, object);
    case EINTR:
      return Status::Interrupted(msg, object);
    case EOPNOTSUPP:
      return Status::NotSupported(msg, object);
    case EPERM:
    case EACCES:
      return Status::IOError(msg + " (check client id, keyring and caps)",
                             object);
    default:
      return Status::IOError(msg, object);
  }
}

int NoProgress(uint64_t, uint64_t, void*) { return 0; }

// One connection to a cluster and an I/O context on the config's pool
// (and namespace). Shared by RbdSource and RbdImageWriter.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (io_ != nullptr) rados_ioctx_destroy(io_);
    if (cluster_ != nullptr) rados_shutdown(cluster_);
  }

  bool connected() const { return io_ != nullptr; }
  rados_ioctx_t io() const { return io_; }

  Status Open(const RbdConfig& c) {
    const std::string object = RbdImageName(c);
    const std::string name =
        "client." + (c.client_id.empty() ? std::string("admin") : c.client_id);
    int r = rados_create2(&cluster_, "ceph", name.c_str(), 0);
    if (r < 0) {
      cluster_ = nullptr;
      return RbdError(r, "creating a Ceph client handle for " + name, object);
    }
    // An explicitly named configuration must be readable. Without one,
    // Ceph's default search may find nothing when $CEPH_ARGS carries
    // mon_host instead.
    std::string conf = c.conf_path;
    if (conf.empty()) {
      const char* env = std::getenv("CEPH_CONF");
      if (env != nullptr) conf = env;
    }
    r = rados_conf_read_file(cluster_, conf.empty() ? nullptr : conf.c_str());
    if (r < 0 && !conf.empty()) {
      return RbdError(r, "reading Ceph configuration " + conf, object);
    }
    r = rados_conf_parse_env(cluster_, nullptr);  // $CEPH_ARGS
    if (r < 0) return RbdError(r, "parsing $CEPH_ARGS", object);
    if (!c.keyring.empty()) {
      r = rados_conf_set(cluster_, "keyring", c.keyring.c_str());
      if (r < 0) return RbdError(r, "setting keyring " + c.keyring, object);
    }
    const std::string connect_timeout = std::to_string(c.connect_timeout_s);
    const std::string op_timeout = std::to_string(c.op_timeout_s);
    const std::pair<const char*, const char*> settings[] = {
        {"client_mount_timeout", connect_timeout.c_str()},
        {"rados_mon_op_timeout", connect_timeout.c_str()},
        {"rados_osd_op_timeout", op_timeout.c_str()},
        // Backups read each byte once and restores flush at the end: the
        // cache would only add copies.
        {"rbd_cache", "false"},
    };
    for (const auto& [key, value] : settings) {
      r = rados_conf_set(cluster_, key, value);
      if (r < 0) return RbdError(r, std::string("setting ") + key, object);
    }
    r = rados_connect(cluster_);
    if (r < 0) {
      char mon_host[512] = "";
      if (rados_conf_get(cluster_, "mon_host", mon_host, sizeof(mon_host)) <
          0) {
        mon_host[0] = '\0';
      }
      std::string what = "connecting to the Ceph cluster";
      what += mon_host[0] != '\0' ? std::string(" at ") + mon_host
                                  : std::string(" (no mon_host configured)");
      what += " as " + name;
      if (!conf.empty()) what += " using " + conf;
      if (r == -ETIMEDOUT) {
        what += " (gave up after " + connect_timeout + " s)";
      }
      return RbdError(r, what, object);
    }
    r = rados_ioctx_create(cluster_, c.pool.c_str(), &io_);
    if (r < 0) {
      io_ = nullptr;
      if (r == -ENOENT) {
        return Status::NotFound("pool '" + c.pool + "' does not exist", object);
      }
      return RbdError(r, "opening pool " + c.pool, object);
    }
    if (!c.rbd_namespace.empty()) {
      rados_ioctx_set_namespace(io_, c.rbd_namespace.c_str());
    }
    return Status::OK();
  }

 private:
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;
};

void CloseImage(rbd_image_t* image) {
  if (*image != nullptr) {
    rbd_close(*image);
    *image = nullptr;
  }
}

// Sorts and merges extents; overlapping extents (not expected from librbd)
// become one kData extent, which is always safe: kData only means "read".
void Normalize(ExtentList* list) {
  std::sort(list->begin(), list->end(), [](const Extent& a, const Extent& b) {
    return a.offset < b.offset;
  });
  ExtentList out;
  out.reserve(list->size());
  for (const Extent& e : *list) {
    if (e.length == 0) continue;
    if (!out.empty()) {
      Extent& last = out.back();
      if (e.offset < last.end()) {
        last.length = std::max(last.end(), e.end()) - last.offset;
        last.kind = Extent::Kind::kData;
        continue;
      }
      if (e.offset == last.end() && e.kind == last.kind) {
        last.length += e.length;
        continue;
      }
    }
    out.push_back(e);
  }
  *list = std::move(out);
}

struct DiffState {
  ExtentList* out;
  uint64_t size;
};

int DiffCallback(uint64_t offset, size_t length, int exists, void* arg) {
  auto* st = static_cast<DiffState*>(arg);
  if (offset >= st->size) return 0;
  const uint64_t len = std::min<uint64_t>(length, st->size - offset);
  st->out->push_back(
      Extent{offset, len, exists ? Extent::Kind::kData : Extent::Kind::kZero});
  return 0;
}

Status CheckRevisionId(const std::string& id, const std::string& object) {
  if (id.empty() || id.find_first_of("/@ \t\n") != std::string::npos) {
    return Status::InvalidArgument("unusable revision id '" + id + "'", object);
  }
  return Status::OK();
}

// Lists the snapshots of `image` (user namespace).
Status ListSnapshots(rbd_image_t image, const std::string& object,
                     std::vector<std::pair<uint64_t, std::string>>* out) {
  int max = 16;
  std::vector<rbd_snap_info_t> snaps;
  int r;
  for (;;) {
    snaps.resize(max);
    r = rbd_snap_list(image, snaps.data(), &max);
    if (r != -ERANGE) break;
  }
  if (r < 0) return RbdError(r, "listing snapshots", object);
  out->clear();
  for (int i = 0; i < r; ++i) out->emplace_back(snaps[i].id, snaps[i].name);
  rbd_snap_list_end(snaps.data());
  return Status::OK();
}

}  // namespace

Result<RbdConfig> ParseRbdSpec(std::string_view spec) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t slash = spec.find('/', start);
    parts.emplace_back(spec.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const bool bad_part =
      std::any_of(parts.begin(), parts.end(), [](const std::string& p) {
        return p.empty() || p.find_first_of("@ \t\n") != std::string::npos;
      });
  if (parts.size() < 2 || parts.size() > 3 || bad_part) {
    return Status::InvalidArgument(
        "expected an RBD image as POOL/IMAGE or POOL/NAMESPACE/IMAGE, got '" +
        std::string(spec) + "'");
  }
  RbdConfig c;
  c.pool = parts.front();
  c.image = parts.back();
  if (parts.size() == 3) c.rbd_namespace = parts[1];
  return c;
}

std::string RbdImageName(const RbdConfig& config) {
  std::string name = config.pool + "/";
  if (!config.rbd_namespace.empty()) name += config.rbd_namespace + "/";
  return name + config.image;
}

std::string RbdSnapshotName(const std::string& revision_id) {
  return std::string(kSnapPrefix) + revision_id;
}

Result<uint64_t> ProbeRbdImage(const RbdConfig& config) {
  const std::string name = RbdImageName(config);
  Connection conn;
  Status s = conn.Open(config);
  if (!s.ok()) return s;
  rbd_image_t image = nullptr;
  int r = rbd_open_read_only(conn.io(), config.image.c_str(), &image, nullptr);
  if (r == -ENOENT) return Status::NotFound("image does not exist", name);
  if (r < 0) return RbdError(r, "opening image", name);
  uint64_t size = 0;
  r = rbd_get_size(image, &size);
  CloseImage(&image);
  if (r < 0) return RbdError(r, "getting size", name);
  return size;
}

// ---------------------------------------------------------------- RbdSource

struct RbdSource::Handles {
  Connection conn;
  rbd_image_t live = nullptr;  // the image head: snapshot create/remove
  rbd_image_t snap = nullptr;  // read-only at backy-<id>: all reads

  ~Handles() {
    CloseImage(&snap);
    CloseImage(&live);
  }
};

RbdSource::RbdSource(RbdConfig config)
    : config_(std::move(config)), h_(std::make_unique<Handles>()) {}

RbdSource::~RbdSource() = default;

std::string RbdSource::Name() const { return RbdImageName(config_); }

std::string RbdSource::SnapObject(const std::string& snap) const {
  return snap.empty() ? Name() : Name() + "@" + snap;
}

Status RbdSource::Connect() {
  if (h_->live != nullptr) return Status::OK();
  if (!h_->conn.connected()) {
    Status s = h_->conn.Open(config_);
    if (!s.ok()) return s;
  }
  const int r =
      rbd_open(h_->conn.io(), config_.image.c_str(), &h_->live, nullptr);
  if (r < 0) {
    h_->live = nullptr;
    if (r == -ENOENT) {
      return Status::NotFound("image does not exist", Name());
    }
    return RbdError(r, "opening image", Name());
  }
  return Status::OK();
}

Status RbdSource::Begin(const std::string& revision_id) {
  assert(snap_name_.empty());
  Status s = CheckRevisionId(revision_id, Name());
  if (!s.ok()) return s;
  s = Connect();
  if (!s.ok()) return s;

  const std::string snap = RbdSnapshotName(revision_id);
  const std::string object = SnapObject(snap);
  // Quiesce hooks (rbd-nbd) are best effort: a crash-consistent snapshot
  // is what backy promises.
  int r = rbd_snap_create2(h_->live, snap.c_str(),
                           RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR, NoProgress,
                           nullptr);
  if (r == -EEXIST) {
    return Status::InvalidArgument("snapshot already exists", object);
  }
  if (r < 0) return RbdError(r, "creating snapshot", object);
  snap_name_ = snap;

  r = rbd_open_read_only(h_->conn.io(), config_.image.c_str(), &h_->snap,
                         snap.c_str());
  if (r < 0) {
    h_->snap = nullptr;
    return RbdError(r, "opening snapshot", object);
  }
  r = rbd_get_size(h_->snap, &size_);
  if (r < 0) return RbdError(r, "getting size", object);
  spdlog::debug("rbd: created and opened {} ({} bytes)", object, size_);
  return Status::OK();
}

uint64_t RbdSource::Size() const {
  assert(h_->snap != nullptr);
  return size_;
}

bool RbdSource::CanDiffFrom(const std::string& base_revision_id) {
  if (!CheckRevisionId(base_revision_id, Name()).ok()) return false;
  if (!Connect().ok()) return false;
  bool exists = false;
  const std::string base = RbdSnapshotName(base_revision_id);
  const int r = rbd_snap_exists(h_->live, base.c_str(), &exists);
  if (r < 0) {
    spdlog::debug("rbd: checking {}: {}", SnapObject(base), std::strerror(-r));
    return false;
  }
  return exists;
}

Status RbdSource::Extents(const std::string& base_revision_id,
                          ExtentList* out) {
  assert(h_->snap != nullptr);
  out->clear();
  std::string from;
  if (!base_revision_id.empty()) {
    Status s = CheckRevisionId(base_revision_id, Name());
    if (!s.ok()) return s;
    from = RbdSnapshotName(base_revision_id);
  }
  DiffState st{out, size_};
  const int r =
      rbd_diff_iterate2(h_->snap, from.empty() ? nullptr : from.c_str(), 0,
                        size_, /*include_parent=*/1,
                        /*whole_object=*/1, DiffCallback, &st);
  if (r < 0) {
    out->clear();
    std::string what = "listing changed extents";
    if (!from.empty()) what += " since " + from;
    return RbdError(r, what, SnapObject(snap_name_));
  }
  Normalize(out);
  return Status::OK();
}

Status RbdSource::Read(uint64_t offset, std::span<uint8_t> buf) {
  assert(h_->snap != nullptr);
  uint64_t in_image =
      offset >= size_ ? 0 : std::min<uint64_t>(buf.size(), size_ - offset);
  if (in_image < buf.size()) {
    std::memset(buf.data() + in_image, 0, buf.size() - in_image);
  }
  uint64_t done = 0;
  while (done < in_image) {
    const uint64_t len = std::min(in_image - done, kMaxIo);
    const ssize_t r = rbd_read2(h_->snap, offset + done, len,
                                reinterpret_cast<char*>(buf.data() + done),
                                LIBRADOS_OP_FLAG_FADVISE_NOCACHE);
    if (r < 0) {
      return RbdError(static_cast<int>(r),
                      "reading " + std::to_string(len) + " bytes at offset " +
                          std::to_string(offset + done),
                      SnapObject(snap_name_));
    }
    if (r == 0) {
      // Cannot happen inside the image; do not loop forever if it does.
      return Status::IOError(
          "short read at offset " + std::to_string(offset + done),
          SnapObject(snap_name_));
    }
    bytes_read_.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    done += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Status RbdSource::Commit(const std::string& revision_id) {
  assert(h_->live != nullptr);
  const std::string keep = RbdSnapshotName(revision_id);
  std::vector<std::pair<uint64_t, std::string>> snaps;
  Status s = ListSnapshots(h_->live, Name(), &snaps);
  if (!s.ok()) return s;
  auto it = std::find_if(snaps.begin(), snaps.end(),
                         [&](const auto& p) { return p.second == keep; });
  if (it == snaps.end()) {
    return Status::NotFound("snapshot to keep does not exist",
                            SnapObject(keep));
  }
  const uint64_t keep_id = it->first;
  Status first_error;
  for (const auto& [id, name] : snaps) {
    if (id >= keep_id || !name.starts_with(kSnapPrefix)) continue;
    const int r = rbd_snap_remove(h_->live, name.c_str());
    if (r < 0 && r != -ENOENT && first_error.ok()) {
      first_error = RbdError(r, "removing old snapshot", SnapObject(name));
    } else if (r >= 0) {
      spdlog::debug("rbd: removed {}", SnapObject(name));
    }
  }
  return first_error;
}

void RbdSource::Abort() {
  CloseImage(&h_->snap);
  if (snap_name_.empty() || h_->live == nullptr) return;
  const int r = rbd_snap_remove(h_->live, snap_name_.c_str());
  if (r < 0 && r != -ENOENT) {
    spdlog::debug("rbd: abort: removing {}: {}", SnapObject(snap_name_),
                  std::strerror(-r));
  }
  snap_name_.clear();
}

// ----------------------------------------------------------- RbdImageWriter

struct RbdImageWriter::Handles {
  Connection conn;
  rbd_image_t image = nullptr;

  ~Handles() { CloseImage(&image); }
};

RbdImageWriter::RbdImageWriter(RbdConfig config)
    : config_(std::move(config)), h_(std::make_unique<Handles>()) {}

RbdImageWriter::~RbdImageWriter() {
  if (committed_ || !created_) return;
  CloseImage(&h_->image);
  const int r = rbd_remove(h_->conn.io(), config_.image.c_str());
  if (r < 0) {
    spdlog::debug("rbd: removing unfinished image {}: {}", Name(),
                  std::strerror(-r));
  }
}

std::string RbdImageWriter::Name() const { return RbdImageName(config_); }

Result<std::unique_ptr<RbdImageWriter>> RbdImageWriter::Create(
    const RbdConfig& config, uint64_t size, bool force) {
  std::unique_ptr<RbdImageWriter> w(new RbdImageWriter(config));
  const std::string name = w->Name();
  Status s = w->h_->conn.Open(config);
  if (!s.ok()) return s;
  rados_ioctx_t io = w->h_->conn.io();

  int r = rbd_open(io, config.image.c_str(), &w->h_->image, nullptr);
  if (r == 0) {
    if (!force) {
      return Status::InvalidArgument(
          "image already exists; refusing to overwrite it without force", name);
    }
    uint64_t old_size = 0;
    r = rbd_get_size(w->h_->image, &old_size);
    if (r < 0) return RbdError(r, "getting size", name);
    if (old_size != size) {
      r = rbd_resize2(w->h_->image, size, /*allow_shrink=*/true, NoProgress,
                      nullptr);
      if (r < 0) {
        return RbdError(r, "resizing to " + std::to_string(size) + " bytes",
                        name);
      }
    }
  } else if (r == -ENOENT) {
    w->h_->image = nullptr;
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    r = rbd_create4(io, config.image.c_str(), size, opts);
    rbd_image_options_destroy(opts);
    if (r == -EEXIST) {
      return Status::InvalidArgument(
          "image appeared while creating it; refusing to overwrite it", name);
    }
    if (r < 0) {
      return RbdError(r, "creating image of " + std::to_string(size) + " bytes",
                      name);
    }
    w->created_ = true;
    r = rbd_open(io, config.image.c_str(), &w->h_->image, nullptr);
    if (r < 0) {
      w->h_->image = nullptr;
      return RbdError(r, "opening new image", name);
    }
  } else {
    w->h_->image = nullptr;
    return RbdError(r, "opening image", name);
  }
  w->size_ = size;
  return w;
}

Status RbdImageWriter::Write(uint64_t offset, std::span<const uint8_t> data) {
  assert(h_->image != nullptr);
  if (offset > size_ || data.size() > size_ - offset) {
    return Status::InvalidArgument(
        "write of " + std::to_string(data.size()) + " bytes at offset " +
            std::to_string(offset) + " beyond the image size " +
            std::to_string(size_),
        Name());
  }
  uint64_t done = 0;
  while (done < data.size()) {
    const uint64_t len = std::min<uint64_t>(data.size() - done, kMaxIo);
    const ssize_t r =
        rbd_write2(h_->image, offset + done, len,
                   reinterpret_cast<const char*>(data.data() + done), 0);
    if (r < 0) {
      return RbdError(static_cast<int>(r),
                      "writing " + std::to_string(len) + " bytes at offset " +
                          std::to_string(offset + done),
                      Name());
    }
    if (r == 0) {
      return Status::IOError(
          "short write at offset " + std::to_string(offset + done), Name());
    }
    done += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Status RbdImageWriter::Zero(uint64_t offset, uint64_t length) {
  assert(h_->image != nullptr);
  if (offset > size_ || length > size_ - offset) {
    return Status::InvalidArgument(
        "zeroing " + std::to_string(length) + " bytes at offset " +
            std::to_string(offset) + " beyond the image size " +
            std::to_string(size_),
        Name());
  }
  uint64_t done = 0;
  while (done < length) {
    const uint64_t len = std::min(length - done, kMaxIo);
    // Unlike rbd_discard, write_zeroes also zeroes partial objects
    // (rbd_skip_partial_discard).
    const ssize_t r = rbd_write_zeroes(h_->image, offset + done, len, 0, 0);
    if (r < 0) {
      return RbdError(static_cast<int>(r),
                      "zeroing " + std::to_string(len) + " bytes at offset " +
                          std::to_string(offset + done),
                      Name());
    }
    done += len;
  }
  return Status::OK();
}

Status RbdImageWriter::Commit() {
  assert(h_->image != nullptr);
  int r = rbd_flush(h_->image);
  if (r < 0) return RbdError(r, "flushing", Name());
  r = rbd_close(h_->image);
  h_->image = nullptr;
  if (r < 0) return RbdError(r, "closing", Name());
  committed_ = true;
  return Status::OK();
}

}  // namespace backy::sources
