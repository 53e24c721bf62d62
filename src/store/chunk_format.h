// The chunk file format: one chunk (≤ 4 MiB of plain image data) split into
// independently stored blocks, each raw or zstd-compressed.
//
// Layout (all integers little-endian; specified in man/backy-store.5):
//   ChunkHeader   64 bytes: magic, version, plain size, block size, block
//                 count, the chunk's XXH3-128 digest, checksum
//   BlockEntry[]  16 bytes each: stored size, codec, XXH3-64 of the block's
//                 plain bytes
//   block data    concatenated, in order
// The header checksum (XXH3-64) covers the header (checksum field zeroed)
// and the block table, so a damaged table is detected before it is used.
//
// Why blocks: an NBD client reading 4 KiB at random must not cost a 4 MiB
// decompression. The encoder picks the block size per chunk: 16 KiB when
// the chunk's first 64 KiB do not compress, else 512 KiB (chunks written
// before 2026-11-22 use 64 KiB; readers accept any block size). A read of
// any byte range touches only the blocks covering it, each checked against
// its own XXH3-64; a full read also checks the chunk's XXH3-128. Incompressible
// blocks (random data) are stored raw, so reading them is a plain pread plus a
// hash.
//
// Thread-safety: ChunkEncoder holds a zstd context; use one per thread.
// The decode functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "store/digest.h"
#include "store/status.h"

namespace backy::store {

inline constexpr char kChunkMagic[8] = {'B', 'A', 'C', 'K', 'Y', 'C', 'H', 'K'};
inline constexpr uint32_t kChunkFormatVersion = 1;
// Block size of chunks whose data does not compress (random data, stored
// raw): small, so a random 4 KiB read copies and hashes only 16 KiB. The
// block table then takes 4 KiB, 0.1 % of a chunk. The measurements behind
// the block sizes: tests/bench/RESULTS.md, "Chunk block sizes".
inline constexpr uint32_t kChunkBlockSize = 16 * 1024;
// How much of a chunk the encoder compresses to decide its block size.
inline constexpr uint32_t kChunkProbeSize = 64 * 1024;
// Block size of chunks that compress: larger blocks give zstd more context
// (smaller output, and faster), at the price of decoding up to 512 KiB for
// a small read of compressed data.
inline constexpr uint32_t kCompressedBlockSize = 512 * 1024;
inline constexpr uint32_t kMaxChunkSize = 4 * 1024 * 1024;
inline constexpr size_t kChunkHeaderSize = 64;
inline constexpr size_t kBlockEntrySize = 16;

enum class BlockCodec : uint32_t { kRaw = 0, kZstd = 1 };

struct ChunkHeader {
  uint32_t version = kChunkFormatVersion;
  uint32_t plain_size = 0;
  uint32_t block_size = kChunkBlockSize;
  uint32_t block_count = 0;
  Digest digest;
};

struct BlockEntry {
  uint32_t stored_size = 0;
  BlockCodec codec = BlockCodec::kRaw;
  uint64_t plain_hash = 0;  // XXH3-64 of the block's plain bytes
};

// The parsed header and block table of a chunk file, with the file offset
// at which each block's stored bytes begin.
struct ChunkLayout {
  ChunkHeader header;
  std::vector<BlockEntry> blocks;
  std::vector<uint64_t> block_offsets;  // absolute offsets in the file
  uint64_t file_size = 0;               // expected total size

  // Plain size of block i (the last block may be short).
  uint32_t PlainBlockSize(size_t i) const;
};

struct CompressionOptions {
  bool enabled = true;
  int level = 3;  // zstd level
};

class ChunkEncoder {
 public:
  explicit ChunkEncoder(CompressionOptions options);
  ~ChunkEncoder();
  ChunkEncoder(const ChunkEncoder&) = delete;
  ChunkEncoder& operator=(const ChunkEncoder&) = delete;

  // Encodes `plain` (whose XXH3-128 is `digest`) into `out` (replaced).
  // REQUIRES: plain.size() <= kMaxChunkSize.
  void Encode(const Digest& digest, std::span<const uint8_t> plain,
              std::vector<uint8_t>* out);

 private:
  CompressionOptions options_;
  void* cctx_;  // ZSTD_CCtx*, kept out of this header
  std::vector<uint8_t> probe_;
};

// This thread's encoder for `options`, for stores that encode on the
// caller's thread (a ChunkEncoder is not thread-safe, and costly to make).
ChunkEncoder& ThreadChunkEncoder(const CompressionOptions& options);

// Size of the header plus block table for `block_count` blocks.
inline size_t ChunkPrefixSize(uint32_t block_count) {
  return kChunkHeaderSize + kBlockEntrySize * block_count;
}

// Parses and checks the first 64 bytes: magic, version, sizes. Returns the
// block count so the caller can read the rest of the prefix.
Result<ChunkHeader> ParseChunkHeader(std::span<const uint8_t> bytes,
                                     const std::string& name);

// Parses the header and block table (`prefix` holds at least
// ChunkPrefixSize(block_count) bytes) and checks the checksum and the
// format's limits: no stored block is larger than its plain size, so
// `file_size` is at most ChunkPrefixSize(block_count) + plain size. A
// reader of a file must also compare `file_size` with the file's (see
// CheckChunkFileSize).
Result<ChunkLayout> ParseChunkLayout(std::span<const uint8_t> prefix,
                                     const std::string& name);

// Corruption naming `name` unless a chunk file of `actual_size` bytes is
// exactly as large as `layout` says.
Status CheckChunkFileSize(const ChunkLayout& layout, uint64_t actual_size,
                          const std::string& name);

// Decodes a whole chunk file into `out` (resized to the plain size),
// checking every block hash and the chunk digest against `expected`.
Status DecodeChunk(std::span<const uint8_t> file, const Digest& expected,
                   std::vector<uint8_t>* out, const std::string& name);

// Checks that `plain` (PlainBlockSize(i) bytes) hashes to block i's XXH3-64;
// Corruption naming the block and `name` if not.
Status CheckBlockHash(const ChunkLayout& layout, size_t i, const uint8_t* plain,
                      const std::string& name);

// Decodes block `i` from its stored bytes into `out` (which must have room
// for the block's plain size) and checks its XXH3-64.
Status DecodeBlock(const ChunkLayout& layout, size_t i,
                   std::span<const uint8_t> stored, std::span<uint8_t> out,
                   const std::string& name);

// The file byte range [first, second) holding the stored blocks that cover
// plain bytes [offset, offset + length). REQUIRES: length > 0 and the range
// lies within the chunk.
std::pair<uint64_t, uint64_t> StoredRange(const ChunkLayout& layout,
                                          uint64_t offset, uint64_t length);

// Decodes plain bytes [offset, offset + out.size()) of a chunk. `stored`
// holds file bytes starting at file offset `stored_begin` and must cover
// StoredRange(layout, offset, out.size()). Checks each block's hash.
Status DecodeRange(const ChunkLayout& layout, uint64_t stored_begin,
                   std::span<const uint8_t> stored, uint64_t offset,
                   std::span<uint8_t> out, const std::string& name);

}  // namespace backy::store
