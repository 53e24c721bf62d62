#include "nbd/errors.h"

#include "nbd/protocol.h"

namespace backy::nbd {

uint32_t NbdErrorFromStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return 0;
    case Status::Code::kInvalidArgument:
      return kEinval;
    case Status::Code::kNoSpace:
      return kEnospc;
    case Status::Code::kInterrupted:
      return kEshutdown;
    case Status::Code::kNotSupported:
      // The protocol reserves ENOTSUP for fast-zero requests.
      return kEinval;
    case Status::Code::kNotFound:
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kBusy:
    case Status::Code::kWouldBlock:
      return kEio;
  }
  return kEio;
}

}  // namespace backy::nbd
