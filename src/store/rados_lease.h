// RadosLease: a RADOS object lock (cls_lock: rados_lock_exclusive/shared)
// held for a duration and renewed by a thread of its own every third of it,
// so that a holder killed with kill -9, or cut off from the cluster, loses
// the lock when its lease runs out and the next one proceeds. The locks of
// a repository in a pool (writer, purge, pins: store/rados_repository.h)
// are RadosLeases.
//
// A lease that could not be renewed in time is lost for good (renewal uses
// LIBRADOS_LOCK_FLAG_MUST_RENEW: it never silently takes the lock again
// after someone else may have had it). Valid() says so, and writes that must
// only happen under the lock carry AssertHeld() (cls_lock's assert_locked)
// in the same write operation: the OSD refuses them once the lease is gone,
// whatever this process believes (fencing).
// Thread-safe.
#pragma once

#include <rados/librados.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/rados_pool.h"
#include "store/repository_lock.h"
#include "store/status.h"

namespace backy::store {

class RadosLease final : public RepositoryLock::Part {
 public:
  enum class Mode { kShared, kExclusive };

  // Takes lock `lock_name` on object `oid` in `mode` for `duration`
  // without waiting: Busy naming the holder (its description, e.g.
  // "backup (pid 12) on host1") when another client holds it.
  // `description` is recorded with the lock for such messages.
  static Result<std::shared_ptr<RadosLease>> Acquire(
      std::shared_ptr<RadosPool> pool, std::string oid, std::string lock_name,
      Mode mode, std::string description, std::chrono::seconds duration);

  // Stops renewing and unlocks (best effort: a lock left behind expires).
  ~RadosLease() override;

  // OK while the lease is held and renewed in time; an error naming the
  // lock once it was lost (not renewed within its duration).
  Status Valid() const override;

  // Adds to `op` an assertion that this lease still holds the lock, so
  // that the OSD fails the whole operation otherwise (-EBUSY, -ENOENT).
  // `prval` receives the assertion's result. The encoded request is kept
  // in this object, which must outlive the operation.
  void AssertHeld(rados_write_op_t op, int* prval);

  const std::string& oid() const { return oid_; }
  const std::string& cookie() const { return cookie_; }

  // The lock's lockers' descriptions ("backup (pid 12) on host1"), for
  // Busy messages; empty when there is none.
  static std::string Holders(RadosPool& pool, const std::string& oid,
                             const std::string& lock_name);
  // How many clients hold `lock_name` on `oid` now (expired leases are
  // not counted). 0 when the object is gone.
  static Result<int> CountHolders(RadosPool& pool, const std::string& oid,
                                  const std::string& lock_name);

  // A random cookie: 16 hex digits.
  static std::string NewCookie();
  // "what (pid N) on HOST", the description of locks this process takes.
  static std::string Describe(std::string_view what);

 private:
  RadosLease() = default;
  int Lock(uint8_t flags);
  void Renew();

  std::shared_ptr<RadosPool> pool_;
  std::string oid_, name_, cookie_, description_;
  Mode mode_ = Mode::kExclusive;
  std::chrono::seconds duration_{30};
  std::string assert_request_;  // cls_lock_assert_op, encoded

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  bool lost_ = false;  // GUARDED_BY(mu_)
  // When the last successful (re)new request was sent: the lease runs
  // until then + duration_ at the latest.
  std::chrono::steady_clock::time_point renewed_;  // GUARDED_BY(mu_)
  std::thread renewer_;
};

}  // namespace backy::store
