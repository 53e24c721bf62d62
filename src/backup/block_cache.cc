#include "backup/block_cache.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "store/chunk_format.h"

namespace backy::backup {

BlockCache::BlockCache(uint64_t capacity_bytes)
    // Each shard holds at least 16 whole 4 MiB blocks: with fewer, chunks
    // that hash to one shard evict each other while the cache as a whole
    // has room (measured: a 9-chunk working set in a 256 MiB cache of 16
    // shards fell from 43k to 0.8k IOPS).
    : shard_count_(std::clamp<uint64_t>(
          capacity_bytes / (16 * Footprint(store::kMaxChunkSize)), 1, kShards)),
      shard_capacity_(capacity_bytes / shard_count_),
      pool_(std::make_shared<Pool>()) {
  // Enough spare memory to absorb bursts of evictions; a full cache evicts
  // about one block per block it inserts.
  pool_->max_free_bytes =
      std::min<uint64_t>(4 * 1024 * 1024, capacity_bytes / 16);
}

std::shared_ptr<CachedBlock> BlockCache::NewBlock(uint32_t size) {
  assert(size > 0 && size <= store::kMaxChunkSize);
  std::unique_ptr<uint8_t[]> bytes;
  {
    std::lock_guard<std::mutex> l(pool_->mu);
    auto it = pool_->free.find(size);
    if (it != pool_->free.end() && !it->second.empty()) {
      bytes = std::move(it->second.back());
      it->second.pop_back();
      pool_->free_bytes -= size;
    }
  }
  if (!bytes) bytes.reset(new uint8_t[size]);
  return std::shared_ptr<CachedBlock>(
      new CachedBlock(std::move(bytes), size), [pool = pool_](CachedBlock* b) {
        {
          std::lock_guard<std::mutex> l(pool->mu);
          if (pool->free_bytes + b->size <= pool->max_free_bytes) {
            pool->free[b->size].push_back(std::move(b->bytes));
            pool->free_bytes += b->size;
          }
        }
        delete b;
      });
}

namespace {

// Both caches are sharded LRU lists indexed by a map of list iterators.
// Returns the value cached under `key` (made the most recent), or an empty
// pointer. REQUIRES: the shard's mutex is held.
template <typename Shard, typename Key>
auto FindAndTouch(Shard& s, const Key& key) {
  using Value = typename decltype(s.lru)::value_type::second_type;
  auto it = s.map.find(key);
  if (it == s.map.end()) return Value();
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

}  // namespace

BlockCache::Block BlockCache::Get(const Digest& digest, uint32_t offset,
                                  uint32_t size) {
  Key k{digest, offset, size};
  Shard& s = ShardFor(k);
  std::lock_guard<std::mutex> l(s.mu);
  return FindAndTouch(s, k);
}

Result<BlockCache::Block> BlockCache::GetOrFill(
    const Digest& digest, uint32_t offset, uint32_t size,
    const std::function<Status(CachedBlock&)>& fill) {
  Key k{digest, offset, size};
  Shard& s = ShardFor(k);
  std::shared_ptr<Filling> f;
  {
    std::unique_lock<std::mutex> l(s.mu);
    if (Block hit = FindAndTouch(s, k)) return hit;
    auto it = s.filling.find(k);
    if (it != s.filling.end()) {
      f = it->second;
      s.filled.wait(l, [&] { return f->done; });
      if (!f->status.ok()) return f->status;
      return f->block;
    }
    f = std::make_shared<Filling>();
    s.filling.emplace(k, f);
  }
  std::shared_ptr<CachedBlock> block = NewBlock(size);
  Status st = fill(*block);
  Block result;
  if (st.ok()) {
    result = std::move(block);
    Put(digest, offset, result);
  }
  {
    std::lock_guard<std::mutex> l(s.mu);
    f->done = true;
    f->status = st;
    f->block = result;
    s.filling.erase(k);
  }
  s.filled.notify_all();
  if (!st.ok()) return st;
  return result;
}

void BlockCache::Put(const Digest& digest, uint32_t offset, Block data) {
  if (!data || Footprint(data->size) > shard_capacity_) return;
  Key k{digest, offset, data->size};
  Shard& s = ShardFor(k);
  std::vector<Block> victims;  // freed after the lock is released
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.map.count(k)) return;
    s.bytes += Footprint(data->size);
    s.lru.emplace_front(k, std::move(data));
    s.map[k] = s.lru.begin();
    while (s.bytes > shard_capacity_) {
      auto& victim = s.lru.back();
      s.bytes -= Footprint(victim.second->size);
      victims.push_back(std::move(victim.second));
      s.map.erase(victim.first);
      s.lru.pop_back();
    }
  }
}

uint64_t BlockCache::bytes() const {
  uint64_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    total += s.bytes;
  }
  return total;
}

ChunkReaderCache::ChunkReaderCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)) {}

ChunkReaderCache::Reader ChunkReaderCache::Peek(const Digest& digest) {
  Shard& s = ShardFor(digest);
  std::lock_guard<std::mutex> l(s.mu);
  return FindAndTouch(s, digest);
}

Result<ChunkReaderCache::Reader> ChunkReaderCache::Get(const Digest& digest,
                                                       const Opener& open) {
  if (Reader cached = Peek(digest)) return cached;
  Shard& s = ShardFor(digest);
  auto reader = open();
  if (!reader.ok()) return reader.status();
  Reader victim;  // closed outside the lock
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.map.find(digest);
  if (it != s.map.end()) return it->second->second;  // another thread won
  s.lru.emplace_front(digest, *reader);
  s.map[digest] = s.lru.begin();
  if (s.lru.size() > shard_capacity_) {
    victim = std::move(s.lru.back().second);
    s.map.erase(s.lru.back().first);
    s.lru.pop_back();
  }
  return *reader;
}

size_t ChunkReaderCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace backy::backup
