// Whole-buffer positioned reads and writes on a file descriptor, EINTR-safe,
// and the unnamed scratch files the NBD server keeps (overlays, decoded
// blocks).
// Core, like Status (backy_core, namespace backy, no dependencies): every
// module, the NBD server included, uses these loops instead of writing its
// own. Thread-safe (plain system calls on the caller's descriptor).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "store/status.h"

namespace backy {

// Writes all of `data` at `offset` (pwrite loop, EINTR-safe).
Status PWriteAll(int fd, std::span<const uint8_t> data, uint64_t offset,
                 const std::string& name);
// Reads exactly data.size() bytes at `offset`; reading past EOF is a
// Corruption error ("short read") since callers know the expected size.
Status PReadAll(int fd, std::span<uint8_t> data, uint64_t offset,
                const std::string& name);
// Like PReadAll(), but only from the page cache (preadv2 RWF_NOWAIT):
// WouldBlock when some of the bytes would have to come from the disk (the
// kernel may start reading them ahead meanwhile).
Status PReadNoWait(int fd, std::span<uint8_t> data, uint64_t offset,
                   const std::string& name);

// Where scratch files go by default: $TMPDIR when set and not empty, else
// /var/tmp (large files: not the tmpfs /tmp often is).
std::string TempDirectory();
// A new read-write file in `dir` with no name (O_TMPFILE; where the file
// system lacks it, created mode 0600 under a random name and unlinked at
// once), so it vanishes when closed, also after kill -9. Returns the
// descriptor (close-on-exec; the caller owns it). An error says `what`
// failed and names `dir`.
Result<int> OpenUnnamedFile(const std::string& dir, const std::string& what);

}  // namespace backy
