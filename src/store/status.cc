#include "store/status.h"

#include <cerrno>
#include <cstring>

namespace backy {

Status::Status(Code code, std::string_view msg, std::string_view object) {
  auto st = std::make_shared<State>();
  st->code = code;
  st->msg = std::string(msg);
  if (!object.empty()) {
    st->msg += " (";
    st->msg += object;
    st->msg += ")";
  }
  state_ = std::move(st);
}

Status Status::FromErrno(int err, std::string_view what,
                         std::string_view object) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(msg, object);
    case ENOSPC:
    case EDQUOT:
      return NoSpace(msg, object);
    case EINTR:
      return Interrupted(msg, object);
    case EWOULDBLOCK:
      return Busy(msg, object);
    case EINVAL:
    case EISDIR:
    case ENOTDIR:
      return InvalidArgument(msg, object);
    default:
      return IOError(msg, object);
  }
}

std::string Status::Message() const {
  return state_ ? state_->msg : std::string("OK");
}

std::string Status::ToString() const {
  if (!state_) return "OK";
  const char* prefix = "";
  switch (state_->code) {
    case Code::kOk:
      prefix = "OK";
      break;
    case Code::kNotFound:
      prefix = "NotFound";
      break;
    case Code::kCorruption:
      prefix = "Corruption";
      break;
    case Code::kIOError:
      prefix = "IOError";
      break;
    case Code::kInvalidArgument:
      prefix = "InvalidArgument";
      break;
    case Code::kNotSupported:
      prefix = "NotSupported";
      break;
    case Code::kBusy:
      prefix = "Busy";
      break;
    case Code::kWouldBlock:
      prefix = "WouldBlock";
      break;
    case Code::kInterrupted:
      prefix = "Interrupted";
      break;
    case Code::kNoSpace:
      prefix = "NoSpace";
      break;
  }
  return std::string(prefix) + ": " + state_->msg;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  Status s;
  auto st = std::make_shared<State>();
  st->code = state_->code;
  st->msg = std::string(context) + ": " + state_->msg;
  s.state_ = std::move(st);
  return s;
}

}  // namespace backy
