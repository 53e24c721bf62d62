// RevisionIndex: which chunk holds each 4 MiB slot of a revision's image.
//
// Slot i covers image bytes [i * chunk_size, min((i+1) * chunk_size, size)).
// A slot holds the chunk's Digest, or the all-zero Digest for a slot that
// reads as zeros and has no chunk. The binary file format (header with
// magic, version, chunk size, image size, slot count and an XXH3-64
// checksum, then 16 bytes per slot) is specified in man/backy-store.5.
// Plain value type; not thread-safe for concurrent mutation.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "store/digest.h"
#include "store/status.h"

namespace backy::store {

inline constexpr char kIndexMagic[8] = {'B', 'A', 'C', 'K', 'Y', 'I', 'D', 'X'};
inline constexpr uint32_t kIndexFormatVersion = 1;
inline constexpr size_t kIndexHeaderSize = 64;
inline constexpr uint32_t kDefaultChunkSize = 4 * 1024 * 1024;
inline constexpr uint32_t kMaxIndexChunkSize = 64 * 1024 * 1024;
// At most 2^30 slots (a 16 GiB index; 4 PiB of image at 4 MiB chunks): a
// header claiming more is damaged, and is refused before any allocation.
inline constexpr uint64_t kMaxIndexSlots = uint64_t{1} << 30;

// The slots an image of `image_size` bytes needs: ceil(size / chunk_size),
// without overflow for any size. REQUIRES: chunk_size > 0.
inline uint64_t SlotsFor(uint64_t image_size, uint32_t chunk_size) {
  return image_size / chunk_size + (image_size % chunk_size != 0);
}

class RevisionIndex {
 public:
  RevisionIndex() = default;
  RevisionIndex(uint64_t image_size, uint32_t chunk_size);

  uint64_t image_size() const { return image_size_; }
  uint32_t chunk_size() const { return chunk_size_; }
  size_t slot_count() const { return slots_.size(); }

  const Digest& slot(size_t i) const { return slots_[i]; }
  void set_slot(size_t i, const Digest& d) { slots_[i] = d; }
  bool IsZero(size_t i) const { return slots_[i].IsZero(); }

  // Byte length of slot i (the last slot may be short).
  uint32_t SlotLength(size_t i) const;

  // Changes the image size, keeping the slots that still exist. A slot
  // that becomes the new, shorter last slot keeps its digest: the caller
  // must re-read it (its content length changed).
  void Resize(uint64_t image_size);

  std::vector<uint8_t> Encode() const;
  // Parses an index file's bytes; any inconsistency is Corruption naming
  // `name`.
  static Result<RevisionIndex> Decode(std::span<const uint8_t> bytes,
                                      const std::string& name);
  // Checks the first kIndexHeaderSize bytes of an index file (magic,
  // version, chunk size, an image size that is possible and matches the
  // slot count) and returns the size the whole file must have, so a
  // reader can compare it with the file before reading the slots. Same
  // errors as Decode(); the checksum is not checked here.
  static Result<uint64_t> FileSizeFromHeader(std::span<const uint8_t> header,
                                             const std::string& name);

 private:
  uint64_t image_size_ = 0;
  uint32_t chunk_size_ = kDefaultChunkSize;
  std::vector<Digest> slots_;
};

}  // namespace backy::store
