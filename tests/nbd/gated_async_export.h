// GatedAsyncExport: an export over another whose every read must be started
// with ReadAsync() (the server's asynchronous path) and is answered only
// once `gate` reads are waiting at the same time, from a thread of its own.
// So a client's reads complete only if the server has that many in flight
// at once; a read that reaches Read() (a worker) fails with IOError. For
// tests of the server's asynchronous reads. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "nbd/export.h"

namespace backy::nbd {

class GatedAsyncExport final : public Export {
 public:
  GatedAsyncExport(std::shared_ptr<Export> base, size_t gate)
      : base_(std::move(base)), gate_(gate), thread_([this] { Complete(); }) {}
  ~GatedAsyncExport() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  uint64_t Size() const override { return base_->Size(); }
  std::string Description() const override { return base_->Description(); }
  Status Read(uint64_t, std::span<uint8_t>) override {
    return Status::IOError("read went to a worker, not ReadAsync()");
  }
  bool CanReadNoWait() const override { return true; }
  Status ReadNoWait(uint64_t, std::span<uint8_t>) override {
    return Status::WouldBlock("every read is asynchronous");
  }
  bool CanReadAsync() const override { return true; }
  bool ReadAsync(uint64_t offset, std::span<uint8_t> buf,
                 std::function<void(Status)> done) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      waiting_.push_back([this, offset, buf, done = std::move(done)] {
        done(base_->Read(offset, buf));
      });
      if (waiting_.size() >= gate_) open_ = true;
    }
    cv_.notify_all();
    return true;
  }
  Status BlockStatus(uint64_t offset, uint64_t length,
                     std::vector<ExportExtent>* extents) override {
    return base_->BlockStatus(offset, length, extents);
  }

 private:
  void Complete() {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return stop_ || (open_ && !waiting_.empty()); });
      if (stop_) return;
      std::deque<std::function<void()>> now;
      now.swap(waiting_);
      l.unlock();
      for (auto& f : now) f();
      l.lock();
    }
  }

  const std::shared_ptr<Export> base_;
  const size_t gate_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> waiting_;  // GUARDED_BY(mu_)
  bool open_ = false;                          // GUARDED_BY(mu_), for good
  bool stop_ = false;                          // GUARDED_BY(mu_)
  std::thread thread_;  // last: starts once the rest is initialised
};

}  // namespace backy::nbd
