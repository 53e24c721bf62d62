#include "backup/copy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "backup/parallel_for.h"
#include "backup/progress.h"
#include "store/test_point.h"

namespace backy::backup {

namespace {

using store::Repository;
using store::Revision;
using store::RevisionIndex;

bool Cancelled(const CopyOptions& o) {
  return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

// What the target holds before the copy: its healthy revisions by id, and
// the ids of damaged ones (which cannot be compared, so are never
// replaced).
struct TargetRevisions {
  std::map<std::string, Revision> healthy;
  std::set<std::string> damaged;
};

Result<TargetRevisions> ListTarget(Repository& to) {
  auto scan = to.ScanRevisions();
  if (!scan.ok()) return scan.status();
  TargetRevisions t;
  for (auto& r : scan->healthy) t.healthy.emplace(r.id, std::move(r));
  for (const auto& d : scan->damaged) t.damaged.insert(d.id);
  return t;
}

bool SameIndex(const RevisionIndex& a, const RevisionIndex& b) {
  if (a.image_size() != b.image_size() || a.chunk_size() != b.chunk_size() ||
      a.slot_count() != b.slot_count()) {
    return false;
  }
  for (size_t i = 0; i < a.slot_count(); ++i) {
    if (a.slot(i) != b.slot(i)) return false;
  }
  return true;
}

// A chunk to copy and the plain length every slot naming it has.
struct ChunkToCopy {
  Digest digest;
  uint32_t length;
};

// The distinct chunks `index` names (zero slots have none), in slot
// order, so that reads go through the source roughly sequentially.
std::vector<ChunkToCopy> DistinctChunks(const RevisionIndex& index) {
  std::vector<ChunkToCopy> chunks;
  std::unordered_map<Digest, size_t, DigestHash> seen;
  for (size_t i = 0; i < index.slot_count(); ++i) {
    if (index.IsZero(i)) continue;
    if (seen.emplace(index.slot(i), chunks.size()).second) {
      chunks.push_back({index.slot(i), index.SlotLength(i)});
    }
  }
  return chunks;
}

// Counters the chunk copiers share.
struct ChunkCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> present{0};
  std::atomic<uint64_t> bytes{0};
};

// Puts every chunk of `chunks` the target lacks into `to`, read from
// `from` and checked against its digest and its slot length first.
// Stops at the first error (returned, naming the chunk) or on cancel.
Status SendChunks(store::ChunkStore& from, store::ChunkStore& to,
                  const std::vector<ChunkToCopy>& chunks,
                  const CopyOptions& options, const std::string& label,
                  ChunkCounters* counters) {
  uint64_t total = 0;
  for (const auto& c : chunks) total += c.length;
  Progress progress(label, total);
  // Reading and writing chunks waits on disks (or the network) more than
  // on the CPU: more copiers than cores keep both busy.
  const unsigned workers =
      options.workers ? options.workers : std::max(4u, 2 * WorkerCount(0));
  std::vector<std::vector<uint8_t>> bufs(workers);
  return ParallelFor(
      chunks.size(), workers,
      [&](unsigned w, size_t i) {
        const ChunkToCopy& c = chunks[i];
        auto has = to.Contains(c.digest);
        if (!has.ok()) return has.status();
        if (*has) {
          ++counters->present;
          progress.Add(c.length);
          return Status::OK();
        }
        std::vector<uint8_t>& buf = bufs[w];
        Status s = from.Get(c.digest, &buf);
        if (!s.ok()) return s.WithContext("chunk " + c.digest.Hex());
        // Checked again on arrival, whatever the source's store checked:
        // the target's dedup trusts a chunk's name for ever after.
        if (buf.size() != c.length) {
          return Status::Corruption(
              fmt::format("chunk {} has {} bytes, its slot {}", c.digest.Hex(),
                          buf.size(), c.length),
              from.ChunkName(c.digest));
        }
        if (Digest::Of(buf) != c.digest) {
          return Status::Corruption(
              "chunk " + c.digest.Hex() + " does not match its digest",
              from.ChunkName(c.digest));
        }
        auto put = to.Put(c.digest, buf);
        if (!put.ok()) return put.status();
        if (put->created) {
          ++counters->sent;
          counters->bytes += buf.size();
        } else {
          ++counters->present;  // another copier put it meanwhile
        }
        progress.Add(c.length);
        TestPoint("copy-chunk");
        return Status::OK();
      },
      [&] { return Cancelled(options); });
}

enum class Outcome { kCopied, kSkipped, kInterrupted };

// Copies one revision: compares it with a revision of the same id in the
// target, or sends its chunks and publishes it.
Result<Outcome> CopyOne(Repository& from, Repository& to, const Revision& rev,
                        const TargetRevisions& target,
                        const CopyOptions& options, CopyStats* stats) {
  if (target.damaged.count(rev.id)) {
    return Status::Corruption(
        "the target holds a damaged revision of this id; not overwritten");
  }
  auto pin = from.PinRevision(rev, "copy");
  if (!pin.ok()) return pin.status();
  auto index = pin->LoadIndex();
  if (!index.ok()) return index.status();
  if (index->image_size() != rev.size) {
    return Status::Corruption("index size differs from revision size");
  }
  auto existing = target.healthy.find(rev.id);
  if (existing != target.healthy.end()) {
    auto theirs = to.LoadIndex(existing->second);
    if (!theirs.ok()) return theirs.status();
    if (existing->second.size != rev.size || !SameIndex(*index, *theirs)) {
      return Status::InvalidArgument(
          "the target holds another revision of this id (another image?); "
          "not overwritten");
    }
    return Outcome::kSkipped;
  }
  ChunkCounters counters;
  Status s = SendChunks(from.ChunksOf(rev), to.chunks(), DistinctChunks(*index),
                        options, "copy " + rev.id, &counters);
  // The chunks sent are kept also when the revision fails or is
  // cancelled: the next run finds them and does not send them again.
  stats->chunks_sent += counters.sent;
  stats->chunks_present += counters.present;
  stats->bytes_sent += counters.bytes;
  Status synced = to.chunks().Sync();
  if (!s.ok()) return s;
  if (!synced.ok()) return synced;
  if (Cancelled(options)) return Outcome::kInterrupted;
  s = to.Publish(rev, *index);
  if (!s.ok()) return s;
  TestPoint("copy-published");
  return Outcome::kCopied;
}

}  // namespace

std::string CopySummary(const CopyStats& stats) {
  std::string failed = stats.failed.empty()
                           ? ""
                           : fmt::format(", {} failed", stats.failed.size());
  return fmt::format(
      "{} revision{} copied, {} skipped{}; {} chunk{} sent ({}), {} already "
      "there; {:.1f} s{}",
      stats.revisions_copied, stats.revisions_copied == 1 ? "" : "s",
      stats.revisions_skipped, failed, stats.chunks_sent,
      stats.chunks_sent == 1 ? "" : "s", FormatBytes(stats.bytes_sent),
      stats.chunks_present, stats.seconds,
      stats.interrupted ? ", interrupted" : "");
}

Result<CopyStats> CopyRevisions(Repository& from, Repository& to,
                                const std::vector<Revision>& revisions,
                                const CopyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Status s = from.RequireCurrentFormat("copy");
  if (!s.ok()) return s;
  s = to.RequireCurrentFormat("copy");
  if (!s.ok()) return s;
  auto locks = to.LockWriter("copy");
  if (!locks.ok()) return locks.status();
  // What a killed copy (or backup) left in the target: temporary files,
  // indexes that were never published.
  Status left = to.RemoveLeftovers();
  if (!left.ok()) return left;
  auto target = ListTarget(to);
  if (!target.ok()) return target.status();

  // Oldest first: a later revision's chunks are mostly its parent's, which
  // are then there already; and an interrupted copy leaves a prefix.
  std::vector<Revision> todo = revisions;
  std::sort(todo.begin(), todo.end(), store::IsOlder);
  todo.erase(std::unique(todo.begin(), todo.end(),
                         [](const Revision& a, const Revision& b) {
                           return a.id == b.id;
                         }),
             todo.end());

  CopyStats stats;
  for (const Revision& rev : todo) {
    if (Cancelled(options)) {
      stats.interrupted = true;
      break;
    }
    auto outcome = CopyOne(from, to, rev, *target, options, &stats);
    if (!outcome.ok()) {
      Status failure = outcome.status().WithContext("revision " + rev.id);
      spdlog::error("copy: {}", failure.Message());
      stats.failed.push_back({rev.id, std::move(failure)});
      continue;
    }
    switch (*outcome) {
      case Outcome::kCopied:
        ++stats.revisions_copied;
        spdlog::debug("copy: revision {} copied", rev.id);
        break;
      case Outcome::kSkipped:
        ++stats.revisions_skipped;
        spdlog::debug("copy: revision {} is there already", rev.id);
        break;
      case Outcome::kInterrupted:
        stats.interrupted = true;
        break;
    }
    if (stats.interrupted) break;
  }
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}

}  // namespace backy::backup
