// Fuzzes the chunk reader of a file repository (src/store/
// file_chunk_store.cc over src/store/chunk_format.cc) the way restore,
// verify and the NBD server use it: the input is written as the chunk file
// of the digest its header names (under $TMPDIR, one store per process),
// then read whole (Get), opened (Open), and read through the reader in
// full and in parts, with and without waiting, and as raw ranges. As in
// the chunk target, each input is tried as it is and with its header
// checksum recomputed. Nothing may crash or allocate more than the file
// can justify.
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_chunk_input.h"
#include "store/chunk_format.h"
#include "store/coding.h"
#include "store/file_chunk_store.h"

namespace {

namespace st = backy::store;
namespace fs = std::filesystem;

st::FileChunkStore& Store() {
  static st::FileChunkStore* store = [] {
    const char* tmp = std::getenv("TMPDIR");
    const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") /
                         ("backy-fuzz-chunk-file." + std::to_string(getpid()));
    fs::create_directories(dir / "chunks");
    fs::create_directories(dir / "tmp");
    return new st::FileChunkStore(
        (dir / "chunks").string(), (dir / "tmp").string(),
        (dir / "quarantine").string(), st::CompressionOptions{});
  }();
  return *store;
}

void Check(const std::vector<uint8_t>& file) {
  std::array<uint8_t, backy::Digest::kSize> d{};
  if (file.size() >= 40)
    std::copy(file.begin() + 24, file.begin() + 40, d.begin());
  const backy::Digest digest(d);
  st::FileChunkStore& store = Store();
  const std::string path = store.ChunkName(digest);
  fs::create_directories(fs::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(file.data()), file.size());
  }
  std::vector<uint8_t> plain;
  (void)store.Get(digest, &plain);
  auto reader = store.Open(digest);
  if (reader.ok()) {
    st::ChunkReader& r = **reader;
    const uint64_t size = r.PlainSize();
    FUZZ_CHECK(size <= st::kMaxChunkSize, "plain size beyond 4 MiB");
    if (size > 0) {
      std::vector<uint8_t> out(size);
      (void)r.Read(0, out);
      (void)r.ReadNoWait(0, out);
      std::vector<uint8_t> part(std::min<uint64_t>(size, 4096));
      (void)r.Read(size - part.size(), part);
      (void)r.Read(size / 2, std::span<uint8_t>(part).first(std::min<uint64_t>(
                                 part.size(), size - size / 2)));
      (void)r.CheckRawRange(0, size, /*nowait=*/false);
      (void)r.CheckRawRange(size - 1, 1, /*nowait=*/true);
    }
  }
  ::unlink(path.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckChunkInput(data, size, Check);
  return 0;
}
