// RadosRepository: a repository as objects in a Ceph RADOS pool (and
// namespace), for operators who outgrow one backup host: any host that
// reaches the cluster can back up, restore or serve it. Location
// rados:POOL[/NAMESPACE]/NAME. Objects (specified in man/backy-store.5,
// RADOS REPOSITORIES):
//
//   NAME/head             empty data; omap: "config" (the config YAML, as
//                         a directory's config file), "rev.<id>" (each
//                         published revision's metadata YAML, as a .rev
//                         file), "pin.<token>" (readers' pins),
//                         "holder.writer" (who holds the writer lock);
//                         cls_lock locks "writer" (exclusive) and "purge"
//                         (shared by writers and pinning readers,
//                         exclusive by purge), each a lease
//   NAME/index/<id>       a revision's index, in the index format
//   NAME/chunk/<hex>      chunks (store/rados_chunk_store.h)
//   NAME/quarantine/<hex> chunks found damaged
//   NAME/pin/<token>      a reader's pin: "<revision id>\n<holder>\n",
//                         locked "pin" exclusively under a lease
//
// A revision becomes visible by one omap update of NAME/head (its index
// object is written before), so a reader sees it whole or not at all. That
// update, and every other change of the revision list, carries cls_lock's
// assert_locked for the writer lock and for purge.lock shared: a writer
// whose lease ran out (killed, or cut off from the cluster) cannot publish
// any more, and a purge that took over cannot have deleted chunks a
// published revision needs. Forget removes a revision's omap key only; its
// index object stays until a purge finds no pin needs it.
// Thread-safe as Repository says.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "store/rados_chunk_store.h"
#include "store/rados_lease.h"
#include "store/rados_pool.h"
#include "store/repository.h"

namespace backy::store {

class RadosRepository final : public Repository {
 public:
  static Status Init(const RepositoryLocation& location,
                     const RepositoryConfig& config,
                     const RadosOptions& options);
  static Status WriteConfig(const RepositoryLocation& location,
                            const RepositoryConfig& config,
                            const RadosOptions& options);
  // NotFound when the pool has no NAME/head (or the pool is missing).
  static Result<std::unique_ptr<RadosRepository>> Open(
      const RepositoryLocation& location, const RadosOptions& options);

  ChunkStore& chunks() override { return *chunks_; }
  Result<RevisionList> ScanRevisions() const override;
  Result<bool> HasRevision(const Revision& revision) const override;
  Result<std::vector<std::string>> IndexIds() const override;
  Result<RevisionIndex> LoadIndex(const std::string& id) const override;
  std::string ConfigName() const override;
  std::string IndexName(const Revision& revision) const override;
  // No log of its own yet: each host's commands log where they run.
  std::string LogFile() const override { return ""; }

  Status Publish(const Revision& revision, const RevisionIndex& index) override;
  Status UpdateMetadata(const Revision& revision) override;
  Status Forget(const std::string& id) override;

  Result<RepositoryLock> LockWriter(std::string_view what) override;
  // Lock "job" on NAME/head, exclusive, under a lease.
  Result<RepositoryLock> LockJob(std::string_view holder) override;
  Result<RepositoryLock> LockReader() override;
  Result<RevisionPin> PinRevision(const Revision& revision,
                                  std::string_view what) override;
  Result<RepositoryLock> LockPurge() override;
  Result<std::vector<std::string>> ForEachLivePin(
      const std::function<Status(const PinnedIndex&,
                                 const Result<RevisionIndex>&)>& mark) override;
  Status RemoveStalePins(const std::vector<std::string>& tokens) override;
  // Only under LockPurge() (it lists the pool's namespace, too costly for
  // every backup): removes index objects that neither a published
  // revision nor a live pin names.
  Status RemoveLeftovers() override;

  RadosPool& pool() { return *pool_; }
  std::string HeadOid() const { return prefix_ + "head"; }
  std::string IndexOid(const std::string& id) const {
    return prefix_ + "index/" + id;
  }
  std::string PinOid(const std::string& token) const {
    return prefix_ + "pin/" + token;
  }
  std::chrono::seconds lease() const { return lease_; }

 private:
  RadosRepository(std::string location, RepositoryConfig config,
                  std::shared_ptr<RadosPool> pool, std::string prefix,
                  std::chrono::seconds lease);

  // A write operation on NAME/head asserting the writer lease and the
  // purge lease this object holds; `fill` adds the changes. Busy when
  // either lease is gone, naming what was not done.
  Status WriteHeadUnderLock(const std::string& what,
                            const std::function<void(rados_write_op_t)>& fill);
  // Reads omap values of NAME/head whose keys start with `prefix`.
  Status ReadHeadValues(
      const std::string& prefix,
      const std::function<void(std::string_view key, std::string_view value)>&
          fn) const;
  Result<std::shared_ptr<RadosLease>> TakePurgeShared();

  const std::shared_ptr<RadosPool> pool_;
  const std::string prefix_;  // "NAME/"
  const std::chrono::seconds lease_;
  std::unique_ptr<RadosChunkStore> chunks_;

  std::mutex mu_;
  // The leases this object holds, for the assertions of its writes.
  std::weak_ptr<RadosLease> writer_;           // GUARDED_BY(mu_)
  std::weak_ptr<RadosLease> writer_purge_;     // GUARDED_BY(mu_)
  std::weak_ptr<RadosLease> purge_exclusive_;  // GUARDED_BY(mu_)
};

}  // namespace backy::store
