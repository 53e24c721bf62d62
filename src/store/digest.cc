#include "store/digest.h"

#include <xxhash.h>

#include <cstring>

namespace backy {

Digest Digest::Of(std::span<const uint8_t> data) {
  XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  std::array<uint8_t, kSize> b;
  std::memcpy(b.data(), c.digest, kSize);
  return Digest(b);
}

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return Status::InvalidArgument("digest must have 32 hex digits",
                                   std::string(hex));
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<uint8_t, kSize> b;
  for (size_t i = 0; i < kSize; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("digest is not hex", std::string(hex));
    }
    b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return Digest(b);
}

std::string Digest::Hex() const {
  static const char kHex[] = "0123456789abcdef";
  std::string s(2 * kSize, '0');
  for (size_t i = 0; i < kSize; ++i) {
    s[2 * i] = kHex[bytes_[i] >> 4];
    s[2 * i + 1] = kHex[bytes_[i] & 15];
  }
  return s;
}

bool Digest::IsZero() const {
  for (uint8_t b : bytes_) {
    if (b) return false;
  }
  return true;
}

bool IsAllZero(std::span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  // Byte-wise until 8-aligned, then OR 64 bytes at a time.
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    if (*p) return false;
    ++p;
    --n;
  }
  while (n >= 64) {
    uint64_t w[8];
    std::memcpy(w, p, 64);
    if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) return false;
    p += 64;
    n -= 64;
  }
  while (n) {
    if (*p) return false;
    ++p;
    --n;
  }
  return true;
}

}  // namespace backy
