// The input loop of the chunk targets (fuzz_chunk, fuzz_chunk_file): each
// input is checked as it is, and again with its header checksum
// recomputed, since random bytes almost never carry a valid one and the
// parsers behind the checksum would go unfuzzed.
#pragma once

#include <cstdint>
#include <vector>

#include "store/chunk_format.h"
#include "store/coding.h"

template <typename CheckFn>
void CheckChunkInput(const uint8_t* data, size_t size, CheckFn check) {
  namespace st = backy::store;
  std::vector<uint8_t> file(data, data + size);
  check(file);
  auto header = st::ParseChunkHeader(file, "fuzz.chunk");
  if (header.ok() && file.size() >= st::ChunkPrefixSize(header->block_count)) {
    st::EncodeFixed64(
        file.data() + st::kHeaderChecksumOffset,
        st::HeaderChecksum(file.data(),
                           st::ChunkPrefixSize(header->block_count)));
    check(file);
  }
}
