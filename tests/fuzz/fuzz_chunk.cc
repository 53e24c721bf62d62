// Fuzzes the chunk file decoders (src/store/chunk_format.cc) on the bytes of
// a chunk file: ParseChunkHeader, ParseChunkLayout, DecodeChunk, and the
// ranged reads (StoredRange + DecodeRange, with DecodeBlock) a chunk reader
// performs. Each input is tried as it is and, so that the fuzzer gets past
// the header checksum to the block table and blocks, once more with the
// checksum recomputed.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_chunk_input.h"
#include "store/chunk_format.h"
#include "store/coding.h"

namespace {

namespace st = backy::store;

// A ranged read of plain bytes [offset, offset + length) as a reader does
// it: the stored range first, then decode from those stored bytes only.
void ReadRange(const st::ChunkLayout& layout, const std::vector<uint8_t>& file,
               uint64_t offset, uint64_t length) {
  if (length == 0) return;
  auto [begin, end] = st::StoredRange(layout, offset, length);
  FUZZ_CHECK(begin <= end, "stored range is reversed");
  FUZZ_CHECK(end <= layout.file_size, "stored range beyond the layout");
  if (end > file.size()) return;  // a reader gets a short read here
  std::vector<uint8_t> out(length);
  std::span<const uint8_t> stored(file.data() + begin, end - begin);
  (void)st::DecodeRange(layout, begin, stored, offset, out, "fuzz.chunk");
}

void Check(const std::vector<uint8_t>& file) {
  auto header = st::ParseChunkHeader(file, "fuzz.chunk");
  if (!header.ok()) return;
  auto layout = st::ParseChunkLayout(file, "fuzz.chunk");
  if (!layout.ok()) return;
  const st::ChunkLayout& l = *layout;
  FUZZ_CHECK(l.blocks.size() == l.header.block_count &&
                 l.block_offsets.size() == l.header.block_count,
             "block table size differs from the header");
  uint64_t plain = 0;
  for (size_t i = 0; i < l.blocks.size(); ++i) {
    FUZZ_CHECK(l.block_offsets[i] + l.blocks[i].stored_size <= l.file_size,
               "block beyond the expected file size");
    FUZZ_CHECK(
        l.PlainBlockSize(i) > 0 && l.PlainBlockSize(i) <= l.header.block_size,
        "block plain size out of range");
    plain += l.PlainBlockSize(i);
  }
  FUZZ_CHECK(plain == l.header.plain_size, "blocks do not add up");

  std::vector<uint8_t> out;
  (void)st::DecodeChunk(file, l.header.digest, &out, "fuzz.chunk");
  const uint64_t size = l.header.plain_size;
  if (size == 0) return;
  ReadRange(l, file, 0, size);
  ReadRange(l, file, size - 1, 1);
  ReadRange(l, file, size / 3, std::min<uint64_t>(size - size / 3, 4096));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckChunkInput(data, size, Check);
  return 0;
}
