// Source: what a backup reads — a file image or a Ceph RBD image.
//
// One backup uses one Source object through this sequence:
//   Begin(id) → Size() → Extents(base) → Read()* (concurrently) →
//   Commit(id) on success, or Abort() on failure.
// Begin freezes a point-in-time view where the source can (RBD: snapshot
// "backy-<id>"); a file source reads the file as it is. Read() is safe to
// call from several threads at once; the other methods are not.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "store/extent.h"
#include "store/status.h"

namespace backy::sources {

// How a backup of this source should be verified after writing.
enum class VerifyMode {
  kFull,    // re-read every chunk the backup wrote (file images)
  kSample,  // compare a random sample against the source (RBD snapshots)
};

class Source {
 public:
  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  virtual ~Source() = default;

  // A human-readable name for messages: "/srv/images/vm1.raw", "rbd/vm1".
  virtual std::string Name() const = 0;

  // Prepares reading for the revision `revision_id`. Errors name the image:
  // NotFound when it is missing, InvalidArgument when it is no image this
  // source reads (a directory; for RBD an existing snapshot or an unusable
  // id), IOError when it cannot be opened.
  virtual Status Begin(const std::string& revision_id) = 0;

  // Size of the image in bytes. REQUIRES: Begin() succeeded.
  virtual uint64_t Size() const = 0;

  // True when Extents() can report only what changed since the backup
  // `base_revision_id` (whose snapshot must still exist). File sources
  // return false.
  virtual bool CanDiffFrom(const std::string& base_revision_id) = 0;

  // Replaces the contents of `out` with sorted, non-overlapping extents
  // within [0, Size()).
  // With base empty: every range that may hold data is kData; ranges not
  // listed, or listed as kZero, read as zeros.
  // With a base (REQUIRES CanDiffFrom(base)): ranges that changed since the
  // base; kZero means the range now reads as zeros; ranges not listed are
  // unchanged since the base.
  virtual Status Extents(const std::string& base_revision_id,
                         ExtentList* out) = 0;

  // Reads exactly buf.size() bytes at `offset` (bytes beyond Size() read as
  // zeros; an image that ends before Size() is an IOError). Safe for concurrent
  // use by multiple threads. `buf` is owned by the caller and only used during
  // the call.
  virtual Status Read(uint64_t offset, std::span<uint8_t> buf) = 0;

  // Checks, once every Read() of a backup is done, that the image is still
  // the one Begin() saw: the same size and, for a file, the same file (a
  // file source has no snapshot; a file truncated, extended or replaced
  // meanwhile would give a revision that is neither the old image nor the
  // new one). A point-in-time source (RBD snapshot) cannot change and
  // returns OK. Errors: IOError naming the source when it changed.
  // REQUIRES: Begin() succeeded.
  virtual Status CheckUnchanged() = 0;

  // The backup of `revision_id` has been published; the source may drop
  // state belonging to older revisions (RBD: older backy-* snapshots).
  virtual Status Commit(const std::string& revision_id) = 0;

  // The backup failed; undo what Begin() created. Never fails loudly.
  virtual void Abort() = 0;

  virtual VerifyMode verify_mode() const = 0;

  // Bytes read from the underlying image so far (for revision stats).
  virtual uint64_t bytes_read() const = 0;
};

}  // namespace backy::sources
