// BlockFile: decoded chunk blocks kept in an unnamed local file, so that the
// page cache — not the server's heap — holds the hot part of a revision's
// compressed data, as it holds a raw image for qemu-nbd.
//
// Why: a compressed block is 512 KiB of plain data (zstd needs the context
// to compress well, and repositories are as small as restic's because of
// it), so a 4 KiB read that misses the in-memory BlockCache decodes 512 KiB
// (about 0.5 ms). The in-memory cache is bounded by --cache-size, which
// bounds the server's RSS; a working set larger than that made every random
// read of text cost a decode (issue 14: 19k IOPS at QD32 where qemu-nbd did
// 70k). Blocks decoded once are written here; later reads are a pread from
// the page cache and a hash check of 16 KiB, like reads of raw blocks. The
// kernel evicts the file's pages under memory pressure like any other file
// data (they are clean once written back), and the file vanishes with the
// process, also after kill -9 (O_TMPFILE, or unlinked at once).
//
// Every read is checked: each slot keeps the XXH3-64 of every 16 KiB of its
// block, taken from the decoded (and chunk-checked) bytes before they were
// written; a read hashes what it read and compares. A mismatch — the slot
// was reused for another block meanwhile, a write has not landed yet, or the
// file was damaged on disk — is a miss, and the caller decodes the block
// from its chunk again. So no lock is held across I/O, and no reader ever
// gets bytes that were not checked.
//
// Space is `capacity` bytes in slots of kSlotSize (the largest block size
// written; older chunks' 64 KiB blocks use the start of a slot). Slots are
// reused by the clock algorithm (a second chance for recently read ones), in
// 16 shards. A failed write (ENOSPC) disables the file with one warning.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/digest.h"
#include "store/fs_util.h"
#include "store/status.h"

namespace backy::backup {

class BlockFile {
 public:
  static constexpr uint32_t kSlotSize = 512 * 1024;
  static constexpr uint32_t kPageSize = 16 * 1024;  // unit of the checks

  // An unnamed file in `dir` for up to `capacity` bytes of blocks (rounded
  // down to whole slots). An error names the directory.
  static Result<std::unique_ptr<BlockFile>> Create(const std::string& dir,
                                                   uint64_t capacity);
  BlockFile(const BlockFile&) = delete;
  BlockFile& operator=(const BlockFile&) = delete;

  // A block: plain bytes [offset, offset + size) of chunk `digest` (the
  // same key as BlockCache's).
  struct Key {
    Digest digest;
    uint32_t offset = 0;
    uint32_t size = 0;
    bool operator==(const Key&) const = default;
  };

  // Copies bytes [from, from + out.size()) of block `key` into `out` if the
  // file holds it and the bytes check: true. False: not here (or not
  // right: the caller decodes it). With `nowait`, a read that would wait
  // for the disk is WouldBlock. I/O errors other than that are misses.
  Result<bool> Read(const Key& key, uint32_t from, std::span<uint8_t> out,
                    bool nowait);
  // Stores block `key` (its checked plain bytes), reusing the slot of a
  // block not read lately. No-op when it is stored already, when the file
  // is disabled, or when `data` is larger than a slot.
  void Put(const Key& key, std::span<const uint8_t> data);

  uint64_t capacity() const { return uint64_t{slot_count_} * kSlotSize; }
  // Blocks stored now, and reads served (for tests and the log).
  size_t blocks() const;
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Slot {
    Key key;
    bool used = false;
    bool writing = false;  // a Put is writing it: not to be reused yet
    bool referenced = false;
    std::vector<uint64_t> hashes;  // per kPageSize of key.size
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot> slots;
    std::unordered_map<Key, uint32_t, KeyHash> map;  // key -> slot index
    uint32_t hand = 0;                               // the clock's hand
  };
  static constexpr size_t kShards = 16;

  BlockFile(store::UniqueFd fd, uint32_t slot_count);
  uint64_t SlotOffset(size_t shard, uint32_t slot) const {
    return (uint64_t{slot} * kShards + shard) * kSlotSize;
  }

  const store::UniqueFd fd_;
  const uint32_t slot_count_;
  Shard shards_[kShards];
  std::atomic<bool> disabled_{false};
  std::atomic<uint64_t> hits_{0};
};

}  // namespace backy::backup
