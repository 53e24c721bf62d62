// Fuzzes DecodeLegacyChunk (src/store/legacy_chunk.cc) on the bytes of a
// backy 2.x chunk file. Damaged input must come back as Corruption with
// nothing handed out; a decode that succeeds must hand out bytes that hash
// to the expected name. Each input is also used as plain data: encoding it
// and decoding the result must give it back.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "store/chunk_format.h"
#include "store/legacy_chunk.h"

namespace st = backy::store;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  // The seeds are chunks of "hello, 2.x" lines; their hash is not known
  // here, so a decode that gets past LZO ends at the hash check.
  const std::string expected(32, '0');
  std::vector<uint8_t> plain;
  backy::Status s =
      st::DecodeLegacyChunk(in, expected, "fuzz.chunk.lzo", &plain);
  if (s.ok()) {
    FUZZ_CHECK(st::LegacyChunkHash(plain) == expected,
               "decoded data does not match its hash");
  } else {
    FUZZ_CHECK(s.IsCorruption(), "a bad chunk is not Corruption");
    FUZZ_CHECK(plain.empty(), "a failed decode handed out data");
  }
  if (size <= st::kMaxChunkSize) {
    std::vector<uint8_t> file, back;
    FUZZ_CHECK(st::EncodeLegacyChunk(in, &file).ok(), "encode failed");
    FUZZ_CHECK(
        st::DecodeLegacyChunk(file, st::LegacyChunkHash(in), "rt", &back).ok(),
        "an encoded chunk does not decode");
    FUZZ_CHECK(
        back.size() == size && std::equal(back.begin(), back.end(), in.begin()),
        "round trip changed the data");
  }
  return 0;
}
