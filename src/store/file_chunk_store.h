// FileChunkStore: chunks as files under a repository's chunks/ directory,
// one file per chunk at chunks/<first two hex digits>/<32 hex digits>.chunk,
// in the format of chunk_format.h. Temporary files go to a separate tmp
// directory on the same file system. Thread-safe.
//
// Group commit: Put() writes a chunk to a temporary file and starts its
// write-back, but makes it durable and visible in groups — one syncfs(2)
// for every ~64 MiB written (and at Sync()), then renames to final names.
// So a file under a final name is always complete and on disk, while a
// backup pays one journal commit per group instead of one fsync per
// chunk. A chunk is not readable until its group is committed.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "store/chunk_format.h"
#include "store/chunk_store.h"

namespace backy::store {

class FileChunkStore final : public ChunkStore {
 public:
  // `chunks_dir` and `tmp_dir` must exist; `quarantine_dir` is created on
  // first use.
  FileChunkStore(std::string chunks_dir, std::string tmp_dir,
                 std::string quarantine_dir, CompressionOptions compression);

  Result<PutResult> Put(const Digest& digest, std::span<const uint8_t> plain,
                        bool rewrite = false) override;
  Result<bool> Contains(const Digest& digest) override;
  Status Get(const Digest& digest, std::vector<uint8_t>* out) override;
  Status Read(const Digest& digest, uint64_t offset,
              std::span<uint8_t> out) override;
  // The reader holds the open file and its parsed block table; Prefetch()
  // is posix_fadvise(WILLNEED) on the stored bytes.
  Result<std::shared_ptr<ChunkReader>> Open(const Digest& digest) override;
  Result<uint64_t> PlainSize(const Digest& digest) override;
  Status Sync() override;
  Status Remove(const Digest& digest) override;
  Status Quarantine(const Digest& digest) override;
  Status List(const std::function<void(const Digest&)>& fn) override;
  std::string ChunkName(const Digest& digest) const override;
  // The chunk file's size.
  Result<uint64_t> StoredSize(const Digest& digest) override;

 private:
  std::string PrefixDir(const Digest& digest) const;

  const std::string chunks_dir_;
  const std::string tmp_dir_;
  const std::string quarantine_dir_;
  const CompressionOptions compression_;

  struct Pending {
    Digest digest;
    std::string tmp;
  };
  // Makes `batch` durable (syncfs) and renames it into place.
  Status CommitGroup(std::vector<Pending> batch);
  // Takes the pending group if it is at least `min_bytes` large.
  std::vector<Pending> TakeGroup(uint64_t min_bytes);

  std::mutex mu_;
  std::set<std::string> dirty_dirs_;  // GUARDED_BY(mu_)
  std::vector<Pending> pending_;      // GUARDED_BY(mu_)
  std::set<Digest> pending_set_;      // GUARDED_BY(mu_)
  uint64_t pending_bytes_ = 0;        // GUARDED_BY(mu_)
};

}  // namespace backy::store
