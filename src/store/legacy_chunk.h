// The chunk file of a backy 2.x repository (`chunks/XX/<hash>.chunk.lzo`),
// decoded and checked. Such a file holds one chunk of at most 4 MiB as
// python-lzo's compress() writes it: one byte 0xF0, the plain length as a
// 4-byte big-endian integer, then one LZO1X stream. <hash> is the 32
// lower-case hex digits of MurmurHash3 x64_128 (seed 0) of the plain bytes:
// the 16 bytes h1, h2, each little-endian. See man/backy-store.5.
//
// Reading a 2.x repository in place and `backy upgrade` build on this
// (issue 11); nothing else in the store knows the 2.x format.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace backy::store {

// python-lzo's header byte, before the big-endian plain length.
inline constexpr uint8_t kLegacyChunkMagic = 0xF0;
inline constexpr size_t kLegacyChunkHeaderSize = 5;

// The 2.x chunk hash of `plain`: MurmurHash3 x64_128, seed 0, as 32
// lower-case hex digits.
std::string LegacyChunkHash(std::span<const uint8_t> plain);

// The plain length the header of a 2.x chunk file (its first
// kLegacyChunkHeaderSize bytes, or all of it) says; Corruption naming
// `object` for a wrong first byte, too few bytes, or a length over 4 MiB.
Result<uint32_t> LegacyChunkPlainLength(std::span<const uint8_t> file,
                                        const std::string& object);

// Decodes the bytes of a 2.x chunk file into `*plain` (replacing its
// content) and checks them against `expected_hash` (32 hex digits, the
// file's name without ".chunk.lzo"). Never returns unchecked data: a wrong
// header byte, a plain length over 4 MiB, a damaged or truncated LZO
// stream, trailing bytes, a length that differs from the header's, or a
// hash mismatch is Corruption naming `object` (the chunk file's path).
// Memory is bounded by the 4 MiB limit, whatever the header says.
Status DecodeLegacyChunk(std::span<const uint8_t> file,
                         std::string_view expected_hash,
                         const std::string& object,
                         std::vector<uint8_t>* plain);

// Like DecodeLegacyChunk, into `plain`, whose size must be the header's
// plain length (else Corruption): for a reader decoding straight into the
// caller's (or a cache's) buffer. On failure `plain` holds garbage, which
// the caller must not hand out.
Status DecodeLegacyChunkInto(std::span<const uint8_t> file,
                             std::string_view expected_hash,
                             const std::string& object,
                             std::span<uint8_t> plain);

// Encodes `plain` (REQUIRES: at most 4 MiB) as the 2.x backy did, into
// `*file`. For tests that write 2.x repositories, and for checking the
// decoder against the real 2.x files.
Status EncodeLegacyChunk(std::span<const uint8_t> plain,
                         std::vector<uint8_t>* file);

}  // namespace backy::store
