#include "store/legacy_chunk.h"

#include <lzo/lzo1x.h>
#include <murmurhash.h>

#include "store/chunk_format.h"

namespace backy::store {
namespace {

// lzo_init() checks the library's build against its headers; once.
bool LzoReady() {
  static const bool ok = lzo_init() == LZO_E_OK;
  return ok;
}

}  // namespace

std::string LegacyChunkHash(std::span<const uint8_t> plain) {
  uint64_t h[2];
  lmmh_x64_128(plain.data(), static_cast<unsigned int>(plain.size()), 0, h);
  // h1 then h2, each little-endian: the bytes as they lie in memory on the
  // little-endian machines 2.x ran on; written out portably here.
  std::string hex(32, '0');
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    const uint8_t b = static_cast<uint8_t>(h[i / 8] >> (8 * (i % 8)));
    hex[2 * i] = kHex[b >> 4];
    hex[2 * i + 1] = kHex[b & 15];
  }
  return hex;
}

Result<uint32_t> LegacyChunkPlainLength(std::span<const uint8_t> file,
                                        const std::string& object) {
  if (file.size() < kLegacyChunkHeaderSize || file[0] != kLegacyChunkMagic) {
    return Status::Corruption("2.x chunk: not an LZO chunk (bad header)",
                              object);
  }
  const uint32_t length = (uint32_t{file[1]} << 24) |
                          (uint32_t{file[2]} << 16) | (uint32_t{file[3]} << 8) |
                          uint32_t{file[4]};
  if (length > kMaxChunkSize) {
    return Status::Corruption(
        "2.x chunk: plain length " + std::to_string(length) + " exceeds 4 MiB",
        object);
  }
  return length;
}

Status DecodeLegacyChunk(std::span<const uint8_t> file,
                         std::string_view expected_hash,
                         const std::string& object,
                         std::vector<uint8_t>* plain) {
  plain->clear();
  auto length = LegacyChunkPlainLength(file, object);
  if (!length.ok()) return length.status();
  plain->resize(*length);
  Status s = DecodeLegacyChunkInto(file, expected_hash, object, *plain);
  if (!s.ok()) plain->clear();
  return s;
}

Status DecodeLegacyChunkInto(std::span<const uint8_t> file,
                             std::string_view expected_hash,
                             const std::string& object,
                             std::span<uint8_t> plain) {
  if (!LzoReady()) return Status::IOError("liblzo2 failed to initialise");
  auto length = LegacyChunkPlainLength(file, object);
  if (!length.ok()) return length.status();
  if (*length != plain.size()) {
    return Status::Corruption("2.x chunk: plain length " +
                                  std::to_string(*length) + " is not the " +
                                  std::to_string(plain.size()) + " expected",
                              object);
  }
  lzo_uint out_len = *length;
  const auto in = file.subspan(kLegacyChunkHeaderSize);
  const int r = lzo1x_decompress_safe(in.data(), in.size(), plain.data(),
                                      &out_len, nullptr);
  if (r != LZO_E_OK || out_len != *length) {
    const std::string why =
        r == LZO_E_INPUT_NOT_CONSUMED ? "trailing bytes after the LZO stream"
        : r == LZO_E_INPUT_OVERRUN    ? "the LZO stream is truncated"
        : r == LZO_E_OUTPUT_OVERRUN
            ? "the LZO stream is longer than its header says"
        : r != LZO_E_OK
            ? "damaged LZO stream (lzo error " + std::to_string(r) + ")"
            : "decoded " + std::to_string(out_len) +
                  " bytes, the header says " + std::to_string(*length);
    return Status::Corruption("2.x chunk: " + why, object);
  }
  const std::string got = LegacyChunkHash(plain);
  if (got != expected_hash) {
    return Status::Corruption("2.x chunk: content hash is " + got +
                                  ", expected " + std::string(expected_hash),
                              object);
  }
  return Status::OK();
}

Status EncodeLegacyChunk(std::span<const uint8_t> plain,
                         std::vector<uint8_t>* file) {
  if (!LzoReady()) return Status::IOError("liblzo2 failed to initialise");
  if (plain.size() > kMaxChunkSize) {
    return Status::InvalidArgument("2.x chunk larger than 4 MiB");
  }
  // LZO1X's worst case: n + n/16 + 64 + 3 bytes.
  file->resize(kLegacyChunkHeaderSize + plain.size() + plain.size() / 16 + 67);
  const uint32_t n = static_cast<uint32_t>(plain.size());
  (*file)[0] = kLegacyChunkMagic;
  (*file)[1] = static_cast<uint8_t>(n >> 24);
  (*file)[2] = static_cast<uint8_t>(n >> 16);
  (*file)[3] = static_cast<uint8_t>(n >> 8);
  (*file)[4] = static_cast<uint8_t>(n);
  std::vector<uint8_t> work(LZO1X_1_MEM_COMPRESS);
  lzo_uint out_len = file->size() - kLegacyChunkHeaderSize;
  if (lzo1x_1_compress(plain.data(), plain.size(),
                       file->data() + kLegacyChunkHeaderSize, &out_len,
                       work.data()) != LZO_E_OK) {
    return Status::IOError("LZO1X compression failed");
  }
  file->resize(kLegacyChunkHeaderSize + out_len);
  return Status::OK();
}

}  // namespace backy::store
