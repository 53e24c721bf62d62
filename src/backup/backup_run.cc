#include "backup/backup_run.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "backup/parallel_for.h"
#include "backup/progress.h"
#include "backup/slot_walk.h"
#include "backup/verify.h"
#include "store/digest.h"
#include "store/test_point.h"

namespace backy::backup {

using store::Repository;
using store::Revision;
using store::RevisionIndex;

namespace {

// Test points (see store/test_point.h) for crash and lock tests: "chunks"
// (after half the chunks are stored), "synced" (chunks durable, before
// verification), "index" (in Repository::Publish, after the index is
// published), "published" (after the metadata is published, before the
// source commits).

bool Cancelled(const BackupOptions& o) {
  return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

// One backup between its steps.
struct Run {
  Run(Repository& r, sources::Source& src, const BackupOptions& o)
      : repo(r), source(src), options(o) {}
  Repository& repo;
  sources::Source& source;
  const BackupOptions& options;
  Revision rev;
  RevisionIndex index;
  std::string base;        // parent the source diffs from; "" = read all
  uint64_t base_size = 0;  // the base's image size
  bool rewrite = false;    // replace existing chunk files (distrusted parent)
  std::vector<Digest> created;   // chunks this backup wrote
  std::vector<Digest> replaced;  // existing chunks rewritten (verify only)
  bool published = false;
};

// Image byte ranges [begin, end).
using ByteRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// What to do with one slot of the new revision.
struct SlotPlan {
  size_t slot;
  // Data ranges within the image to read for this slot; the rest of the
  // slot reads as zeros.
  ByteRanges ranges;
};

Status CheckTags(const std::set<std::string>& tags) {
  if (tags.empty()) {
    return Status::InvalidArgument("a backup needs at least one tag");
  }
  for (const auto& t : tags) {
    Status s = store::ValidateTag(t);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// Picks what the backup starts from: with a usable parent (same chunk
// size, the source can diff from it, not distrusted, no full backup asked
// for) its index, which the diff then updates; else an empty index and a
// full read. A distrusted parent also makes every chunk be rewritten.
Status ChooseBase(Run& run, const std::vector<Revision>& revisions) {
  run.index = RevisionIndex(run.rev.size, run.rev.chunk_size);
  if (revisions.empty()) return Status::OK();
  const Revision& parent = revisions.back();
  run.rev.parent = parent.id;
  if (run.options.full) {
    spdlog::info("backup: full backup requested; reading everything");
  } else if (parent.trust == store::Trust::kDistrusted) {
    spdlog::warn(
        "backup: newest revision {} is distrusted; reading everything "
        "and rewriting every chunk",
        parent.id);
    run.rewrite = true;
  } else if (run.source.CanDiffFrom(parent.id)) {
    auto parent_index = run.repo.LoadIndex(parent.id);
    if (!parent_index.ok()) return parent_index.status();
    if (parent_index->chunk_size() == run.rev.chunk_size) {
      run.base = parent.id;
      run.base_size = parent.size;
      run.index = std::move(*parent_index);
      run.index.Resize(run.rev.size);
    }
  } else if (run.source.verify_mode() == sources::VerifyMode::kSample) {
    // Snapshot sources (RBD) normally keep the parent's snapshot; if it
    // is gone, an operator removed it, which costs a full read.
    spdlog::warn(
        "backup: the snapshot of parent revision {} is gone from "
        "{}; reading everything (full backup)",
        parent.id, run.source.Name());
  }
  return Status::OK();
}

// After a resize, a slot whose length changed holds different content
// than its parent digest says, even where the diff reports nothing: adds
// the old last slot (if partial) and the new last slot to `extents`.
void AddResizedSlots(uint64_t old_size, uint64_t new_size, uint64_t cs,
                     ExtentList* extents) {
  if (old_size == new_size) return;
  for (uint64_t size : {old_size, new_size}) {
    const uint64_t start = size / cs * cs;
    if (size % cs != 0 && start < new_size) {
      extents->push_back({start, std::min<uint64_t>(cs, new_size - start),
                          Extent::Kind::kData});
    }
  }
  std::sort(
      extents->begin(), extents->end(),
      [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
}

// What the extents say about a slot.
enum class Touch : uint8_t {
  kUntouched,  // no extent: zero (full read) or unchanged (diff)
  kRead,       // data, or partly discarded: read it
  kZero,       // discarded as a whole
};

// Marks each slot of `index` with what `extents` say about it.
std::vector<Touch> TouchSlots(const ExtentList& extents,
                              const RevisionIndex& index) {
  std::vector<Touch> touched(index.slot_count(), Touch::kUntouched);
  for (const Extent& e : extents) {
    const uint64_t end = std::min(e.end(), index.image_size());
    if (e.offset >= end) continue;
    auto mark = [&](const SlotPiece& p) {
      if (e.kind == Extent::Kind::kData) {
        touched[p.slot] = Touch::kRead;
      } else if (touched[p.slot] == Touch::kUntouched) {
        // A zero extent covering the whole slot makes it a zero slot; a
        // partial one means part of the slot changed: read it whole.
        touched[p.slot] = p.whole() ? Touch::kZero : Touch::kRead;
      }
    };
    (void)ForEachSlotPiece(index, e.offset, end - e.offset, mark);
  }
  return touched;
}

// The data ranges of the sorted `extents` within [slot_start, slot_end);
// `*ext` is the first extent that may reach it (advanced, as slots come in
// order).
ByteRanges DataRanges(const ExtentList& extents, size_t* ext,
                      uint64_t slot_start, uint64_t slot_end) {
  ByteRanges ranges;
  while (*ext < extents.size() && extents[*ext].end() <= slot_start) ++*ext;
  for (size_t j = *ext; j < extents.size() && extents[j].offset < slot_end;
       ++j) {
    if (extents[j].kind != Extent::Kind::kData) continue;
    ranges.emplace_back(std::max(slot_start, extents[j].offset),
                        std::min(slot_end, extents[j].end()));
  }
  return ranges;
}

// Works out which slots must be read. With `diff` false, `extents` lists
// everything that may hold data; unlisted slots are zero. With `diff` true,
// `extents` lists what changed; untouched slots keep `index`'s digest.
// Sets the zero slots in `index` and counts zero and carried slots.
std::vector<SlotPlan> PlanSlots(const ExtentList& extents, bool diff,
                                RevisionIndex* index, Revision* rev) {
  const std::vector<Touch> touched = TouchSlots(extents, *index);
  std::vector<SlotPlan> plan;
  size_t ext = 0;
  for (size_t s = 0; s < index->slot_count(); ++s) {
    if (touched[s] == Touch::kZero ||
        (touched[s] == Touch::kUntouched && !diff)) {
      index->set_slot(s, Digest());
      ++rev->stats.chunks_zero;
    } else if (touched[s] == Touch::kUntouched) {
      ++(index->IsZero(s) ? rev->stats.chunks_zero : rev->stats.chunks_carried);
    } else {
      const uint64_t slot_start = s * index->chunk_size();
      const uint64_t slot_end = slot_start + index->SlotLength(s);
      // A diff reads changed slots whole; a full read only their data.
      plan.push_back(
          {s, diff ? ByteRanges{{slot_start, slot_end}}
                   : DataRanges(extents, &ext, slot_start, slot_end)});
    }
  }
  return plan;
}

// Reads slot `p` into `data` (the slot's length): holes inside the slot are
// never read, only zeroed.
Status ReadSlot(sources::Source& source, const SlotPlan& p, uint64_t slot_start,
                std::span<uint8_t> data) {
  uint64_t covered = 0;
  for (auto [b, e] : p.ranges) covered += e - b;
  if (covered != data.size()) std::fill(data.begin(), data.end(), 0);
  for (auto [b, e] : p.ranges) {
    Status s = source.Read(b, data.subspan(b - slot_start, e - b));
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// What one worker of StoreSlots counted.
struct StoreCounts {
  uint64_t zero = 0, reused = 0, written_chunks = 0, written_bytes = 0;
};

// Stores the chunks of one backup, deduplicating against the store and
// remembering which chunks the backup wrote. Thread-safe.
class ChunkWriter {
 public:
  explicit ChunkWriter(Run& run) : run_(run) {}

  // Stores `data` as chunk `d` (unless stored already) and counts it.
  Status Store(const Digest& d, std::span<const uint8_t> data,
               StoreCounts* counts) {
    auto put = AlreadyRewritten(d)
                   ? Result<store::PutResult>(store::PutResult{})
                   : run_.repo.chunks().Put(d, data, run_.rewrite);
    if (!put.ok()) return put.status();
    std::lock_guard<std::mutex> l(mu_);
    if ((put->created || put->replaced) && seen_.insert(d).second) {
      // A replaced chunk is referenced by published revisions: it is
      // verified like a new one but never deleted on failure.
      (put->created ? run_.created : run_.replaced).push_back(d);
      ++counts->written_chunks;
      counts->written_bytes += put->stored_bytes;
    } else {
      ++counts->reused;
    }
    return Status::OK();
  }

 private:
  // When rewriting, a chunk this run wrote already needs no second write.
  bool AlreadyRewritten(const Digest& d) {
    if (!run_.rewrite) return false;
    std::lock_guard<std::mutex> l(mu_);
    return seen_.count(d) > 0;
  }

  Run& run_;
  std::mutex mu_;
  std::set<Digest> seen_;  // digests stored by this run, GUARDED_BY(mu_)
};

// Reads and stores the planned slots with a pool of workers; fills the
// index and the stats; collects the digests this backup wrote.
Status StoreSlots(Run& run, const std::vector<SlotPlan>& plan) {
  RevisionIndex& index = run.index;
  uint64_t total = 0;
  for (const auto& p : plan) total += index.SlotLength(p.slot);
  Progress progress("backup", total);
  ChunkWriter writer(run);
  const unsigned workers = WorkerCount(run.options.workers);
  std::vector<std::vector<uint8_t>> bufs(workers);
  std::vector<StoreCounts> counts(workers);

  auto store_slot = [&](unsigned w, size_t i) {
    const SlotPlan& p = plan[i];
    bufs[w].resize(index.chunk_size());
    std::span<uint8_t> data(bufs[w].data(), index.SlotLength(p.slot));
    Status s =
        ReadSlot(run.source, p,
                 static_cast<uint64_t>(p.slot) * index.chunk_size(), data);
    if (!s.ok()) return s;
    if (IsAllZero(data)) {
      index.set_slot(p.slot, Digest());
      ++counts[w].zero;
    } else {
      const Digest d = Digest::Of(data);
      s = writer.Store(d, data, &counts[w]);
      if (!s.ok()) return s;
      index.set_slot(p.slot, d);
    }
    progress.Add(data.size());
    if (i == plan.size() / 2) TestPoint("chunks");
    return Status::OK();
  };
  Status s = ParallelFor(plan.size(), workers, store_slot,
                         [&] { return Cancelled(run.options); });
  for (const StoreCounts& c : counts) {
    run.rev.stats.chunks_zero += c.zero;
    run.rev.stats.chunks_reused += c.reused;
    run.rev.stats.chunks_new += c.written_chunks;
    run.rev.stats.bytes_written += c.written_bytes;
  }
  if (!s.ok()) return s;
  if (Cancelled(run.options)) return Status::Interrupted("backup interrupted");
  return Status::OK();
}

// Checks what the backup stored: file sources read back every chunk it
// wrote; snapshot sources compare a sample with the source.
Status VerifyStored(Run& run) {
  std::vector<Digest> written = run.created;
  written.insert(written.end(), run.replaced.begin(), run.replaced.end());
  VerifyOptions vo;
  vo.workers = run.options.workers;
  vo.cancel = run.options.cancel;
  vo.budget = run.options.verify_budget;
  vo.sample = run.options.verify_sample;
  if (run.source.verify_mode() == sources::VerifyMode::kFull) {
    return VerifyReadback(run.repo, written, vo, &run.rev.verification);
  }
  return VerifySample(run.repo, run.source, run.index, written, vo,
                      &run.rev.verification);
}

// A sampled mismatch (`verify_error`) may lie in a chunk carried over
// from older revisions (now quarantined), so a retry must not diff from
// the parent: publishes the revision as distrusted (visible in status),
// which makes the next backup read everything. Returns the verification
// error, with what became of the revision.
Status PublishDistrusted(Run& run, const Status& verify_error) {
  run.rev.trust = store::Trust::kDistrusted;
  Status p = run.repo.Publish(run.rev, run.index);
  if (!p.ok()) {
    spdlog::error(
        "backup: revision {} could not be published as distrusted: {}",
        run.rev.id, p.ToString());
    return verify_error.WithContext("nothing published (" + p.ToString() + ")");
  }
  run.published = true;
  run.source.Abort();  // its snapshot is no base for the next backup
  return verify_error.WithContext("revision " + run.rev.id +
                                  " published as distrusted; the next backup "
                                  "reads everything");
}

// Publishes the verified revision and lets the source drop old state.
Status PublishAndCommit(Run& run) {
  Status s = run.repo.Publish(run.rev, run.index);
  if (!s.ok()) return s;
  run.published = true;
  TestPoint("published");
  s = run.source.Commit(run.rev.id);
  if (!s.ok()) {
    spdlog::warn(
        "backup: revision {} published, but the source could not "
        "clean up: {}",
        run.rev.id, s.ToString());
  }
  return Status::OK();
}

// The steps after the source is frozen, up to publishing.
Status BackupFrozenSource(Run& run, const std::vector<Revision>& revisions,
                          std::chrono::steady_clock::time_point start) {
  Status s = ChooseBase(run, revisions);
  if (!s.ok()) return s;
  ExtentList extents;
  s = run.source.Extents(run.base, &extents);
  if (!s.ok()) return s;
  run.rev.stats.extents_changed = extents.size();
  if (!run.base.empty()) {
    AddResizedSlots(run.base_size, run.rev.size, run.rev.chunk_size, &extents);
  }
  std::vector<SlotPlan> plan =
      PlanSlots(extents, !run.base.empty(), &run.index, &run.rev);
  spdlog::debug("backup: {} slots, {} to read, base '{}'",
                run.index.slot_count(), plan.size(), run.base);

  s = StoreSlots(run, plan);
  if (!s.ok()) return s;
  // What the backup itself read; sampled verification reads more.
  run.rev.stats.bytes_read = run.source.bytes_read();
  s = run.repo.chunks().Sync();
  if (!s.ok()) return s;
  TestPoint("synced");
  // File sources have no snapshot: what was read must still be the image
  // whose size the revision records.
  s = run.source.CheckUnchanged();
  if (!s.ok()) return s.WithContext("nothing published");

  s = VerifyStored(run);
  const bool distrust = s.IsCorruption() && run.source.verify_mode() ==
                                                sources::VerifyMode::kSample;
  if (!s.ok() && !distrust) return s;
  SetVerificationRatios(run.index, &run.rev.verification);
  run.rev.stats.duration =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (Cancelled(run.options)) return Status::Interrupted("backup interrupted");
  if (distrust) return PublishDistrusted(run, s);
  return PublishAndCommit(run);
}

// On failure: undoes the source's snapshot and deletes the chunks this
// backup created. No published revision can refer to them (they did not
// exist before), and the backup holds the writer lock, so this is safe
// and frees the space at once (a full disk stays recoverable without a
// purge).
struct AbortUnlessPublished {
  Run& run;
  ~AbortUnlessPublished() {
    if (run.published) return;
    run.source.Abort();
    for (const Digest& d : run.created) (void)run.repo.chunks().Remove(d);
    (void)run.repo.chunks().Sync();
  }
};

}  // namespace

Result<Revision> RunBackup(Repository& repo, sources::Source& source,
                           const BackupOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Status s = repo.RequireCurrentFormat("backup");
  if (!s.ok()) return s;
  s = CheckTags(options.tags);
  if (!s.ok()) return s;
  auto locks = repo.LockWriter("backup");
  if (!locks.ok()) return locks.status();
  s = repo.RemoveLeftovers();
  if (!s.ok()) return s;
  auto revisions = repo.Revisions();
  if (!revisions.ok()) return revisions.status();

  Run run(repo, source, options);
  run.rev.id = store::NewRevisionId();
  run.rev.timestamp_us = store::NowMicros();
  run.rev.tags = options.tags;
  run.rev.chunk_size = store::kDefaultChunkSize;
  run.rev.source = source.Name();
  s = source.Begin(run.rev.id);
  if (!s.ok()) return s;
  run.rev.size = source.Size();

  {
    AbortUnlessPublished guard{run};
    s = BackupFrozenSource(run, *revisions, start);
  }
  if (!s.ok()) return s;
  return run.rev;
}

}  // namespace backy::backup
