// Fuzzes the NBD transmission phase's request parsing (src/nbd/wire.cc):
// the first 12 input bytes choose what the handshake agreed on (export
// size, transmission flags, structured replies, base:allocation, shutting
// down); the rest is a client's stream of request headers, each WRITE
// followed by its payload. A request ValidateRequest() accepts must be
// one the server can execute without further checks.
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "nbd/wire.h"

namespace nbd = backy::nbd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (in.size() < 12) return 0;
  nbd::RequestContext c;
  c.size = nbd::GetU64(in.data());
  c.transmission_flags = nbd::GetU16(in.data() + 8);
  c.structured = (in[10] & 1) != 0;
  c.base_allocation = (in[10] & 2) != 0;
  c.stopping = (in[10] & 4) != 0;
  in = in.subspan(12);
  while (in.size() >= sizeof(nbd::RequestHeader)) {
    nbd::RequestFields r;
    if (!nbd::DecodeRequestHeader(in.data(), &r)) return 0;
    in = in.subspan(sizeof(nbd::RequestHeader));
    const char* why = "";
    const uint32_t error = nbd::ValidateRequest(r, c, &why);
    if (error != 0) {
      FUZZ_CHECK(why != nullptr && why[0] != '\0', "error without a reason");
    } else if (r.type == nbd::kCmdDisc) {
      return 0;
    } else if (r.type == nbd::kCmdFlush) {
      FUZZ_CHECK(r.offset == 0 && r.length == 0, "flush with a range");
    } else {
      FUZZ_CHECK(r.length > 0, "zero-length request accepted");
      FUZZ_CHECK(static_cast<unsigned __int128>(r.offset) + r.length <= c.size,
                 "request beyond the export accepted");
      const bool payload =
          r.type == nbd::kCmdRead || r.type == nbd::kCmdWrite ||
          r.type == nbd::kCmdWriteZeroes || r.type == nbd::kCmdCache;
      FUZZ_CHECK(!payload || r.length <= nbd::kMaxBlockSize,
                 "request longer than the maximum block size accepted");
      const bool writes = r.type == nbd::kCmdWrite ||
                          r.type == nbd::kCmdWriteZeroes ||
                          r.type == nbd::kCmdTrim;
      FUZZ_CHECK(!writes || (c.transmission_flags & nbd::kTransReadOnly) == 0,
                 "write to a read-only export accepted");
      FUZZ_CHECK(r.type != nbd::kCmdBlockStatus || c.base_allocation,
                 "block status without a context accepted");
      FUZZ_CHECK(!c.stopping, "request accepted while shutting down");
    }
    if (r.type == nbd::kCmdWrite) {
      // The payload follows whether or not the request was accepted.
      if (in.size() < r.length) return 0;
      in = in.subspan(r.length);
    }
  }
  return 0;
}
