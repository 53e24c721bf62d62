#include "backup/rbd_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "sources/rbd_image_writer.h"

namespace backy::backup {
namespace {

using sources::RbdConfig;
using sources::RbdImageWriter;

class RbdSink final : public RestoreSink {
 public:
  RbdSink(RbdConfig config, bool force, unsigned threads)
      : config_(std::move(config)), force_(force), threads_(threads) {}

  ~RbdSink() override { Stop(); }

  Status Open(uint64_t size) override {
    auto w = RbdImageWriter::Create(config_, size, force_);
    if (!w.ok()) return w.status();
    writer_ = std::move(*w);
    spdlog::debug("restore: {} image {} ({} bytes)",
                  writer_->created() ? "created" : "overwriting",
                  writer_->Name(), size);
    for (unsigned i = 0; i < threads_; ++i) {
      workers_.emplace_back([this] { Work(); });
    }
    return Status::OK();
  }

  Status Write(uint64_t offset, std::span<const uint8_t> data,
               bool zero) override {
    if (zero) {
      // A new image reads as zeros already; an overwritten one must be
      // zeroed, in as few calls as possible.
      if (writer_->created()) return Status::OK();
      if (zero_len_ > 0 && zero_start_ + zero_len_ == offset) {
        zero_len_ += data.size();
        return Status::OK();
      }
      Status s = FlushZeros();
      if (!s.ok()) return s;
      zero_start_ = offset;
      zero_len_ = data.size();
      return Status::OK();
    }
    Status s = FlushZeros();
    if (!s.ok()) return s;
    std::vector<uint8_t> buf;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !error_.ok() || outstanding_ < Window(); });
      if (!error_.ok()) return error_;
      if (!free_.empty()) {
        buf.swap(free_.back());
        free_.pop_back();
      }
    }
    buf.assign(data.begin(), data.end());
    return Enqueue(Job{offset, 0, std::move(buf)});
  }

  Status Finish() override {
    Status s = FlushZeros();
    if (!s.ok()) return s;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !error_.ok() || outstanding_ == 0; });
      if (!error_.ok()) return error_;
    }
    Stop();
    return writer_->Commit();
  }

  void Abort() override {
    Stop();
    // Destroying an uncommitted writer removes the image it created.
    writer_.reset();
  }

 private:
  struct Job {
    uint64_t offset;
    uint64_t zero_length;       // > 0: a Zero() job, `data` is empty
    std::vector<uint8_t> data;  // owned copy of the chunk
  };

  size_t Window() const { return 2 * static_cast<size_t>(threads_); }

  Status FlushZeros() {
    if (zero_len_ == 0) return Status::OK();
    Job job{zero_start_, zero_len_, {}};
    zero_len_ = 0;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !error_.ok() || outstanding_ < Window(); });
      if (!error_.ok()) return error_;
    }
    return Enqueue(std::move(job));
  }

  Status Enqueue(Job job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!error_.ok()) return error_;
      queue_.push_back(std::move(job));
      ++outstanding_;
    }
    cv_.notify_all();
    return Status::OK();
  }

  void Work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      Status s = job.zero_length > 0
                     ? writer_->Zero(job.offset, job.zero_length)
                     : writer_->Write(job.offset, job.data);
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!s.ok() && error_.ok()) error_ = s;
        --outstanding_;
        if (!job.data.empty()) free_.push_back(std::move(job.data));
      }
      cv_.notify_all();
    }
  }

  // Joins the workers; queued jobs are dropped after an error or abort.
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      if (!error_.ok()) queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  const RbdConfig config_;
  const bool force_;
  const unsigned threads_;
  std::unique_ptr<RbdImageWriter> writer_;
  // A run of zero chunks not yet handed to the workers (restore thread).
  uint64_t zero_start_ = 0;
  uint64_t zero_len_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;                   // GUARDED_BY(mu_)
  std::vector<std::vector<uint8_t>> free_;  // reusable buffers, GUARDED_BY(mu_)
  size_t outstanding_ = 0;                  // queued + being written
  bool stop_ = false;                       // GUARDED_BY(mu_)
  Status error_;                            // first write error
  std::vector<std::thread> workers_;
};

}  // namespace

Result<std::unique_ptr<RestoreSink>> OpenRbdSink(
    const std::string& spec, const RestoreOptions& options) {
  auto config = sources::ParseRbdSpec(spec);
  if (!config.ok()) return config.status();
  auto get = [&](const char* key) {
    auto it = options.ceph.find(key);
    return it == options.ceph.end() ? std::string() : it->second;
  };
  config->conf_path = get("ceph_conf");
  config->client_id = get("client_id");
  config->keyring = get("keyring");
  // librbd writes block on the network, not the CPU: more writers than
  // cores keep the OSDs busy.
  const unsigned threads =
      std::max(4u, options.workers ? options.workers
                                   : std::thread::hardware_concurrency());
  return std::unique_ptr<RestoreSink>(
      new RbdSink(std::move(*config), options.force, threads));
}

}  // namespace backy::backup
