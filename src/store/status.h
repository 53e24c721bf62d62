// Status and Result<T>: how every backy module reports success or failure.
//
// A Status is a value: OK, or a code plus a message that names the object
// involved (a path, a digest, pool/image@snap). No exception crosses a module
// boundary; foreign errors (errno, yaml-cpp, librbd, Asio) are converted in
// the one file that talks to the foreign library. Modelled on leveldb's
// include/leveldb/status.h. Thread-safety: a Status is an immutable value.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace backy {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kCorruption,
    kIOError,
    kInvalidArgument,
    kNotSupported,
    kBusy,         // a lock is held by someone else
    kWouldBlock,   // a non-blocking call would have to wait (for a disk)
    kInterrupted,  // stopped by a signal
    kNoSpace,      // ENOSPC / EDQUOT
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kNotFound, msg, object);
  }
  static Status Corruption(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kCorruption, msg, object);
  }
  static Status IOError(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kIOError, msg, object);
  }
  static Status InvalidArgument(std::string_view msg,
                                std::string_view object = {}) {
    return Status(Code::kInvalidArgument, msg, object);
  }
  static Status NotSupported(std::string_view msg,
                             std::string_view object = {}) {
    return Status(Code::kNotSupported, msg, object);
  }
  static Status Busy(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kBusy, msg, object);
  }
  static Status WouldBlock(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kWouldBlock, msg, object);
  }
  static Status Interrupted(std::string_view msg,
                            std::string_view object = {}) {
    return Status(Code::kInterrupted, msg, object);
  }
  static Status NoSpace(std::string_view msg, std::string_view object = {}) {
    return Status(Code::kNoSpace, msg, object);
  }
  // Maps an errno value to the closest code; `what` says what failed
  // ("open", "write") and `object` names the file.
  static Status FromErrno(int err, std::string_view what,
                          std::string_view object);

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  bool IsIOError() const { return code() == Code::kIOError; }
  bool IsInvalidArgument() const { return code() == Code::kInvalidArgument; }
  bool IsNotSupported() const { return code() == Code::kNotSupported; }
  bool IsBusy() const { return code() == Code::kBusy; }
  bool IsWouldBlock() const { return code() == Code::kWouldBlock; }
  bool IsInterrupted() const { return code() == Code::kInterrupted; }
  bool IsNoSpace() const { return code() == Code::kNoSpace; }

  // "Corruption: chunk digest mismatch (repo/chunks/ab/ab12...)".
  std::string ToString() const;
  // The message alone, without the code prefix: "chunk digest mismatch
  // (repo/chunks/...)"; used by the CLI, which prints one line per error.
  std::string Message() const;

  // Returns a copy whose message is prefixed with `context`, keeping the
  // code: "reading revision X: <old message>".
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    Code code;
    std::string msg;
  };
  Status(Code code, std::string_view msg, std::string_view object);
  std::shared_ptr<const State> state_;  // null means OK
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {      // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace backy
