// LegacyChunkStore: the chunks of a backy 2.x repository, read in place
// from chunks/<xx>/<hash>.chunk.lzo (legacy_chunk.h) and named by their 2.x
// hash (MurmurHash3 x64_128) held in a Digest. Every read decodes the LZO
// stream and checks the hash; a missing, damaged or mismatching chunk file
// is Corruption naming it, and no unchecked byte is ever handed out.
//
// Read-only: Put() and Quarantine() are NotSupported (reading changes
// nothing in a 2.x repository); Remove() is for `backy upgrade`, which
// deletes a chunk once no revision needs it. A 2.x chunk is one LZO stream,
// so a reader's block is the whole chunk: a cache of decoded blocks (the NBD
// server's) holds whole decoded chunks. Thread-safe.
#pragma once

#include <string>

#include "store/chunk_store.h"

namespace backy::store {

class LegacyChunkStore final : public ChunkStore {
 public:
  // `chunks_dir`: the repository's chunks/ directory.
  explicit LegacyChunkStore(std::string chunks_dir);

  Result<PutResult> Put(const Digest& digest, std::span<const uint8_t> plain,
                        bool rewrite = false) override;
  Result<bool> Contains(const Digest& digest) override;
  Status Get(const Digest& digest, std::vector<uint8_t>* out) override;
  Status Read(const Digest& digest, uint64_t offset,
              std::span<uint8_t> out) override;
  // The reader holds the open file (a 2.x purge that deletes it meanwhile
  // does not break it) and decodes the whole chunk on each Read().
  Result<std::shared_ptr<ChunkReader>> Open(const Digest& digest) override;
  Result<uint64_t> PlainSize(const Digest& digest) override;
  Status Sync() override;
  Status Remove(const Digest& digest) override;
  Status Quarantine(const Digest& digest) override;
  Status List(const std::function<void(const Digest&)>& fn) override;
  std::string ChunkName(const Digest& digest) const override;

 private:
  const std::string chunks_dir_;
};

}  // namespace backy::store
