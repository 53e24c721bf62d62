// NBD wire protocol: magic numbers, flags, option/command/reply codes and the
// fixed-size message layouts, written from the NBD protocol specification
// (NetworkBlockDevice/nbd doc/proto.md). Constants and structs only: no
// behaviour lives here. All multi-byte fields travel in network byte order;
// the structs below document the layouts and sizes, and the code that encodes
// them (wire.h, handshake.cc, transmission.cc) writes the fields one by one in
// big-endian order.
#pragma once

#include <cstdint>

namespace backy::nbd {

// ---- Handshake ---------------------------------------------------------

inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943;  // "NBDMAGIC"
inline constexpr uint64_t kOptMagic = 0x49484156454F5054;  // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9;

// Handshake flags (server, 16 bits).
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;

// Client flags (32 bits).
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Transmission flags (16 bits), sent with the export size.
inline constexpr uint16_t kTransHasFlags = 1 << 0;
inline constexpr uint16_t kTransReadOnly = 1 << 1;
inline constexpr uint16_t kTransSendFlush = 1 << 2;
inline constexpr uint16_t kTransSendFua = 1 << 3;
inline constexpr uint16_t kTransRotational = 1 << 4;
inline constexpr uint16_t kTransSendTrim = 1 << 5;
inline constexpr uint16_t kTransSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kTransSendDf = 1 << 7;
inline constexpr uint16_t kTransCanMultiConn = 1 << 8;
inline constexpr uint16_t kTransSendResize = 1 << 9;
inline constexpr uint16_t kTransSendCache = 1 << 10;
inline constexpr uint16_t kTransSendFastZero = 1 << 11;

// Options (client requests during the handshake).
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptPeekExport = 4;  // withdrawn
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;
inline constexpr uint32_t kOptListMetaContext = 9;
inline constexpr uint32_t kOptSetMetaContext = 10;
inline constexpr uint32_t kOptExtendedHeaders = 11;  // not supported

// Option reply types; errors have bit 31 set.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepMetaContext = 4;
inline constexpr uint32_t kRepErrBit = 1u << 31;
inline constexpr uint32_t kRepErrUnsup = kRepErrBit + 1;
inline constexpr uint32_t kRepErrPolicy = kRepErrBit + 2;
inline constexpr uint32_t kRepErrInvalid = kRepErrBit + 3;
inline constexpr uint32_t kRepErrPlatform = kRepErrBit + 4;
inline constexpr uint32_t kRepErrTlsReqd = kRepErrBit + 5;
inline constexpr uint32_t kRepErrUnknown = kRepErrBit + 6;
inline constexpr uint32_t kRepErrShutdown = kRepErrBit + 7;
inline constexpr uint32_t kRepErrBlockSizeReqd = kRepErrBit + 8;
inline constexpr uint32_t kRepErrTooBig = kRepErrBit + 9;

// Information types in NBD_OPT_INFO / NBD_OPT_GO and NBD_REP_INFO.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// The one metadata context defined by the standard.
inline constexpr char kMetaContextBaseAllocation[] = "base:allocation";
inline constexpr char kMetaNamespaceBase[] = "base:";
// base:allocation status flags.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

// Strings (export names, descriptions, messages) MUST NOT exceed this.
inline constexpr uint32_t kMaxStringLength = 4096;

// ---- Transmission ------------------------------------------------------

inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;

// Commands.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdCache = 5;
inline constexpr uint16_t kCmdWriteZeroes = 6;
inline constexpr uint16_t kCmdBlockStatus = 7;

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Structured reply chunk flags and types; error types have bit 15 set.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
inline constexpr uint16_t kReplyTypeNone = 0;
inline constexpr uint16_t kReplyTypeOffsetData = 1;
inline constexpr uint16_t kReplyTypeOffsetHole = 2;
inline constexpr uint16_t kReplyTypeBlockStatus = 5;
inline constexpr uint16_t kReplyTypeError = (1 << 15) + 1;
inline constexpr uint16_t kReplyTypeErrorOffset = (1 << 15) + 2;

// Error values carried in replies (not the host's errno values, although
// they happen to coincide on Linux).
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

// ---- Message layouts (sizes on the wire) -------------------------------
//
// The structs are packed so that sizeof() equals the wire size; fields hold
// host-order values only after decoding (wire.h, handshake.cc,
// transmission.cc).

#pragma pack(push, 1)

// S: greeting of the fixed newstyle handshake.
struct Greeting {
  uint64_t nbd_magic;  // kNbdMagic
  uint64_t opt_magic;  // kOptMagic
  uint16_t handshake_flags;
};
static_assert(sizeof(Greeting) == 18);

// C: header of every option; `length` bytes of data follow.
struct OptionHeader {
  uint64_t magic;  // kOptMagic
  uint32_t option;
  uint32_t length;
};
static_assert(sizeof(OptionHeader) == 16);

// S: header of every option reply; `length` bytes of data follow.
struct OptionReplyHeader {
  uint64_t magic;  // kOptReplyMagic
  uint32_t option;
  uint32_t reply_type;
  uint32_t length;
};
static_assert(sizeof(OptionReplyHeader) == 20);

// S: reply to NBD_OPT_EXPORT_NAME (followed by 124 zero bytes unless
// NO_ZEROES was negotiated).
struct ExportNameReply {
  uint64_t export_size;
  uint16_t transmission_flags;
};
static_assert(sizeof(ExportNameReply) == 10);
inline constexpr uint32_t kExportNameZeroPad = 124;

// S: NBD_REP_INFO payloads.
struct InfoExport {
  uint16_t info_type;  // kInfoExport
  uint64_t export_size;
  uint16_t transmission_flags;
};
static_assert(sizeof(InfoExport) == 12);

struct InfoBlockSize {
  uint16_t info_type;  // kInfoBlockSize
  uint32_t minimum;
  uint32_t preferred;
  uint32_t maximum;
};
static_assert(sizeof(InfoBlockSize) == 14);

// C: request header; WRITE requests are followed by `length` bytes.
struct RequestHeader {
  uint32_t magic;  // kRequestMagic
  uint16_t flags;
  uint16_t type;
  uint64_t handle;
  uint64_t offset;
  uint32_t length;
};
static_assert(sizeof(RequestHeader) == 28);

// S: simple reply; READ data follows on success.
struct SimpleReply {
  uint32_t magic;  // kSimpleReplyMagic
  uint32_t error;
  uint64_t handle;
};
static_assert(sizeof(SimpleReply) == 16);

// S: structured reply chunk header; `length` bytes of payload follow.
struct StructuredReplyHeader {
  uint32_t magic;  // kStructuredReplyMagic
  uint16_t flags;
  uint16_t type;
  uint64_t handle;
  uint32_t length;
};
static_assert(sizeof(StructuredReplyHeader) == 20);

// Payload of NBD_REPLY_TYPE_OFFSET_HOLE.
struct OffsetHolePayload {
  uint64_t offset;
  uint32_t length;
};
static_assert(sizeof(OffsetHolePayload) == 12);

// Payload of NBD_REPLY_TYPE_ERROR, followed by `message_length` bytes.
struct ErrorPayload {
  uint32_t error;
  uint16_t message_length;
};
static_assert(sizeof(ErrorPayload) == 6);

// One descriptor of NBD_REPLY_TYPE_BLOCK_STATUS (after a 32-bit context id).
struct BlockDescriptor {
  uint32_t length;
  uint32_t status_flags;
};
static_assert(sizeof(BlockDescriptor) == 8);

#pragma pack(pop)

}  // namespace backy::nbd
