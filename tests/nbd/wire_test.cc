// The pure NBD parsers of src/nbd/wire.h (also fuzzed: tests/fuzz).
#include "nbd/wire.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace backy::nbd {
namespace {

void AddU16(std::vector<uint8_t>* v, uint16_t x) {
  uint8_t b[2];
  PutU16(b, x);
  v->insert(v->end(), b, b + 2);
}
void AddU32(std::vector<uint8_t>* v, uint32_t x) {
  uint8_t b[4];
  PutU32(b, x);
  v->insert(v->end(), b, b + 4);
}
void AddString(std::vector<uint8_t>* v, const std::string& s) {
  AddU32(v, static_cast<uint32_t>(s.size()));
  v->insert(v->end(), s.begin(), s.end());
}

TEST(NbdWireTest, OptionHeaderChecksMagicAndLength) {
  uint8_t hdr[sizeof(OptionHeader)];
  PutU32(PutU32(PutU64(hdr, kOptMagic), kOptGo), kMaxOptionLength);
  OptionHeaderFields h;
  EXPECT_EQ(DecodeOptionHeader(hdr, &h), nullptr);
  EXPECT_EQ(h.option, kOptGo);
  EXPECT_EQ(h.length, kMaxOptionLength);
  PutU32(hdr + 12, kMaxOptionLength + 1);
  EXPECT_STREQ(DecodeOptionHeader(hdr, &h), "option too long");
  PutU32(hdr + 12, 0);
  hdr[0] ^= 1;
  EXPECT_STREQ(DecodeOptionHeader(hdr, &h), "bad option magic");
}

TEST(NbdWireTest, ClientFlags) {
  EXPECT_TRUE(KnownClientFlags(0));
  EXPECT_TRUE(KnownClientFlags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
  EXPECT_FALSE(KnownClientFlags(1u << 2));
  EXPECT_FALSE(KnownClientFlags(1u << 31));
}

TEST(NbdWireTest, InfoRequestParsesNameAndInfos) {
  std::vector<uint8_t> d;
  AddString(&d, "vm1");
  AddU16(&d, 2);
  AddU16(&d, kInfoName);
  AddU16(&d, kInfoBlockSize);
  InfoRequest r;
  ASSERT_EQ(ParseInfoRequest(d, &r), nullptr);
  EXPECT_EQ(r.name, "vm1");
  EXPECT_EQ(r.infos, (std::vector<uint16_t>{kInfoName, kInfoBlockSize}));
}

TEST(NbdWireTest, InfoRequestRefusesShortLongAndOversizedData) {
  std::vector<uint8_t> d;
  AddString(&d, "vm1");
  AddU16(&d, 1);  // one info announced, none present
  InfoRequest r;
  EXPECT_STREQ(ParseInfoRequest(d, &r), "malformed NBD_OPT_INFO/GO request");
  AddU16(&d, kInfoName);
  EXPECT_EQ(ParseInfoRequest(d, &r), nullptr);
  d.push_back(0);  // trailing byte
  EXPECT_STREQ(ParseInfoRequest(d, &r), "malformed NBD_OPT_INFO/GO request");

  std::vector<uint8_t> huge;
  AddU32(&huge, std::numeric_limits<uint32_t>::max());  // name length
  EXPECT_STREQ(ParseInfoRequest(huge, &r), "malformed NBD_OPT_INFO/GO request");
  EXPECT_STREQ(ParseInfoRequest({}, &r), "malformed NBD_OPT_INFO/GO request");

  std::vector<uint8_t> long_name;
  AddString(&long_name, std::string(kMaxStringLength + 1, 'x'));
  AddU16(&long_name, 0);
  EXPECT_STREQ(ParseInfoRequest(long_name, &r), "export name too long");
}

TEST(NbdWireTest, MetaContextRequestAndMatching) {
  std::vector<uint8_t> d;
  AddString(&d, "vm1");
  AddU32(&d, 2);
  AddString(&d, "base:");
  AddString(&d, "qemu:dirty-bitmap:x");
  MetaContextRequest r;
  ASSERT_EQ(ParseMetaContextRequest(d, &r), nullptr);
  EXPECT_EQ(r.name, "vm1");
  ASSERT_EQ(r.queries.size(), 2u);
  EXPECT_TRUE(MatchesBaseAllocation(r.queries, /*set=*/false));
  EXPECT_FALSE(MatchesBaseAllocation(r.queries, /*set=*/true));
  EXPECT_TRUE(MatchesBaseAllocation({}, /*set=*/false));
  EXPECT_FALSE(MatchesBaseAllocation({}, /*set=*/true));
  EXPECT_TRUE(MatchesBaseAllocation({"base:allocation"}, /*set=*/true));

  // A query count far beyond the data ends at the data, not in a loop.
  std::vector<uint8_t> many;
  AddString(&many, "");
  AddU32(&many, std::numeric_limits<uint32_t>::max());
  AddString(&many, "");
  EXPECT_STREQ(ParseMetaContextRequest(many, &r),
               "malformed meta context request");
}

TEST(NbdWireTest, RequestHeaderNeedsMagic) {
  uint8_t hdr[sizeof(RequestHeader)] = {};
  uint8_t* p = PutU32(hdr, kRequestMagic);
  p = PutU16(p, kCmdFlagFua);
  p = PutU16(p, kCmdWrite);
  p = PutU64(p, 0x1122334455667788);
  p = PutU64(p, 4096);
  PutU32(p, 512);
  RequestFields f;
  ASSERT_TRUE(DecodeRequestHeader(hdr, &f));
  EXPECT_EQ(f.flags, kCmdFlagFua);
  EXPECT_EQ(f.type, kCmdWrite);
  EXPECT_EQ(f.handle, 0x1122334455667788u);
  EXPECT_EQ(f.offset, 4096u);
  EXPECT_EQ(f.length, 512u);
  hdr[3] ^= 1;
  EXPECT_FALSE(DecodeRequestHeader(hdr, &f));
}

TEST(NbdWireTest, ValidateRequestRangesWithoutOverflow) {
  RequestContext c;
  c.size = 1 << 20;
  const char* why = "";
  RequestFields r;
  r.type = kCmdRead;
  r.offset = (1 << 20) - 512;
  r.length = 512;
  EXPECT_EQ(ValidateRequest(r, c, &why), 0u);
  r.length = 513;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
  // offset + length wraps around 2^64: still beyond the end.
  r.offset = std::numeric_limits<uint64_t>::max() - 100;
  r.length = 200;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
  r.type = kCmdWrite;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEnospc);
  c.transmission_flags = kTransReadOnly;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEperm);

  c.size = std::numeric_limits<uint64_t>::max();
  r.type = kCmdRead;
  r.offset = 0;
  r.length = kMaxBlockSize + 1;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
  EXPECT_STREQ(why, "request longer than the maximum block size");
  r.type = kCmdBlockStatus;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
  c.base_allocation = true;
  EXPECT_EQ(ValidateRequest(r, c, &why), 0u);  // not limited to 32 MiB
  r.type = kCmdFlush;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
  r.offset = r.length = 0;
  EXPECT_EQ(ValidateRequest(r, c, &why), 0u);
  r.type = kCmdRead;
  r.length = 1;
  r.flags = kCmdFlagDf;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);  // DF needs structured
  c.structured = true;
  EXPECT_EQ(ValidateRequest(r, c, &why), 0u);
  c.stopping = true;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEshutdown);
  r.type = kCmdDisc;
  EXPECT_EQ(ValidateRequest(r, c, &why), 0u);
  r.type = 99;
  EXPECT_EQ(ValidateRequest(r, c, &why), kEinval);
}

TEST(NbdWireTest, PrintableEscapesWhatALogLineMustNotCarry) {
  EXPECT_EQ(Printable("alice"), "alice");
  EXPECT_EQ(Printable(std::string("a\nb\0c", 5)), "a\\x0ab\\x00c");
  EXPECT_EQ(Printable("it's \\"), "it\\x27s \\x5c");
  EXPECT_EQ(Printable("\xff"), "\\xff");
  EXPECT_EQ(Printable(std::string(100, 'x')), std::string(64, 'x') + "...");
}

}  // namespace
}  // namespace backy::nbd
