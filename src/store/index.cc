#include "store/index.h"

#include <cstring>

#include "store/coding.h"

namespace backy::store {

namespace {

// Header field offsets (see man/backy-store.5).
constexpr size_t kOffVersion = 8;
constexpr size_t kOffChunkSize = 12;
constexpr size_t kOffImageSize = 16;
constexpr size_t kOffSlotCount = 24;
constexpr size_t kOffChecksum = kHeaderChecksumOffset;
static_assert(kIndexHeaderSize == kFormatHeaderSize);

}  // namespace

RevisionIndex::RevisionIndex(uint64_t image_size, uint32_t chunk_size)
    : image_size_(image_size),
      chunk_size_(chunk_size),
      slots_(SlotsFor(image_size, chunk_size)) {}

uint32_t RevisionIndex::SlotLength(size_t i) const {
  uint64_t start = static_cast<uint64_t>(i) * chunk_size_;
  return static_cast<uint32_t>(
      std::min<uint64_t>(chunk_size_, image_size_ - start));
}

void RevisionIndex::Resize(uint64_t image_size) {
  image_size_ = image_size;
  slots_.resize(SlotsFor(image_size, chunk_size_));
}

std::vector<uint8_t> RevisionIndex::Encode() const {
  std::vector<uint8_t> out(kIndexHeaderSize + Digest::kSize * slots_.size());
  uint8_t* p = out.data();
  std::memcpy(p, kIndexMagic, 8);
  EncodeFixed32(p + kOffVersion, kIndexFormatVersion);
  EncodeFixed32(p + kOffChunkSize, chunk_size_);
  EncodeFixed64(p + kOffImageSize, image_size_);
  EncodeFixed64(p + kOffSlotCount, slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    std::memcpy(p + kIndexHeaderSize + Digest::kSize * i,
                slots_[i].bytes().data(), Digest::kSize);
  }
  EncodeFixed64(p + kOffChecksum, HeaderChecksum(p, out.size()));
  return out;
}

Result<uint64_t> RevisionIndex::FileSizeFromHeader(
    std::span<const uint8_t> header, const std::string& name) {
  if (header.size() < kIndexHeaderSize) {
    return Status::Corruption("index file too short for its header", name);
  }
  const uint8_t* p = header.data();
  if (std::memcmp(p, kIndexMagic, 8) != 0) {
    return Status::Corruption("not an index file (bad magic)", name);
  }
  uint32_t version = DecodeFixed32(p + kOffVersion);
  if (version != kIndexFormatVersion) {
    return Status::NotSupported(
        "unsupported index format version " + std::to_string(version), name);
  }
  uint32_t chunk_size = DecodeFixed32(p + kOffChunkSize);
  uint64_t image_size = DecodeFixed64(p + kOffImageSize);
  uint64_t slots = DecodeFixed64(p + kOffSlotCount);
  if (chunk_size == 0 || chunk_size > kMaxIndexChunkSize) {
    return Status::Corruption(
        "index chunk size " + std::to_string(chunk_size) + " is impossible",
        name);
  }
  if (SlotsFor(image_size, chunk_size) > kMaxIndexSlots) {
    return Status::Corruption(
        "index image size " + std::to_string(image_size) + " is impossible",
        name);
  }
  if (slots != SlotsFor(image_size, chunk_size)) {
    return Status::Corruption("index header has inconsistent sizes", name);
  }
  return kIndexHeaderSize + Digest::kSize * slots;
}

Result<RevisionIndex> RevisionIndex::Decode(std::span<const uint8_t> bytes,
                                            const std::string& name) {
  auto file_size = FileSizeFromHeader(bytes, name);
  if (!file_size.ok()) return file_size.status();
  if (bytes.size() != *file_size) {
    return Status::Corruption("index header has inconsistent sizes", name);
  }
  const uint8_t* p = bytes.data();
  const uint32_t chunk_size = DecodeFixed32(p + kOffChunkSize);
  const uint64_t image_size = DecodeFixed64(p + kOffImageSize);
  const uint64_t slots = DecodeFixed64(p + kOffSlotCount);
  if (DecodeFixed64(p + kOffChecksum) != HeaderChecksum(p, bytes.size())) {
    return Status::Corruption("index checksum mismatch", name);
  }
  RevisionIndex index(image_size, chunk_size);
  for (uint64_t i = 0; i < slots; ++i) {
    std::array<uint8_t, Digest::kSize> d;
    std::memcpy(d.data(), p + kIndexHeaderSize + Digest::kSize * i,
                Digest::kSize);
    index.slots_[i] = Digest(d);
  }
  return index;
}

}  // namespace backy::store
