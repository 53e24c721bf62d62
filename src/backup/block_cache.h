// BlockCache: a bounded LRU cache of decoded 64 KiB chunk blocks, shared by
// every export the NBD server serves. Keys are (chunk digest, block
// number); values are immutable, so a hit is a shared_ptr copy and a
// memcpy. Thread-safe (sharded mutexes).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "store/digest.h"

namespace backy::backup {

class BlockCache {
 public:
  using Block = std::shared_ptr<const std::vector<uint8_t>>;

  // `capacity_bytes` bounds the decoded data held (0 disables caching).
  explicit BlockCache(uint64_t capacity_bytes);

  Block Get(const Digest& digest, uint32_t block);
  void Put(const Digest& digest, uint32_t block, Block data);
  uint64_t bytes() const;

 private:
  struct Key {
    Digest digest;
    uint32_t block;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return DigestHash()(k.digest) ^ (static_cast<size_t>(k.block) * 0x9E3779B97F4A7C15ull);
    }
  };
  struct Shard {
    std::mutex mu;
    std::list<std::pair<Key, Block>> lru;  // front = most recent
    std::unordered_map<Key, std::list<std::pair<Key, Block>>::iterator, KeyHash> map;
    uint64_t bytes = 0;
  };
  static constexpr size_t kShards = 16;
  Shard& ShardFor(const Key& k) { return shards_[KeyHash()(k) % kShards]; }

  const uint64_t shard_capacity_;
  Shard shards_[kShards];
};

}  // namespace backy::backup
