#include "sources/rbd_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "sources/rbd_cluster.h"

namespace backy::sources {
namespace {

constexpr std::string_view kSnapPrefix = "backy-";

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
  RbdConnection conn;
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
  RbdConnection conn;
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

}  // namespace backy::sources
