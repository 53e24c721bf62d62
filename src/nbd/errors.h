// The one mapping from a Status to the NBD error value sent to a client
// (nbdkit's nbd_errno()). Kept apart from internal.h so that errors.cc
// compiles without Asio. Pure function; thread-safe. Not for use
// outside src/nbd.
#pragma once

#include <cstdint>

#include "store/status.h"

namespace backy::nbd {

// Returns 0 for OK, else the NBD_E* value (protocol.h) for `s`. Logs
// nothing; callers log the full Status at debug level first.
uint32_t NbdErrorFromStatus(const Status& s);

}  // namespace backy::nbd
