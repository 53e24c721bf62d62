// Little-endian fixed-width integer encoding for the binary file formats
// (index, chunk), independent of the host's byte order (leveldb's
// util/coding.h), and their shared header checksum. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace backy::store {

inline void EncodeFixed32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void EncodeFixed64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t DecodeFixed32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
inline uint64_t DecodeFixed64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// Both binary formats have a 64-byte header whose last 8 bytes (offset 56)
// hold an XXH3-64 of the header's first 56 bytes followed by everything
// after the header (block table or slots). Returns that checksum for the
// `size` bytes at `data`. REQUIRES: size >= 64.
inline constexpr size_t kHeaderChecksumOffset = 56;
inline constexpr size_t kFormatHeaderSize = 64;
uint64_t HeaderChecksum(const uint8_t* data, size_t size);

}  // namespace backy::store
