// RbdSource reads a Ceph RBD image from a backy-<revision> snapshot; RbdConfig
// says which image and how to reach its cluster (also for RbdImageWriter,
// rbd_image_writer.h). librbd's C API is included only by the .cc files
// (rbd_cluster.h); every librbd error becomes a Status naming
// pool/image@snap. Each RbdSource owns its cluster connection.
// Thread-safety: Read() may be called from several threads at once; all
// other methods may not.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sources/source.h"
#include "store/status.h"

namespace backy::sources {

// Which image, and how to reach its cluster.
struct RbdConfig {
  std::string pool;
  std::string image;
  std::string rbd_namespace;  // empty: the pool's default namespace
  // Path of a ceph.conf. Empty: $CEPH_CONF, then Ceph's default locations.
  // $CEPH_ARGS is applied on top in either case.
  std::string conf_path;
  std::string client_id;  // "admin" when empty (as in client.admin)
  std::string keyring;    // empty: whatever the configuration says
  // How long to wait for the monitors (client_mount_timeout and
  // rados_mon_op_timeout) before failing with IOError, instead of Ceph's
  // default 300 s hang on an unreachable cluster.
  int connect_timeout_s = 30;
  // rados_osd_op_timeout: a single read/write that takes longer fails.
  int op_timeout_s = 300;
};

// Parses "POOL/IMAGE" or "POOL/NAMESPACE/IMAGE" into pool, rbd_namespace
// and image of a default RbdConfig. InvalidArgument for anything else (empty
// parts, more slashes, '@' snapshot suffixes).
Result<RbdConfig> ParseRbdSpec(std::string_view spec);

// "pool/image" or "pool/namespace/image".
std::string RbdImageName(const RbdConfig& config);

// The snapshot backy creates for a revision: "backy-<revision id>".
std::string RbdSnapshotName(const std::string& revision_id);

// Connects and opens the image read-only to check that it exists (for
// `backy init`); returns its current size. Errors as RbdSource::Begin:
// NotFound for a missing pool or image, IOError for an unreachable
// cluster (after connect_timeout_s). Creates nothing.
Result<uint64_t> ProbeRbdImage(const RbdConfig& config);

class RbdSource final : public Source {
 public:
  // Does not connect; Begin() does.
  explicit RbdSource(RbdConfig config);
  // Closes the image and the connection. Does not remove the snapshot
  // (call Abort() for that).
  ~RbdSource() override;

  std::string Name() const override;  // "pool/image"

  // Connects, creates snapshot backy-<revision_id> and opens the image at
  // that snapshot. NotFound for a missing pool or image, InvalidArgument
  // if that snapshot already exists or the id is unusable, IOError for an
  // unreachable cluster (after connect_timeout_s) or other failures.
  // REQUIRES: Begin() has not been called on this object before.
  Status Begin(const std::string& revision_id) override;

  // Size of the image at the snapshot. REQUIRES: Begin() succeeded.
  uint64_t Size() const override;

  // True when snapshot backy-<base_revision_id> exists. Connects and opens
  // the image if Begin() has not done so; false on any error.
  bool CanDiffFrom(const std::string& base_revision_id) override;

  // rbd_diff_iterate2 at whole-object granularity from snapshot
  // backy-<base> (or from the beginning when base is empty) to the
  // snapshot Begin() made. Objects that do not exist (never written or
  // discarded) are kZero, others kData. Adjacent extents of one kind are
  // merged; everything is clipped to Size(). REQUIRES: Begin() succeeded.
  Status Extents(const std::string& base_revision_id, ExtentList* out) override;

  // Reads from the snapshot, so later writes to the live image never show.
  // Thread-safe. REQUIRES: Begin() succeeded.
  Status Read(uint64_t offset, std::span<uint8_t> buf) override;

  // Removes every backy-* snapshot older (lower snapshot id) than
  // backy-<revision_id>; other snapshots are never touched. Tries all and
  // returns the first error. REQUIRES: Begin() succeeded.
  Status Commit(const std::string& revision_id) override;

  // Closes the snapshot and removes the snapshot Begin() created. Errors
  // are only logged (debug).
  void Abort() override;
  // The backup reads a snapshot, which cannot change: always OK.
  Status CheckUnchanged() override { return Status::OK(); }

  VerifyMode verify_mode() const override { return VerifyMode::kSample; }
  uint64_t bytes_read() const override { return bytes_read_.load(); }

 private:
  struct Handles;  // librados/librbd handles, defined in rbd_source.cc

  Status Connect();  // idempotent: connects and opens the live image
  std::string SnapObject(const std::string& snap) const;  // pool/image@snap

  const RbdConfig config_;
  std::unique_ptr<Handles> h_;
  std::string snap_name_;  // set by a successful Begin()
  uint64_t size_ = 0;
  std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace backy::sources
