#include "nbd/wire.h"

namespace backy::nbd {

namespace {

// Cursor over option data; every Get* fails softly once data runs out, so
// each parser checks ok() once at the end.
class Parser {
 public:
  explicit Parser(std::span<const uint8_t> d) : d_(d) {}
  uint32_t U32() {
    if (!Need(4)) return 0;
    uint32_t v = GetU32(d_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint16_t U16() {
    if (!Need(2)) return 0;
    uint16_t v = GetU16(d_.data() + pos_);
    pos_ += 2;
    return v;
  }
  std::string String(uint32_t n) {
    if (!Need(n)) return {};
    std::string s(reinterpret_cast<const char*>(d_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool AtEnd() const { return ok_ && pos_ == d_.size(); }

 private:
  bool Need(size_t n) {
    if (!ok_ || d_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

bool KnownClientFlags(uint32_t client_flags) {
  return (client_flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) ==
         0;
}

const char* DecodeOptionHeader(const uint8_t* hdr, OptionHeaderFields* out) {
  out->magic = GetU64(hdr);
  out->option = GetU32(hdr + 8);
  out->length = GetU32(hdr + 12);
  if (out->magic != kOptMagic) return "bad option magic";
  if (out->length > kMaxOptionLength) return "option too long";
  return nullptr;
}

const char* ParseInfoRequest(std::span<const uint8_t> data, InfoRequest* out) {
  Parser in(data);
  const uint32_t name_len = in.U32();
  out->name = in.String(name_len);
  const uint16_t nreq = in.U16();
  out->infos.clear();
  for (uint16_t i = 0; i < nreq && in.ok(); ++i) out->infos.push_back(in.U16());
  if (!in.AtEnd()) return "malformed NBD_OPT_INFO/GO request";
  if (out->name.size() > kMaxStringLength) return "export name too long";
  return nullptr;
}

const char* ParseMetaContextRequest(std::span<const uint8_t> data,
                                    MetaContextRequest* out) {
  Parser in(data);
  const uint32_t name_len = in.U32();
  out->name = in.String(name_len);
  const uint32_t nqueries = in.U32();
  out->queries.clear();
  for (uint32_t i = 0; i < nqueries && in.ok(); ++i) {
    const uint32_t qlen = in.U32();
    out->queries.push_back(in.String(qlen));
  }
  if (!in.AtEnd()) return "malformed meta context request";
  return nullptr;
}

bool MatchesBaseAllocation(const std::vector<std::string>& queries, bool set) {
  bool match = false;
  if (!set && queries.empty()) match = true;  // list everything
  for (const std::string& q : queries) {
    if (q == kMetaContextBaseAllocation) match = true;
    // "base:" is a wildcard when listing and selects nothing when setting.
    if (!set && q == kMetaNamespaceBase) match = true;
  }
  return match;
}

std::string Printable(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out;
  for (unsigned char c : s.substr(0, kMax)) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

bool DecodeRequestHeader(const uint8_t* hdr, RequestFields* out) {
  if (GetU32(hdr) != kRequestMagic) return false;
  out->flags = GetU16(hdr + 4);
  out->type = GetU16(hdr + 6);
  out->handle = GetU64(hdr + 8);
  out->offset = GetU64(hdr + 16);
  out->length = GetU32(hdr + 24);
  return true;
}

uint32_t ValidateRequest(const RequestFields& r, const RequestContext& c,
                         const char** why) {
  uint16_t allowed = kCmdFlagFua;  // harmless everywhere; some clients set it
  bool ranged = true;              // offset/length must lie within the export
  bool payload = false;            // length limited to kMaxBlockSize
  bool writes = false;
  switch (r.type) {
    case kCmdRead:
      if (c.structured) allowed |= kCmdFlagDf;
      payload = true;
      break;
    case kCmdWrite:
      payload = writes = true;
      break;
    case kCmdWriteZeroes:
      allowed |= kCmdFlagNoHole;
      payload = writes = true;  // the spec limits its length too
      break;
    case kCmdTrim:
      writes = true;
      break;
    case kCmdCache:
      payload = true;
      break;
    case kCmdBlockStatus:
      allowed |= kCmdFlagReqOne;
      if (!c.base_allocation) {
        *why = "no metadata context was negotiated";
        return kEinval;
      }
      break;
    case kCmdFlush:
      ranged = false;
      if (r.offset != 0 || r.length != 0) {
        *why = "flush offset and length must be zero";
        return kEinval;
      }
      break;
    case kCmdDisc:
      return 0;
    default:
      *why = "unknown command";
      return kEinval;
  }
  if ((r.flags & ~allowed) != 0) {
    *why = "invalid flags for this command";
    return kEinval;
  }
  if (writes && (c.transmission_flags & kTransReadOnly) != 0) {
    *why = "export is read-only";
    return kEperm;
  }
  if (ranged) {
    if (r.length == 0) {
      *why = "zero-length request";
      return kEinval;
    }
    if (r.offset > c.size || r.length > c.size - r.offset) {
      *why = "request beyond the end of the export";
      return writes ? kEnospc : kEinval;
    }
  }
  if (payload && r.length > kMaxBlockSize) {
    *why = "request longer than the maximum block size";
    return kEinval;
  }
  if (c.stopping) {
    *why = "server is shutting down";
    return kEshutdown;
  }
  return 0;
}

}  // namespace backy::nbd
