// Internals shared by rbd_source.cc and rbd_image_writer.cc, the only
// files that include librbd: a cluster connection (store::RadosPool, which
// holds the one connect code) and the error mapping (store::RadosError).
// Not for use outside src/sources.
// Thread-safety: an RbdConnection is opened by one thread; afterwards its
// io() handle may be used from several (librados I/O contexts are).
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "sources/rbd_source.h"
#include "store/rados_pool.h"
#include "store/status.h"

namespace backy::sources {

// librbd returns ssize_t/int byte counts; keep single calls well below that.
inline constexpr uint64_t kMaxIo = uint64_t{1} << 30;

// A librbd/librados error code as a Status (librbd's codes are librados'
// negative errnos): `what` says what failed, `object` names it
// (pool/image@snap).
inline Status RbdError(int r, std::string_view what, std::string_view object) {
  return store::RadosError(r, what, object);
}

// A progress callback for librbd calls that take one: reports nothing.
inline int NoProgress(uint64_t, uint64_t, void*) { return 0; }

// One connection to a cluster and an I/O context on the config's pool
// (and namespace). Shared by RbdSource, RbdImageWriter
// and ProbeRbdImage(); the destructor closes both.
class RbdConnection {
 public:
  RbdConnection() = default;
  RbdConnection(const RbdConnection&) = delete;
  RbdConnection& operator=(const RbdConnection&) = delete;

  bool connected() const { return pool_ != nullptr; }
  rados_ioctx_t io() const { return pool_->io(); }

  // Connects as RbdConfig says (configuration, $CEPH_ARGS, keyring,
  // timeouts) and opens an I/O context on its pool and namespace. NotFound
  // for a missing pool, IOError for an unreachable cluster; errors name
  // pool/image. Call once.
  Status Open(const RbdConfig& c);

 private:
  std::shared_ptr<store::RadosPool> pool_;  // closed by its destructor
};

// Closes `*image` if it is open and sets it to nullptr.
void CloseImage(rbd_image_t* image);

}  // namespace backy::sources
