// BlockCache: a bounded LRU cache of decoded chunk blocks, and
// ChunkReaderCache: a bounded LRU cache of open chunks (store::ChunkReader,
// i.e. an open file and its parsed block table). One of each is shared by
// every export the NBD server serves. Keys are chunk digests (plus the block
// number): equal digests mean equal content, whichever repository holds it.
// Cached values are immutable, so a hit is a shared_ptr copy. Thread-safe
// (sharded mutexes).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/chunk_store.h"
#include "store/digest.h"

namespace backy::backup {

// The plain bytes of one chunk block, filled once and then only read.
struct CachedBlock {
  explicit CachedBlock(uint32_t n) : bytes(new uint8_t[n]), size(n) {}
  CachedBlock(std::unique_ptr<uint8_t[]> b, uint32_t n)
      : bytes(std::move(b)), size(n) {}
  const uint8_t* data() const { return bytes.get(); }
  std::unique_ptr<uint8_t[]> bytes;  // not zero-initialised
  uint32_t size;
};

class BlockCache {
 public:
  using Block = std::shared_ptr<const CachedBlock>;

  // `capacity_bytes` bounds the block bytes held (0 disables caching).
  // Blocks handed out by Get() stay alive while a caller holds them, so
  // memory in use may exceed the capacity by the blocks being copied.
  explicit BlockCache(uint64_t capacity_bytes);
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // The block of chunk `digest` holding plain bytes [offset, offset +
  // size), or nullptr when it is not cached. A hit becomes the most
  // recently used entry. The size is part of the key: the same chunk may
  // be stored with other block sizes elsewhere (older files, other
  // repositories), and their blocks must never be mistaken for each
  // other. Thread-safe.
  Block Get(const Digest& digest, uint32_t offset, uint32_t size);
  // A block of `size` bytes (≤ store::kMaxChunkSize) to fill and Put().
  // Its memory is recycled: when it is freed (evicted and no longer held)
  // it goes back to a small free list for its size, so a full cache serves
  // misses without calling malloc, and the heap does not grow by
  // fragmentation. Thread-safe.
  std::shared_ptr<CachedBlock> NewBlock(uint32_t size);
  // The cached block of chunk `digest` at [offset, offset + size), or else
  // a new one that `fill` fills (with the checked plain bytes) and that is
  // then cached — filled once: callers asking for the same block meanwhile
  // wait for that fill instead of decoding it again (the parallel requests
  // of a sequential reader land in one block; a 2.x chunk is one 4 MiB
  // block). `fill`'s error is returned to them all and not cached; it runs
  // without a lock held. Thread-safe.
  Result<Block> GetOrFill(const Digest& digest, uint32_t offset, uint32_t size,
                          const std::function<Status(CachedBlock&)>& fill);
  // Inserts a block (no-op when caching is disabled or the key is present),
  // evicting least recently used blocks to stay within capacity. REQUIRES:
  // `data` holds the checked plain bytes of that block. Thread-safe.
  // Its key is (digest, offset, data->size), as for Get().
  void Put(const Digest& digest, uint32_t offset, Block data);
  // Memory held by cached blocks now (their Footprint()); never more than
  // capacity(). Thread-safe.
  uint64_t bytes() const;
  // The memory a block of `size` bytes takes: malloc serves large blocks
  // with mmap, which adds a page for its header (4 KiB per 512 KiB block;
  // 8 MiB of a 1 GiB cache). Counting it keeps RSS within the capacity.
  static uint64_t Footprint(uint32_t size) {
    constexpr uint64_t kPage = 4096;
    return size >= 128 * 1024 ? (size + 16 + kPage - 1) / kPage * kPage
                              : size + 16;
  }
  uint64_t capacity() const { return shard_capacity_ * shard_count_; }

 private:
  struct Key {
    Digest digest;
    uint32_t offset;
    uint32_t size;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return DigestHash()(k.digest) ^
             ((static_cast<size_t>(k.offset) << 23 ^ k.size) *
              0x9E3779B97F4A7C15ull);
    }
  };
  // A block being filled by GetOrFill(), for the callers waiting for it.
  struct Filling {
    bool done = false;
    Status status;
    Block block;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<Key, Block>> lru;  // front = most recent
    std::unordered_map<Key, std::list<std::pair<Key, Block>>::iterator, KeyHash>
        map;
    uint64_t bytes = 0;
    std::unordered_map<Key, std::shared_ptr<Filling>, KeyHash> filling;
    std::condition_variable filled;  // a Filling became done
  };
  static constexpr size_t kShards = 16;
  Shard& ShardFor(const Key& k) { return shards_[KeyHash()(k) % shard_count_]; }

  struct Pool {
    std::mutex mu;
    // Free buffers by size: blocks come in few sizes (a chunk's block
    // size, and the short last block of a revision's last chunk).
    std::unordered_map<uint32_t, std::vector<std::unique_ptr<uint8_t[]>>> free;
    uint64_t free_bytes = 0;
    uint64_t max_free_bytes = 0;
  };

  // Fewer shards for a small cache, so that each still holds whole 4 MiB
  // blocks (a shard never holds more than its share of the capacity).
  const size_t shard_count_;
  const uint64_t shard_capacity_;
  Shard shards_[kShards];
  std::shared_ptr<Pool> pool_;  // shared with the deleters of live blocks
};

class ChunkReaderCache {
 public:
  using Reader = std::shared_ptr<store::ChunkReader>;
  using Opener = std::function<Result<Reader>()>;

  // Keeps at most `capacity` chunks open (each holds a file descriptor).
  explicit ChunkReaderCache(size_t capacity);
  ChunkReaderCache(const ChunkReaderCache&) = delete;
  ChunkReaderCache& operator=(const ChunkReaderCache&) = delete;

  // The cached reader of `digest`, or nullptr. Thread-safe.
  Reader Peek(const Digest& digest);
  // The cached reader of `digest`, or the one `open` returns (cached unless
  // it fails; errors are not cached, so a later call tries again). `open`
  // runs without a lock held; two threads may open the same chunk at once.
  // Readers reference no store, or their store outlives this cache.
  // Thread-safe.
  Result<Reader> Get(const Digest& digest, const Opener& open);
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<Digest, Reader>> lru;  // front = most recent
    std::unordered_map<Digest, std::list<std::pair<Digest, Reader>>::iterator,
                       DigestHash>
        map;
  };
  static constexpr size_t kShards = 8;
  Shard& ShardFor(const Digest& d) {
    return shards_[DigestHash()(d) % kShards];
  }

  const size_t shard_capacity_;
  Shard shards_[kShards];
};

}  // namespace backy::backup
