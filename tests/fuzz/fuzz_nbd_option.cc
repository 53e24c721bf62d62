// Fuzzes the NBD handshake's parsing of what a client sends (src/nbd/
// wire.cc): the input is a client's byte stream after the greeting — its
// 32-bit flags, then options (header and data) until the bytes run out.
// Each option goes through the parser the server uses for it; what parses
// must encode back to the same option data.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "nbd/wire.h"

namespace {

namespace nbd = backy::nbd;

void AddU16(std::vector<uint8_t>* v, uint16_t x) {
  uint8_t b[2];
  nbd::PutU16(b, x);
  v->insert(v->end(), b, b + 2);
}
void AddU32(std::vector<uint8_t>* v, uint32_t x) {
  uint8_t b[4];
  nbd::PutU32(b, x);
  v->insert(v->end(), b, b + 4);
}
void AddString(std::vector<uint8_t>* v, const std::string& s) {
  AddU32(v, static_cast<uint32_t>(s.size()));
  v->insert(v->end(), s.begin(), s.end());
}

void CheckOption(uint32_t option, std::span<const uint8_t> data) {
  const std::vector<uint8_t> bytes(data.begin(), data.end());
  switch (option) {
    case nbd::kOptInfo:
    case nbd::kOptGo: {
      nbd::InfoRequest r;
      if (nbd::ParseInfoRequest(data, &r) != nullptr) return;
      FUZZ_CHECK(r.name.size() <= nbd::kMaxStringLength, "name too long");
      FUZZ_CHECK(r.infos.size() <= 0xffff, "too many infos");
      std::vector<uint8_t> v;
      AddString(&v, r.name);
      AddU16(&v, static_cast<uint16_t>(r.infos.size()));
      for (uint16_t i : r.infos) AddU16(&v, i);
      FUZZ_CHECK(v == bytes, "NBD_OPT_INFO/GO round trip differs");
      break;
    }
    case nbd::kOptListMetaContext:
    case nbd::kOptSetMetaContext: {
      nbd::MetaContextRequest r;
      if (nbd::ParseMetaContextRequest(data, &r) != nullptr) return;
      (void)nbd::MatchesBaseAllocation(r.queries,
                                       option == nbd::kOptSetMetaContext);
      std::vector<uint8_t> v;
      AddString(&v, r.name);
      AddU32(&v, static_cast<uint32_t>(r.queries.size()));
      for (const std::string& q : r.queries) AddString(&v, q);
      FUZZ_CHECK(v == bytes, "meta context round trip differs");
      break;
    }
    default:
      break;  // EXPORT_NAME takes any bytes; the rest carry no data we read
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (in.size() < 4) return 0;
  if (!nbd::KnownClientFlags(nbd::GetU32(in.data()))) return 0;
  in = in.subspan(4);
  while (in.size() >= sizeof(nbd::OptionHeader)) {
    nbd::OptionHeaderFields h;
    if (nbd::DecodeOptionHeader(in.data(), &h) != nullptr) return 0;
    FUZZ_CHECK(h.length <= nbd::kMaxOptionLength, "option too long");
    in = in.subspan(sizeof(nbd::OptionHeader));
    if (in.size() < h.length) return 0;  // the client hung up
    CheckOption(h.option, in.first(h.length));
    if (h.option == nbd::kOptAbort || h.option == nbd::kOptExportName) {
      return 0;
    }
    in = in.subspan(h.length);
  }
  return 0;
}
