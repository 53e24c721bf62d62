// Restore: writes a revision's full image to a file, a block device or
// stdout.
//
// Chunks are read and checked in parallel (ParallelFor) with a bounded
// window of buffers (memory stays bounded whatever the image size); a
// stream is written in order by one writer, a file or block device by the
// readers themselves. A regular file is written as a new file next to
// the target and renamed into place when complete, sparse (zero slots are
// holes); a block device gets every byte (zeros too); stdout gets the
// whole byte stream. Only data slots are read by the workers: a run of
// zero slots costs one step (nothing for a sparse file; zeros written in
// large pieces otherwise), so a sparse image costs what its data does.
// Not thread-safe; one restore per call.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup {

struct RestoreOptions {
  // Overwrite an existing non-empty file or a block device.
  bool force = false;
  unsigned workers = 0;  // readers; 0 = twice the number of CPUs (min 4)
  const std::atomic<bool>* cancel = nullptr;
  // For "rbd:" targets: how to reach the cluster (ceph_conf, client_id,
  // keyring, as in a ceph-rbd source section); empty values fall back to
  // $CEPH_CONF / $CEPH_ARGS and Ceph's defaults.
  std::map<std::string, std::string> ceph;
};

// A sink for restored data.
class RestoreSink {
 public:
  virtual ~RestoreSink() = default;
  // Called once before any data with the image size.
  virtual Status Open(uint64_t size) = 0;
  // `zero` is true when `data` is all zeros (a sink may skip it).
  // Called from the restore thread in order — or, when RandomAccess(),
  // for non-zero data also concurrently from worker threads in any order.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data,
                       bool zero) = 0;
  // True when Write() is thread-safe and takes any order (files, block
  // devices); false for streams.
  virtual bool RandomAccess() const { return false; }
  // True when the sink reads as zeros wherever nothing was written (a new
  // sparse file): runs of zero slots are then not written at all. Else
  // they come as Write(..., zero = true) calls, in order, of any length
  // up to 16 MiB and not aligned to slots.
  virtual bool SkipsZeros() const { return false; }
  // All data written: make it durable and visible.
  virtual Status Finish() = 0;
  // The restore failed: remove partial output where possible.
  virtual void Abort() = 0;
};

// Opens the sink for TARGET: "-" (stdout), "rbd:POOL/IMAGE", a block
// device or a file path.
// A file is written as a new file in TARGET's directory (anonymous, or
// under a random name created exclusively) and renamed over TARGET at the
// end; no existing name is opened, so planted symlinks are never followed.
// InvalidArgument (nothing written) when TARGET is a non-empty file, a
// block device or a symbolic link and options.force is false; a directory
// or another kind of file. With force, a symlink to a block device is
// followed only when root or this user owns the link (/dev/VG/LV,
// /dev/disk/by-id/...); any other symlink is replaced by the restored
// file, and what it pointed to is left alone.
Result<std::unique_ptr<RestoreSink>> OpenSink(const std::string& target,
                                              const RestoreOptions& options);

// True when the metadata of `revision` is gone: forgotten or expired
// since the caller listed it. Its index may be gone too; that is no damage.
bool RevisionRemoved(const store::Repository& repo,
                     const store::Revision& revision);

// Restores `revision` of `repo` into `sink`, holding a pin on it
// (Repository::PinRevision) while it reads. NotFound when the revision
// was removed since it was listed (see RevisionRemoved).
// Test point "restore-pinned" (store/test_point.h): once it is pinned.
Status RunRestore(store::Repository& repo, const store::Revision& revision,
                  RestoreSink& sink, const RestoreOptions& options);

}  // namespace backy::backup
