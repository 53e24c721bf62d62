#include "sources/rbd_image_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "sources/rbd_cluster.h"

namespace backy::sources {

struct RbdImageWriter::Handles {
  RbdConnection conn;
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
