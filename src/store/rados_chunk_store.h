// RadosChunkStore: chunks as objects in a RADOS pool, one object per chunk
// named <prefix>chunk/<32 lowercase hex digits>, in the format of
// chunk_format.h (so a small read fetches only the blocks it needs). A
// quarantined chunk is copied to <prefix>quarantine/<hex>, then removed.
// The prefix ("vm1/") keeps one repository's objects apart from the next
// one's in the same pool; the repository keeps its own objects beside them.
// Thread-safe.
//
// Put() checks for the object (one stat), then writes a new chunk
// asynchronously with an exclusive create: up to kMaxInFlight writes and
// kMaxInFlightBytes are in flight at once (Put() waits for room), Sync() waits
// for all of them and reports the first error. A RADOS write is durable on
// every replica when it completes, so a chunk object never exists half-written.
// Reads of a chunk still being written wait for that write first. A Put()
// claims its digest before the stat, so of concurrent Puts of one chunk
// exactly one says `created`; an object created meanwhile by another
// process (the exclusive create fails with EEXIST) holds the same chunk and
// is kept.
#pragma once

#include <rados/librados.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/chunk_format.h"
#include "store/chunk_store.h"
#include "store/rados_pool.h"

namespace backy::store {

class RadosChunkStore final : public ChunkStore {
 public:
  // How many chunk writes may be in flight (the window of Put()).
  static constexpr size_t kMaxInFlight = 16;
  static constexpr uint64_t kMaxInFlightBytes = uint64_t{64} << 20;
  // The largest object that can be a chunk (a table of one-byte blocks);
  // anything larger is Corruption before it is read.
  static constexpr uint64_t kMaxObjectSize =
      kChunkHeaderSize + uint64_t{kBlockEntrySize} * kMaxChunkSize +
      kMaxChunkSize;

  // `prefix` is "" or ends with '/' ("vm1/").
  RadosChunkStore(std::shared_ptr<RadosPool> pool, std::string prefix,
                  CompressionOptions compression);
  // Waits for the writes still in flight.
  ~RadosChunkStore() override;

  Result<PutResult> Put(const Digest& digest, std::span<const uint8_t> plain,
                        bool rewrite = false) override;
  Result<bool> Contains(const Digest& digest) override;
  Status Get(const Digest& digest, std::vector<uint8_t>* out) override;
  Status Read(const Digest& digest, uint64_t offset,
              std::span<uint8_t> out) override;
  // The reader holds the parsed block table; each Read() is one rados_read
  // of the stored bytes it needs, each ReadAsync() one rados_aio_read. It reads
  // the object by name, so a chunk removed after Open() is NotFound, and one
  // rewritten meanwhile fails its block hashes unless the bytes are the same.
  Result<std::shared_ptr<ChunkReader>> Open(const Digest& digest) override;
  Result<uint64_t> PlainSize(const Digest& digest) override;
  Status Sync() override;
  Status Remove(const Digest& digest) override;
  Status Quarantine(const Digest& digest) override;
  // Only objects named <prefix>chunk/<valid digest>, in the pool's
  // namespace.
  Status List(const std::function<void(const Digest&)>& fn) override;
  // "rados:POOL[/NS]:<prefix>chunk/<hex>".
  std::string ChunkName(const Digest& digest) const override;
  // The object's size.
  Result<uint64_t> StoredSize(const Digest& digest) override;

  // How many librados operations (each one round trip to an OSD) this
  // store and its readers have started, for tests and benchmarks (also
  // logged at debug level when the store is destroyed).
  uint64_t RadosCalls() const { return calls_.load(); }

  // Object ids, for tests and the repository's messages.
  std::string ChunkOid(const Digest& digest) const;
  std::string QuarantineOid(const Digest& digest) const;

 private:
  // One asynchronous chunk write; owns the bytes until it completes.
  struct InFlight {
    RadosChunkStore* store = nullptr;
    Digest digest;
    std::string oid;
    std::vector<uint8_t> encoded;
    bool exclusive = true;
    rados_write_op_t op = nullptr;
    rados_completion_t completion = nullptr;
  };
  static void OnWriteComplete(rados_completion_t c, void* arg);
  void FinishWrite(InFlight* w);
  // Drops the claim on `digest` of a Put() that writes nothing.
  void Abandon(const Digest& digest);
  // Waits until no write of `digest` is in flight.
  void WaitForWrite(const Digest& digest);
  // Releases the librados handles of completed writes. REQUIRES: mu_ held.
  void ReapLocked();

  const std::shared_ptr<RadosPool> pool_;
  const std::string prefix_;
  const CompressionOptions compression_;
  std::atomic<uint64_t> calls_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  // Digests claimed by a Put() (being looked for, encoded or written).
  std::map<Digest, std::unique_ptr<InFlight>> in_flight_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<InFlight>> completed_;       // GUARDED_BY(mu_)
  size_t submitted_ = 0;          // writes handed to librados, GUARDED_BY(mu_)
  uint64_t submitted_bytes_ = 0;  // their bytes, GUARDED_BY(mu_)
  Status first_error_;            // GUARDED_BY(mu_)
};

}  // namespace backy::store
