// RbdImageWriter: a restore target that creates and fills a Ceph RBD image
// (used by backup/rbd_sink.cc). Owns its cluster connection and the image
// handle; librbd is included only by rbd_image_writer.cc (rbd_cluster.h),
// and every librbd error becomes a Status naming pool/image.
// Thread-safety: Write() and Zero() may be called from several threads at
// once; all other methods may not.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "sources/rbd_source.h"
#include "store/status.h"

namespace backy::sources {

// Writes a restored image into RBD. Create() makes a new image (or, with
// force, opens an existing one and resizes it); Write()/Zero() fill it;
// Commit() flushes and closes. If the writer created the image and is
// destroyed without a successful Commit(), it removes the image again, so
// a failed restore leaves nothing behind (an image that existed before is
// never removed).
class RbdImageWriter {
 public:
  // InvalidArgument when the image exists and !force; NotFound for a
  // missing pool; IOError when the cluster is unreachable.
  static Result<std::unique_ptr<RbdImageWriter>> Create(const RbdConfig& config,
                                                        uint64_t size,
                                                        bool force);

  RbdImageWriter(const RbdImageWriter&) = delete;
  RbdImageWriter& operator=(const RbdImageWriter&) = delete;
  ~RbdImageWriter();

  std::string Name() const;  // "pool/image"
  uint64_t Size() const { return size_; }
  // True when Create() made a new image, which reads as zeros everywhere,
  // so a restore need not write zero chunks. False for a forced overwrite.
  bool created() const { return created_; }

  // Writes data at offset. InvalidArgument beyond Size(). Thread-safe.
  Status Write(uint64_t offset, std::span<const uint8_t> data);
  // Makes [offset, offset+length) read as zeros. Thread-safe.
  Status Zero(uint64_t offset, uint64_t length);
  // Flushes and closes; afterwards only the destructor may be called.
  Status Commit();

 private:
  struct Handles;
  explicit RbdImageWriter(RbdConfig config);

  const RbdConfig config_;
  std::unique_ptr<Handles> h_;
  uint64_t size_ = 0;
  bool created_ = false;
  bool committed_ = false;
};

}  // namespace backy::sources
