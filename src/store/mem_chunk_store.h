// MemChunkStore: an in-memory ChunkStore for unit tests. Chunks are kept
// encoded in the real chunk format, so tests can damage them with
// MutableEncoded() and expect Corruption. Thread-safe.
#pragma once

#include <map>
#include <mutex>

#include "store/chunk_format.h"
#include "store/chunk_store.h"

namespace backy::store {

class MemChunkStore final : public ChunkStore {
 public:
  explicit MemChunkStore(CompressionOptions compression = {});

  Result<PutResult> Put(const Digest& digest, std::span<const uint8_t> plain,
                        bool rewrite = false) override;
  Result<bool> Contains(const Digest& digest) override;
  Status Get(const Digest& digest, std::vector<uint8_t>* out) override;
  Status Read(const Digest& digest, uint64_t offset,
              std::span<uint8_t> out) override;
  Result<uint64_t> PlainSize(const Digest& digest) override;
  Status Sync() override { return Status::OK(); }
  Status Remove(const Digest& digest) override;
  Status Quarantine(const Digest& digest) override;
  Status List(const std::function<void(const Digest&)>& fn) override;
  std::string ChunkName(const Digest& digest) const override;
  // The chunk's encoded size.
  Result<uint64_t> StoredSize(const Digest& digest) override;

  // Test hooks. REQUIRES: the chunk exists. The pointer stays valid until
  // the chunk is removed.
  std::vector<uint8_t>* MutableEncoded(const Digest& digest);
  size_t size() const;
  size_t quarantined() const;

 private:
  // A copy of the chunk's encoded bytes; NotFound when missing.
  Result<std::vector<uint8_t>> Encoded(const Digest& digest) const;

  ChunkEncoder encoder_;  // GUARDED_BY(mu_)
  mutable std::mutex mu_;
  std::map<Digest, std::vector<uint8_t>> chunks_;      // GUARDED_BY(mu_)
  std::map<Digest, std::vector<uint8_t>> quarantine_;  // GUARDED_BY(mu_)
};

}  // namespace backy::store
