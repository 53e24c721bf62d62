// Decoding what an NBD client sends: big-endian fields, option headers and
// payloads (handshake.cc), request headers and their checks
// (transmission.cc). Pure functions on bytes in memory, with no I/O and no
// Boost, so that tests/fuzz can feed them untrusted bytes directly. Thread-
// safe. Not for use outside src/nbd and its tests; internal.h includes it.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/protocol.h"

namespace backy::nbd {

// Options longer than this are a denial of service: drop the connection.
inline constexpr uint32_t kMaxOptionLength = 64 * 1024;
// The largest READ/WRITE/WRITE_ZEROES/CACHE length the server accepts
// (advertised in NBD_INFO_BLOCK_SIZE).
inline constexpr uint32_t kMaxBlockSize = 32 * 1024 * 1024;

// ---- Big-endian encoding --------------------------------------------------

inline uint8_t* PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
  return p + 2;
}
inline uint8_t* PutU32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
  return p + 4;
}
inline uint8_t* PutU64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
  return p + 8;
}
inline uint16_t GetU16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

// ---- Handshake ------------------------------------------------------------

// Whether the client flags (sent after the greeting) hold only flags this
// server knows; the connection is dropped otherwise.
bool KnownClientFlags(uint32_t client_flags);

// The fields of an option header (sizeof(OptionHeader) bytes on the wire).
struct OptionHeaderFields {
  uint64_t magic = 0;
  uint32_t option = 0;
  uint32_t length = 0;  // bytes of option data that follow
};

// Decodes the sizeof(OptionHeader) bytes at `hdr`. Returns nullptr if the
// option may be read, else why the connection must be dropped (bad magic,
// data longer than kMaxOptionLength).
const char* DecodeOptionHeader(const uint8_t* hdr, OptionHeaderFields* out);

// The data of NBD_OPT_INFO and NBD_OPT_GO.
struct InfoRequest {
  std::string name;             // the export name (any bytes)
  std::vector<uint16_t> infos;  // NBD_INFO_* the client asked for
};

// Parses NBD_OPT_INFO/GO data into `*out`. Returns nullptr on success, else
// the message to send with NBD_REP_ERR_INVALID (malformed data, a name
// longer than kMaxStringLength).
const char* ParseInfoRequest(std::span<const uint8_t> data, InfoRequest* out);

// The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT.
struct MetaContextRequest {
  std::string name;  // the export name
  std::vector<std::string> queries;
};

// Parses meta context option data into `*out`. Returns nullptr on success,
// else the message to send with NBD_REP_ERR_INVALID.
const char* ParseMetaContextRequest(std::span<const uint8_t> data,
                                    MetaContextRequest* out);

// Whether `queries` name base:allocation, the one context served: for a
// LIST (`set` false) an empty list and the "base:" namespace match too.
bool MatchesBaseAllocation(const std::vector<std::string>& queries, bool set);

// A client-supplied string (export name, PSK username) fit for a log line:
// printable ASCII kept, other bytes, quotes and backslashes as \xNN, cut at
// 64 bytes (then "...").
std::string Printable(std::string_view s);

// ---- Transmission ---------------------------------------------------------

// The fields of a request header (sizeof(RequestHeader) bytes on the wire).
struct RequestFields {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Decodes the sizeof(RequestHeader) bytes at `hdr`; false (the connection
// must be dropped) if the magic is wrong.
bool DecodeRequestHeader(const uint8_t* hdr, RequestFields* out);

// What the handshake agreed on and the server's state, as far as checking a
// request needs them.
struct RequestContext {
  uint64_t size = 0;                // export size
  uint16_t transmission_flags = 0;  // as sent to the client
  bool structured = false;          // structured replies negotiated
  bool base_allocation = false;     // base:allocation selected
  bool stopping = false;            // the server is shutting down
};

// Checks a request once: returns 0 if it may be executed, else the NBD
// error to answer with and, in *why, a message. A request that passes
// names a range within the export (offset + length <= size, length > 0)
// unless it is FLUSH or DISC, and READ, WRITE, WRITE_ZEROES and CACHE
// ask for at most kMaxBlockSize bytes. DISC always passes.
uint32_t ValidateRequest(const RequestFields& r, const RequestContext& c,
                         const char** why);

}  // namespace backy::nbd
