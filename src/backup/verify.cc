#include "backup/verify.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <unordered_set>

#include "backup/parallel_for.h"

namespace backy::backup {

namespace {

bool Cancelled(const VerifyOptions& o) {
  return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

// How a backup check ends: its first error, else Interrupted if cancelled.
Status BackupCheckResult(const Status& first_error,
                         const VerifyOptions& options) {
  if (!first_error.ok()) return first_error.WithContext("verification failed");
  if (Cancelled(options)) return Status::Interrupted("backup interrupted");
  return Status::OK();
}

// The slots VerifySample checks, in order: every slot holding a chunk in
// `written` and options.sample of the other data slots, each set shuffled.
std::vector<size_t> SampleSlots(const store::RevisionIndex& index,
                                const std::vector<Digest>& written,
                                const VerifyOptions& options) {
  std::set<Digest> fresh(written.begin(), written.end());
  std::vector<size_t> must, others;
  for (size_t s = 0; s < index.slot_count(); ++s) {
    if (index.IsZero(s)) continue;
    (fresh.count(index.slot(s)) ? must : others).push_back(s);
  }
  std::mt19937_64 rng{std::random_device{}()};
  std::shuffle(must.begin(), must.end(), rng);
  std::shuffle(others.begin(), others.end(), rng);
  const size_t data_slots = must.size() + others.size();
  size_t want_others = static_cast<size_t>(
      std::ceil(options.sample * static_cast<double>(data_slots)));
  want_others = std::min(want_others, others.size());
  std::vector<size_t> order = std::move(must);
  order.insert(order.end(), others.begin(), others.begin() + want_others);
  return order;
}

}  // namespace

Status VerifyReadback(store::Repository& repo,
                      const std::vector<Digest>& written,
                      const VerifyOptions& options, store::Verification* v) {
  v->method = "readback";
  v->chunks_total = written.size();
  const unsigned workers = WorkerCount(options.workers);
  std::vector<std::vector<uint8_t>> bufs(workers);
  std::atomic<uint64_t> checked{0};
  Status first_error = ParallelFor(
      written.size(), workers,
      [&](unsigned w, size_t i) {
        Status s = repo.chunks().Get(written[i], &bufs[w]);
        if (!s.ok()) {
          spdlog::error("verification: {}", s.ToString());
          if (s.IsCorruption()) (void)repo.chunks().Quarantine(written[i]);
          return s;
        }
        ++checked;
        return Status::OK();
      },
      [&] { return Cancelled(options); }, OnError::kContinue);
  v->chunks_checked += checked;
  Status s = BackupCheckResult(first_error, options);
  if (!s.ok()) return s;
  v->complete = v->chunks_checked == v->chunks_total;
  return Status::OK();
}

Status VerifySample(store::Repository& repo, sources::Source& source,
                    const store::RevisionIndex& index,
                    const std::vector<Digest>& written,
                    const VerifyOptions& options, store::Verification* v) {
  v->method = "sample";
  const std::vector<size_t> order = SampleSlots(index, written, options);
  v->chunks_total = order.size();
  const auto deadline = std::chrono::steady_clock::now() + options.budget;
  std::atomic<bool> out_of_time{false};
  const unsigned workers = WorkerCount(options.workers);
  std::vector<std::vector<uint8_t>> stored(workers), live(workers);
  std::atomic<uint64_t> checked{0};
  auto stop = [&] {
    if (Cancelled(options)) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      out_of_time = true;
      return true;
    }
    return false;
  };
  Status first_error = ParallelFor(
      order.size(), workers,
      [&](unsigned w, size_t i) {
        const size_t slot = order[i];
        const Digest& d = index.slot(slot);
        Status s = repo.chunks().Get(d, &stored[w]);
        // A damaged chunk is moved away so that the next (full) backup
        // writes a fresh copy instead of deduplicating against it.
        if (s.IsCorruption()) (void)repo.chunks().Quarantine(d);
        live[w].resize(index.chunk_size());
        std::span<uint8_t> src(live[w].data(), index.SlotLength(slot));
        if (s.ok()) {
          s = source.Read(static_cast<uint64_t>(slot) * index.chunk_size(),
                          src);
        }
        if (s.ok() && Digest::Of(src) != d) {
          s = Status::Corruption("chunk " + d.Hex() + " differs from slot " +
                                     std::to_string(slot) + " of the source",
                                 source.Name());
        }
        if (!s.ok()) {
          spdlog::error("verification: {}", s.ToString());
          return s;
        }
        ++checked;
        return Status::OK();
      },
      stop, OnError::kContinue);
  v->chunks_checked += checked;
  Status s = BackupCheckResult(first_error, options);
  if (!s.ok()) return s;
  v->complete = !out_of_time && v->chunks_checked == v->chunks_total;
  return Status::OK();
}

void SetVerificationRatios(const store::RevisionIndex& index,
                           store::Verification* v) {
  size_t data_slots = 0;
  for (size_t i = 0; i < index.slot_count(); ++i) {
    data_slots += !index.IsZero(i);
  }
  v->fraction = v->chunks_total
                    ? static_cast<double>(v->chunks_checked) / v->chunks_total
                    : 1.0;
  v->coverage =
      data_slots ? static_cast<double>(v->chunks_checked) / data_slots : 1.0;
}

bool IsDamage(const Status& s) { return s.IsCorruption() || s.IsNotFound(); }

const Status* CheckedChunks::Find(const store::ChunkStore& store,
                                  const Digest& d) const {
  auto it = outcomes_.find(&store);
  if (it == outcomes_.end()) return nullptr;
  auto found = it->second.find(d);
  return found == it->second.end() ? nullptr : &found->second;
}

void CheckedChunks::Record(const store::ChunkStore& store, const Digest& d,
                           Status s) {
  size_ += outcomes_[&store].insert_or_assign(d, std::move(s)).second;
}

ChunkReport CheckChunks(store::ChunkStore& chunks,
                        const store::RevisionIndex& index,
                        const VerifyOptions& options, CheckedChunks* checked) {
  ChunkReport report;
  auto add = [&report](const Status& s) {
    ++report.chunks;
    if (!s.ok()) (IsDamage(s) ? report.damaged : report.errors).push_back(s);
  };
  std::vector<Digest> digests;  // to read now
  std::unordered_set<Digest, DigestHash> seen;
  for (size_t i = 0; i < index.slot_count(); ++i) {
    if (index.IsZero(i) || !seen.insert(index.slot(i)).second) continue;
    const Status* known =
        checked ? checked->Find(chunks, index.slot(i)) : nullptr;
    if (known) {
      add(*known);
    } else {
      digests.push_back(index.slot(i));
    }
  }
  const unsigned workers = WorkerCount(options.workers);
  std::vector<std::vector<uint8_t>> bufs(workers);
  // Each item's outcome; `done` marks the items read (not skipped by a
  // cancel), the only ones reported and recorded.
  std::vector<Status> outcome(digests.size());
  std::vector<uint8_t> done(digests.size(), 0);
  (void)ParallelFor(
      digests.size(), workers,
      [&](unsigned w, size_t i) {
        Status s = chunks.Get(digests[i], &bufs[w]);
        if (s.IsCorruption()) {
          Status q = chunks.Quarantine(digests[i]);
          if (q.ok()) s = s.WithContext("moved to quarantine/");
        }
        outcome[i] = std::move(s);
        done[i] = 1;
        return Status::OK();
      },
      [&] { return Cancelled(options); });
  for (size_t i = 0; i < digests.size(); ++i) {
    if (!done[i]) continue;
    add(outcome[i]);
    ++report.read;
    if (checked) checked->Record(chunks, digests[i], std::move(outcome[i]));
  }
  return report;
}

}  // namespace backy::backup
