// RadosPool: one connection to a Ceph cluster and an I/O context on one pool
// (and namespace), for the RADOS chunk store and repository. The only place
// in src/store where a cluster is connected to and where a librados error
// code becomes a Status (RadosError); src/sources' RBD connection uses it
// too. Every wait is bounded: connecting gives up after
// connect_timeout_s (a missing pool, a wrong key or an unreachable monitor
// is one line naming the pool or monitor, never a hang), and each operation
// after op_timeout_s.
// Thread-safety: Connect() once; afterwards io() may be used from several
// threads (librados I/O contexts are thread-safe).
#pragma once

#include <rados/librados.h>

#include <memory>
#include <string>
#include <string_view>

#include "store/rados_options.h"
#include "store/status.h"

namespace backy::store {

// The one mapping from a librados error code (negative errno) to a Status:
// `what` says what failed, `object` names it (pool/namespace/object).
Status RadosError(int r, std::string_view what, std::string_view object);

class RadosPool {
 public:
  ~RadosPool();
  RadosPool(const RadosPool&) = delete;
  RadosPool& operator=(const RadosPool&) = delete;

  // Connects as `options` say and opens `pool`, set to `ns` (empty: the
  // pool's default namespace). NotFound for a missing pool, IOError naming
  // the monitors for an unreachable cluster or a refused key. Errors name
  // `object` (what the caller opens, e.g. pool/image), else Name().
  static Result<std::shared_ptr<RadosPool>> Connect(
      const RadosOptions& options, const std::string& pool,
      const std::string& ns = {}, std::string_view object = {});

  rados_t cluster() const { return cluster_; }
  rados_ioctx_t io() const { return io_; }
  const std::string& pool() const { return pool_; }
  const std::string& ns() const { return ns_; }
  // "POOL" or "POOL/NAMESPACE", for messages.
  std::string Name() const;
  // "POOL[/NAMESPACE]:OBJECT", for messages naming one object.
  std::string ObjectName(std::string_view oid) const;

 private:
  RadosPool() = default;
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;
  std::string pool_;
  std::string ns_;
};

}  // namespace backy::store
