// Fuzzes RevisionIndex::Decode (src/store/index.cc) on the bytes of an index
// file. Each input is decoded as it is and, so that the fuzzer gets past
// the checksum, once more with the header checksum recomputed. A decoded
// index must cover exactly its image (slot i covers [i * chunk_size, ...))
// and encode back to the same bytes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "store/coding.h"
#include "store/index.h"

namespace {

using backy::store::RevisionIndex;

void Check(const std::vector<uint8_t>& bytes) {
  auto index = RevisionIndex::Decode(bytes, "fuzz.index");
  if (!index.ok()) return;
  const unsigned __int128 cover =
      static_cast<unsigned __int128>(index->slot_count()) * index->chunk_size();
  FUZZ_CHECK(cover >= index->image_size(),
             "the slots do not cover the image size");
  FUZZ_CHECK(cover - index->image_size() < index->chunk_size() ||
                 index->slot_count() == 0,
             "more slots than the image size needs");
  for (size_t i = 0; i < index->slot_count() && i < 64; ++i) {
    FUZZ_CHECK(
        index->SlotLength(i) > 0 && index->SlotLength(i) <= index->chunk_size(),
        "slot length out of range");
  }
  // Bytes 32..55 are "reserved, zero" (man/backy-store.5), but readers
  // ignore them: compare with them zeroed.
  std::vector<uint8_t> expected = bytes;
  std::memset(expected.data() + 32, 0, 24);
  backy::store::EncodeFixed64(
      expected.data() + backy::store::kHeaderChecksumOffset,
      backy::store::HeaderChecksum(expected.data(), expected.size()));
  FUZZ_CHECK(index->Encode() == expected, "decode/encode round trip differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  Check(bytes);
  if (size >= backy::store::kIndexHeaderSize) {
    backy::store::EncodeFixed64(
        bytes.data() + backy::store::kHeaderChecksumOffset,
        backy::store::HeaderChecksum(bytes.data(), bytes.size()));
    Check(bytes);
  }
  return 0;
}
