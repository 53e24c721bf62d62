#include "backup/block_cache.h"

namespace backy::backup {

BlockCache::BlockCache(uint64_t capacity_bytes)
    : shard_capacity_(capacity_bytes / kShards) {}

BlockCache::Block BlockCache::Get(const Digest& digest, uint32_t block) {
  Key k{digest, block};
  Shard& s = ShardFor(k);
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void BlockCache::Put(const Digest& digest, uint32_t block, Block data) {
  if (shard_capacity_ == 0 || !data) return;
  Key k{digest, block};
  Shard& s = ShardFor(k);
  std::lock_guard<std::mutex> l(s.mu);
  if (s.map.count(k)) return;
  s.bytes += data->size();
  s.lru.emplace_front(k, std::move(data));
  s.map[k] = s.lru.begin();
  while (s.bytes > shard_capacity_ && !s.lru.empty()) {
    auto& victim = s.lru.back();
    s.bytes -= victim.second->size();
    s.map.erase(victim.first);
    s.lru.pop_back();
  }
}

uint64_t BlockCache::bytes() const {
  uint64_t total = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> l(const_cast<std::mutex&>(s.mu));
    total += s.bytes;
  }
  return total;
}

}  // namespace backy::backup
