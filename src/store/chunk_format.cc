#include "store/chunk_format.h"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>

#include "store/coding.h"

namespace backy::store {

namespace {

// Header field offsets (see man/backy-store.5).
constexpr size_t kOffVersion = 8;
constexpr size_t kOffPlainSize = 12;
constexpr size_t kOffBlockSize = 16;
constexpr size_t kOffBlockCount = 20;
constexpr size_t kOffDigest = 24;
constexpr size_t kOffChecksum = kHeaderChecksumOffset;
static_assert(kChunkHeaderSize == kFormatHeaderSize);

}  // namespace

uint32_t ChunkLayout::PlainBlockSize(size_t i) const {
  uint64_t start = static_cast<uint64_t>(i) * header.block_size;
  uint64_t end =
      std::min<uint64_t>(start + header.block_size, header.plain_size);
  return static_cast<uint32_t>(end - start);
}

ChunkEncoder::ChunkEncoder(CompressionOptions options)
    : options_(options), cctx_(ZSTD_createCCtx()) {
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_),
                         ZSTD_c_compressionLevel, options_.level);
}

ChunkEncoder::~ChunkEncoder() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

void ChunkEncoder::Encode(const Digest& digest, std::span<const uint8_t> plain,
                          std::vector<uint8_t>* out) {
  auto* cctx = static_cast<ZSTD_CCtx*>(cctx_);
  // Probe: does the start of the chunk compress? Then use large blocks.
  uint32_t block_size = kChunkBlockSize;
  if (options_.enabled && !plain.empty()) {
    const size_t n = std::min<size_t>(kChunkProbeSize, plain.size());
    probe_.resize(ZSTD_compressBound(n));
    size_t c =
        ZSTD_compress2(cctx, probe_.data(), probe_.size(), plain.data(), n);
    if (!ZSTD_isError(c) && c < n - n / 32) block_size = kCompressedBlockSize;
  }
  const uint32_t nblocks =
      static_cast<uint32_t>((plain.size() + block_size - 1) / block_size);
  const size_t prefix = ChunkPrefixSize(nblocks);
  // Worst case: every block raw. Compressed blocks are only kept when
  // smaller, so this bound always holds.
  out->resize(prefix + plain.size());
  uint8_t* base = out->data();
  std::memset(base, 0, prefix);
  std::memcpy(base, kChunkMagic, 8);
  EncodeFixed32(base + kOffVersion, kChunkFormatVersion);
  EncodeFixed32(base + kOffPlainSize, static_cast<uint32_t>(plain.size()));
  EncodeFixed32(base + kOffBlockSize, block_size);
  EncodeFixed32(base + kOffBlockCount, nblocks);
  std::memcpy(base + kOffDigest, digest.bytes().data(), Digest::kSize);

  // Small raw blocks: first ask zstd once per probe-sized window whether
  // it compresses at all, and try the window's blocks one by one only if
  // it does. Random data then costs one zstd call per 64 KiB, as it did
  // with 64 KiB blocks (a call per 16 KiB block costs much more CPU: see
  // tests/bench/RESULTS.md, "Chunk block sizes").
  const uint32_t per_window =
      block_size < kChunkProbeSize ? kChunkProbeSize / block_size : 1;
  bool window_compresses = true;

  size_t pos = prefix;
  for (uint32_t i = 0; i < nblocks; ++i) {
    size_t off = static_cast<size_t>(i) * block_size;
    size_t len = std::min<size_t>(block_size, plain.size() - off);
    const uint8_t* src = plain.data() + off;
    uint8_t* entry = base + kChunkHeaderSize + kBlockEntrySize * i;
    BlockCodec codec = BlockCodec::kRaw;
    size_t stored = len;
    if (options_.enabled && per_window > 1 && i % per_window == 0) {
      if (i == 0) {
        window_compresses = false;  // the probe said so: small blocks
      } else {
        const size_t n = std::min<size_t>(kChunkProbeSize, plain.size() - off);
        const size_t limit = n - n / 32;
        const size_t c = ZSTD_compress2(cctx, probe_.data(), limit, src, n);
        window_compresses = !ZSTD_isError(c) && c < limit;
      }
    }
    if (options_.enabled && window_compresses) {
      // Only keep the compressed form when it saves at least 1/32: reading
      // a raw block is cheaper than decompressing one.
      size_t limit = len - len / 32;
      size_t n = ZSTD_compress2(cctx, base + pos, limit, src, len);
      if (!ZSTD_isError(n) && n < limit) {
        codec = BlockCodec::kZstd;
        stored = n;
      }
    }
    if (codec == BlockCodec::kRaw) std::memcpy(base + pos, src, len);
    EncodeFixed32(entry, static_cast<uint32_t>(stored));
    EncodeFixed32(entry + 4, static_cast<uint32_t>(codec));
    EncodeFixed64(entry + 8, XXH3_64bits(src, len));
    pos += stored;
  }
  out->resize(pos);
  base = out->data();
  EncodeFixed64(base + kOffChecksum, HeaderChecksum(base, prefix));
}

Result<ChunkHeader> ParseChunkHeader(std::span<const uint8_t> bytes,
                                     const std::string& name) {
  if (bytes.size() < kChunkHeaderSize) {
    return Status::Corruption("chunk file too short for its header", name);
  }
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kChunkMagic, 8) != 0) {
    return Status::Corruption("not a chunk file (bad magic)", name);
  }
  ChunkHeader h;
  h.version = DecodeFixed32(p + kOffVersion);
  if (h.version != kChunkFormatVersion) {
    return Status::NotSupported(
        "unsupported chunk format version " + std::to_string(h.version), name);
  }
  h.plain_size = DecodeFixed32(p + kOffPlainSize);
  h.block_size = DecodeFixed32(p + kOffBlockSize);
  h.block_count = DecodeFixed32(p + kOffBlockCount);
  std::array<uint8_t, Digest::kSize> d;
  std::memcpy(d.data(), p + kOffDigest, Digest::kSize);
  h.digest = Digest(d);
  if (h.plain_size > kMaxChunkSize || h.block_size == 0 ||
      h.block_size > kMaxChunkSize ||
      h.block_count !=
          (static_cast<uint64_t>(h.plain_size) + h.block_size - 1) /
              h.block_size) {
    return Status::Corruption("chunk header has inconsistent sizes", name);
  }
  return h;
}

Result<ChunkLayout> ParseChunkLayout(std::span<const uint8_t> prefix,
                                     const std::string& name) {
  auto header = ParseChunkHeader(prefix, name);
  if (!header.ok()) return header.status();
  ChunkLayout layout;
  layout.header = *header;
  const uint32_t n = layout.header.block_count;
  const size_t prefix_size = ChunkPrefixSize(n);
  if (prefix.size() < prefix_size) {
    return Status::Corruption("chunk file too short for its block table", name);
  }
  if (DecodeFixed64(prefix.data() + kOffChecksum) !=
      HeaderChecksum(prefix.data(), prefix_size)) {
    return Status::Corruption("chunk header checksum mismatch", name);
  }
  layout.blocks.resize(n);
  layout.block_offsets.resize(n);
  uint64_t pos = prefix_size;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* e = prefix.data() + kChunkHeaderSize + kBlockEntrySize * i;
    BlockEntry& b = layout.blocks[i];
    b.stored_size = DecodeFixed32(e);
    uint32_t codec = DecodeFixed32(e + 4);
    b.plain_hash = DecodeFixed64(e + 8);
    if (codec > 1) return Status::Corruption("unknown block codec", name);
    b.codec = static_cast<BlockCodec>(codec);
    if (b.codec == BlockCodec::kRaw &&
        b.stored_size != layout.PlainBlockSize(i)) {
      return Status::Corruption("raw block has wrong size", name);
    }
    // The encoder keeps a compressed block only when it is smaller than
    // the plain one, so no stored block is larger: this bounds every
    // buffer a reader allocates for stored bytes by the block size.
    if (b.stored_size > layout.PlainBlockSize(i)) {
      return Status::Corruption("block " + std::to_string(i) + " stored size " +
                                    std::to_string(b.stored_size) +
                                    " exceeds its plain size " +
                                    std::to_string(layout.PlainBlockSize(i)),
                                name);
    }
    layout.block_offsets[i] = pos;
    pos += b.stored_size;
  }
  layout.file_size = pos;
  return layout;
}

Status CheckChunkFileSize(const ChunkLayout& layout, uint64_t actual_size,
                          const std::string& name) {
  if (actual_size != layout.file_size) {
    return Status::Corruption("chunk file is " + std::to_string(actual_size) +
                                  " bytes, its block table says " +
                                  std::to_string(layout.file_size),
                              name);
  }
  return Status::OK();
}

Status DecodeBlock(const ChunkLayout& layout, size_t i,
                   std::span<const uint8_t> stored, std::span<uint8_t> out,
                   const std::string& name) {
  const BlockEntry& b = layout.blocks[i];
  const uint32_t plain = layout.PlainBlockSize(i);
  if (stored.size() != b.stored_size || out.size() < plain) {
    return Status::InvalidArgument("block buffer size mismatch", name);
  }
  if (b.codec == BlockCodec::kRaw) {
    std::memcpy(out.data(), stored.data(), plain);
  } else {
    size_t n = ZSTD_decompress(out.data(), plain, stored.data(), stored.size());
    if (ZSTD_isError(n) || n != plain) {
      return Status::Corruption(
          "block " + std::to_string(i) + " does not decompress", name);
    }
  }
  return CheckBlockHash(layout, i, out.data(), name);
}

Status CheckBlockHash(const ChunkLayout& layout, size_t i, const uint8_t* plain,
                      const std::string& name) {
  if (XXH3_64bits(plain, layout.PlainBlockSize(i)) !=
      layout.blocks[i].plain_hash) {
    return Status::Corruption("block " + std::to_string(i) + " hash mismatch",
                              name);
  }
  return Status::OK();
}

// The options of a store never change, so a thread that serves two stores
// with different options re-creates the encoder.
ChunkEncoder& ThreadChunkEncoder(const CompressionOptions& options) {
  thread_local std::unique_ptr<ChunkEncoder> encoder;
  thread_local CompressionOptions current;
  if (!encoder || current.enabled != options.enabled ||
      current.level != options.level) {
    encoder = std::make_unique<ChunkEncoder>(options);
    current = options;
  }
  return *encoder;
}

Status DecodeChunk(std::span<const uint8_t> file, const Digest& expected,
                   std::vector<uint8_t>* out, const std::string& name) {
  auto layout = ParseChunkLayout(file, name);
  if (!layout.ok()) return layout.status();
  if (layout->header.digest != expected) {
    return Status::Corruption("chunk file holds digest " +
                                  layout->header.digest.Hex() + ", expected " +
                                  expected.Hex(),
                              name);
  }
  Status s = CheckChunkFileSize(*layout, file.size(), name);
  if (!s.ok()) return s;
  out->resize(layout->header.plain_size);
  s = DecodeRange(*layout, 0, file, 0, *out, name);
  if (!s.ok()) return s;
  if (Digest::Of(*out) != expected) {
    return Status::Corruption(
        "chunk digest mismatch: content hashes to " + Digest::Of(*out).Hex(),
        name);
  }
  return Status::OK();
}

std::pair<uint64_t, uint64_t> StoredRange(const ChunkLayout& layout,
                                          uint64_t offset, uint64_t length) {
  const uint32_t bs = layout.header.block_size;
  const size_t first = offset / bs;
  const size_t last = (offset + length - 1) / bs;
  return {layout.block_offsets[first],
          layout.block_offsets[last] + layout.blocks[last].stored_size};
}

Status DecodeRange(const ChunkLayout& layout, uint64_t stored_begin,
                   std::span<const uint8_t> stored, uint64_t offset,
                   std::span<uint8_t> out, const std::string& name) {
  const uint64_t plain_size = layout.header.plain_size;
  if (offset > plain_size || out.size() > plain_size - offset) {
    return Status::InvalidArgument("read beyond the end of chunk", name);
  }
  const uint32_t bs = layout.header.block_size;
  std::vector<uint8_t> block;
  for (uint64_t pos = offset; pos < offset + out.size();) {
    const size_t i = pos / bs;
    const uint64_t block_start = static_cast<uint64_t>(i) * bs;
    const uint32_t block_len = layout.PlainBlockSize(i);
    const uint64_t to =
        std::min<uint64_t>(offset + out.size(), block_start + block_len);
    const uint64_t rel = layout.block_offsets[i] - stored_begin;
    if (layout.block_offsets[i] < stored_begin ||
        rel + layout.blocks[i].stored_size > stored.size()) {
      return Status::InvalidArgument("stored range does not cover the read",
                                     name);
    }
    auto src = stored.subspan(rel, layout.blocks[i].stored_size);
    uint8_t* dst = out.data() + (pos - offset);
    if (pos == block_start && to == block_start + block_len) {
      // Whole block wanted: decode straight into the caller's buffer.
      Status s = DecodeBlock(layout, i, src, {dst, block_len}, name);
      if (!s.ok()) return s;
    } else {
      block.resize(bs);
      Status s = DecodeBlock(layout, i, src, block, name);
      if (!s.ok()) return s;
      std::memcpy(dst, block.data() + (pos - block_start), to - pos);
    }
    pos = to;
  }
  return Status::OK();
}

}  // namespace backy::store
