#include "backup/block_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/file_io.h"

namespace backy::backup {

namespace {

// One buffer per thread for the pages a read checks (at most a slot).
std::span<uint8_t> ScratchBuffer(size_t n) {
  thread_local std::unique_ptr<uint8_t[]> buf;
  if (!buf) buf.reset(new uint8_t[BlockFile::kSlotSize]);
  return {buf.get(), n};
}

}  // namespace

size_t BlockFile::KeyHash::operator()(const Key& k) const {
  return DigestHash()(k.digest) ^
         ((static_cast<size_t>(k.offset) << 23 ^ k.size) *
          0x9E3779B97F4A7C15ull);
}

Result<std::unique_ptr<BlockFile>> BlockFile::Create(const std::string& dir,
                                                     uint64_t capacity) {
  const uint64_t slots = capacity / kSlotSize / kShards;
  if (slots == 0) {
    return Status::InvalidArgument("a block file needs at least " +
                                   std::to_string(kShards * kSlotSize >> 20) +
                                   " MiB");
  }
  auto fd = OpenUnnamedFile(dir, "create a block file in");
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<BlockFile>(new BlockFile(
      store::UniqueFd(*fd),
      static_cast<uint32_t>(std::min<uint64_t>(slots, UINT32_MAX / kShards))));
}

BlockFile::BlockFile(store::UniqueFd fd, uint32_t slot_count)
    : fd_(std::move(fd)), slot_count_(slot_count * kShards) {
  for (auto& s : shards_) s.slots.resize(slot_count);
}

size_t BlockFile::blocks() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    n += s.map.size();
  }
  return n;
}

Result<bool> BlockFile::Read(const Key& key, uint32_t from,
                             std::span<uint8_t> out, bool nowait) {
  if (disabled_.load(std::memory_order_relaxed) || out.empty() ||
      from + out.size() > key.size) {
    return false;
  }
  const uint32_t first = from / kPageSize;
  const uint32_t last =
      static_cast<uint32_t>((from + out.size() - 1) / kPageSize);
  uint64_t want[kSlotSize / kPageSize];
  uint64_t at;
  {
    const size_t shard = KeyHash()(key) % kShards;
    Shard& s = shards_[shard];
    std::lock_guard<std::mutex> l(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return false;
    Slot& slot = s.slots[it->second];
    slot.referenced = true;
    std::copy(slot.hashes.begin() + first, slot.hashes.begin() + last + 1,
              want);
    at = SlotOffset(shard, it->second);
  }
  // The pages the range touches, read and checked outside the lock.
  const uint32_t begin = first * kPageSize;
  const uint32_t end = std::min<uint32_t>((last + 1) * kPageSize, key.size);
  std::span<uint8_t> pages = ScratchBuffer(end - begin);
  Status s = nowait ? PReadNoWait(fd_.get(), pages, at + begin, "block file")
                    : PReadAll(fd_.get(), pages, at + begin, "block file");
  if (!s.ok()) {
    if (s.IsWouldBlock()) return s;
    return false;
  }
  for (uint32_t p = first; p <= last; ++p) {
    const uint32_t off = p * kPageSize - begin;
    const uint32_t len =
        std::min<uint32_t>(kPageSize, key.size - p * kPageSize);
    if (XXH3_64bits(pages.data() + off, len) != want[p - first]) return false;
  }
  std::memcpy(out.data(), pages.data() + (from - begin), out.size());
  hits_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void BlockFile::Put(const Key& key, std::span<const uint8_t> data) {
  if (disabled_.load(std::memory_order_relaxed) || data.size() != key.size ||
      key.size > kSlotSize || key.size == 0) {
    return;
  }
  const size_t shard = KeyHash()(key) % kShards;
  Shard& s = shards_[shard];
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.map.count(key)) return;
  }
  // Hashed before the slot is claimed: the lock is never held for long.
  std::vector<uint64_t> hashes((key.size + kPageSize - 1) / kPageSize);
  for (size_t p = 0; p < hashes.size(); ++p) {
    const size_t len = std::min<size_t>(kPageSize, key.size - p * kPageSize);
    hashes[p] = XXH3_64bits(data.data() + p * kPageSize, len);
  }
  uint32_t victim;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.map.count(key)) return;
    // The clock: skip slots being written, give read ones a second chance.
    const uint32_t n = static_cast<uint32_t>(s.slots.size());
    uint32_t tries = 0;
    for (;; s.hand = (s.hand + 1) % n) {
      Slot& c = s.slots[s.hand];
      if (c.writing) {
        if (++tries > 2 * n) return;  // every slot busy: skip this block
        continue;
      }
      if (c.used && c.referenced) {
        c.referenced = false;
        continue;
      }
      break;
    }
    victim = s.hand;
    s.hand = (s.hand + 1) % n;
    Slot& v = s.slots[victim];
    if (v.used) s.map.erase(v.key);
    v.key = key;
    v.used = true;
    v.writing = true;
    v.referenced = false;
    v.hashes = std::move(hashes);
    // Readers may find it before its bytes land: their check fails, and
    // they decode the block instead.
    s.map[key] = victim;
  }
  Status w =
      PWriteAll(fd_.get(), data, SlotOffset(shard, victim), "block file");
  std::lock_guard<std::mutex> l(s.mu);
  Slot& v = s.slots[victim];
  v.writing = false;
  if (!w.ok()) {
    if (v.used && v.key == key) {
      s.map.erase(key);
      v.used = false;
    }
    if (!disabled_.exchange(true)) {
      spdlog::warn(
          "nbd-server: the block file is disabled (reads of compressed data "
          "decode each time): {}",
          w.ToString());
    }
  }
}

}  // namespace backy::backup
