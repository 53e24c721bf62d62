#include "store/coding.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

namespace backy::store {

uint64_t HeaderChecksum(const uint8_t* data, size_t size) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, data, kHeaderChecksumOffset);
  XXH3_64bits_update(&st, data + kFormatHeaderSize, size - kFormatHeaderSize);
  return XXH3_64bits_digest(&st);
}

}  // namespace backy::store
