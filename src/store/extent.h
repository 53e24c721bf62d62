// Extent: a byte range of an image and what it holds.
//
// Sources describe images as lists of extents: Data ranges must be read,
// Zero ranges are known to read as zeros (holes, discarded RBD objects).
// Plain value type; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <vector>

namespace backy {

struct Extent {
  enum class Kind : uint8_t { kData, kZero };
  uint64_t offset = 0;
  uint64_t length = 0;
  Kind kind = Kind::kData;

  uint64_t end() const { return offset + length; }
  bool operator==(const Extent&) const = default;
};

using ExtentList = std::vector<Extent>;

}  // namespace backy
