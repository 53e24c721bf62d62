// Digest: the XXH3-128 of a chunk's plain content, the chunk's name.
//
// A Digest is 16 bytes, stored big-endian (high 64 bits first) so its hex
// form matches `xxhsum -H2`. The all-zero Digest is reserved: in an index it
// marks a chunk that reads as zeros and has no chunk file. Plain value type.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "store/status.h"

namespace backy {

class Digest {
 public:
  static constexpr size_t kSize = 16;

  Digest() { bytes_.fill(0); }
  explicit Digest(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // XXH3-128 of `data`.
  static Digest Of(std::span<const uint8_t> data);
  // Parses 32 lower- or upper-case hex digits.
  static Result<Digest> FromHex(std::string_view hex);

  // 32 lower-case hex digits.
  std::string Hex() const;
  bool IsZero() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;

 private:
  std::array<uint8_t, kSize> bytes_;
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    static_assert(sizeof(h) <= Digest::kSize);
    __builtin_memcpy(&h, d.bytes().data() + Digest::kSize - sizeof(h),
                     sizeof(h));
    return h;
  }
};

// True when every byte of `data` is zero. Fast: compares words.
bool IsAllZero(std::span<const uint8_t> data);

}  // namespace backy
