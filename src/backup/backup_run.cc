#include "backup/backup_run.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "backup/progress.h"
#include "backup/workers.h"
#include "store/digest.h"

namespace backy::backup {

using store::Repository;
using store::Revision;
using store::RevisionIndex;

namespace {

// Test hook for crash and lock tests: BACKY_TEST_HOOK="POINT:kill" kills
// the process with SIGKILL when the backup reaches POINT; "POINT:sleep=N"
// sleeps N seconds there. Points: chunks (after half the chunks are
// stored), synced (chunks durable, before verification), index (after the
// index is published), published (after the metadata is published, before
// the source commits).
void TestHook(std::string_view point) {
  static const char* hook = std::getenv("BACKY_TEST_HOOK");
  if (!hook) return;
  std::string_view h(hook);
  if (!h.starts_with(point) || h.size() <= point.size() ||
      h[point.size()] != ':') {
    return;
  }
  std::string_view action = h.substr(point.size() + 1);
  if (action == "kill") {
    ::kill(::getpid(), SIGKILL);
  } else if (action.starts_with("sleep=")) {
    ::sleep(std::stoi(std::string(action.substr(6))));
  }
}

// What to do with one slot of the new revision.
struct SlotPlan {
  size_t slot;
  // Data ranges within the image to read for this slot; the rest of the
  // slot reads as zeros.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
};

// Works out which slots must be read. With `diff` false, `extents` lists
// everything that may hold data; unlisted slots are zero. With `diff` true,
// `extents` lists what changed; untouched slots keep `index`'s digest.
std::vector<SlotPlan> PlanSlots(const ExtentList& extents, bool diff,
                                RevisionIndex* index, Revision* rev) {
  const uint64_t cs = index->chunk_size();
  std::vector<SlotPlan> plan;
  std::vector<uint8_t> touched(index->slot_count(), 0);  // 1 data, 2 zero
  for (const Extent& e : extents) {
    if (e.length == 0) continue;
    uint64_t end = std::min(e.end(), index->image_size());
    for (uint64_t s = e.offset / cs; s * cs < end; ++s) {
      if (e.kind == Extent::Kind::kData) {
        touched[s] = 1;
      } else if (touched[s] == 0) {
        // A zero extent covering the whole slot makes it a zero slot; a
        // partial one means part of the slot changed: read it whole.
        uint64_t slot_start = s * cs,
                 slot_end = slot_start + index->SlotLength(s);
        bool whole = e.offset <= slot_start && e.end() >= slot_end;
        touched[s] = whole ? 2 : 1;
      }
    }
  }
  // Map data ranges onto slots (full mode reads only data ranges).
  size_t ext = 0;
  for (size_t s = 0; s < index->slot_count(); ++s) {
    if (touched[s] == 2) {
      index->set_slot(s, Digest());
      ++rev->stats.chunks_zero;
      continue;
    }
    if (touched[s] == 0) {
      if (diff) {
        if (index->IsZero(s)) {
          ++rev->stats.chunks_zero;
        } else {
          ++rev->stats.chunks_carried;
        }
      } else {
        index->set_slot(s, Digest());
        ++rev->stats.chunks_zero;
      }
      continue;
    }
    SlotPlan p{s, {}};
    const uint64_t slot_start = s * cs;
    const uint64_t slot_end = slot_start + index->SlotLength(s);
    if (diff) {
      p.ranges.emplace_back(slot_start, slot_end);
    } else {
      while (ext < extents.size() && extents[ext].end() <= slot_start) ++ext;
      for (size_t j = ext; j < extents.size() && extents[j].offset < slot_end;
           ++j) {
        if (extents[j].kind != Extent::Kind::kData) continue;
        p.ranges.emplace_back(std::max(slot_start, extents[j].offset),
                              std::min(slot_end, extents[j].end()));
      }
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

bool Cancelled(const BackupOptions& o) {
  return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

// Reads and stores the planned slots with a pool of workers; fills the
// index and stats; collects the digests this backup created.
Status StoreSlots(Repository& repo, sources::Source& source,
                  const std::vector<SlotPlan>& plan,
                  const BackupOptions& options, bool rewrite,
                  RevisionIndex* index, Revision* rev,
                  std::vector<Digest>* created, std::vector<Digest>* replaced) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;  // GUARDED_BY(mu)
  std::atomic<bool> failed{false};
  std::set<Digest> seen;  // digests stored by this run, GUARDED_BY(mu)
  uint64_t total = 0;
  for (const auto& p : plan) total += index->SlotLength(p.slot);
  Progress progress("backup", total);

  auto worker = [&] {
    std::vector<uint8_t> buf(index->chunk_size());
    uint64_t zero = 0, reused = 0, written_chunks = 0, written_bytes = 0;
    while (!failed.load(std::memory_order_relaxed) && !Cancelled(options)) {
      size_t i = next.fetch_add(1);
      if (i >= plan.size()) break;
      const SlotPlan& p = plan[i];
      const uint32_t len = index->SlotLength(p.slot);
      std::span<uint8_t> data(buf.data(), len);
      const uint64_t slot_start =
          static_cast<uint64_t>(p.slot) * index->chunk_size();
      // Holes inside the slot are never read: zero first, read data ranges.
      uint64_t covered = 0;
      for (auto [b, e] : p.ranges) covered += e - b;
      if (covered != len) std::fill(data.begin(), data.end(), 0);
      Status s;
      for (auto [b, e] : p.ranges) {
        s = source.Read(b, data.subspan(b - slot_start, e - b));
        if (!s.ok()) break;
      }
      if (s.ok()) {
        if (IsAllZero(data)) {
          index->set_slot(p.slot, Digest());
          ++zero;
        } else {
          Digest d = Digest::Of(data);
          bool again = false;
          if (rewrite) {
            std::lock_guard<std::mutex> l(mu);
            again = seen.count(d) > 0;  // rewritten by this run already
          }
          auto put = again ? Result<store::PutResult>(store::PutResult{})
                           : repo.chunks().Put(d, data, rewrite);
          if (put.ok()) {
            index->set_slot(p.slot, d);
            std::lock_guard<std::mutex> l(mu);
            if ((put->created || put->replaced) && seen.insert(d).second) {
              // A replaced chunk is referenced by published revisions: it
              // is verified like a new one but never deleted on failure.
              (put->created ? created : replaced)->push_back(d);
              ++written_chunks;
              written_bytes += put->stored_bytes;
            } else {
              ++reused;
            }
          } else {
            s = put.status();
          }
        }
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        if (first_error.ok()) first_error = s;
        failed = true;
        break;
      }
      progress.Add(len);
      if (i == plan.size() / 2) TestHook("chunks");
    }
    std::lock_guard<std::mutex> l(mu);
    rev->stats.chunks_zero += zero;
    rev->stats.chunks_reused += reused;
    rev->stats.chunks_new += written_chunks;
    rev->stats.bytes_written += written_bytes;
  };

  const unsigned n = std::min<size_t>(WorkerCount(options.workers),
                                      std::max<size_t>(plan.size(), 1));
  RunWorkers(n, worker);
  if (!first_error.ok()) return first_error;
  if (Cancelled(options)) return Status::Interrupted("backup interrupted");
  return Status::OK();
}

// File sources: read back every chunk this backup wrote and check it.
Status VerifyReadback(Repository& repo, const std::vector<Digest>& created,
                      const BackupOptions& options, store::Verification* v) {
  v->method = "readback";
  v->chunks_total = created.size();
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    std::vector<uint8_t> buf;
    while (!Cancelled(options)) {
      size_t i = next.fetch_add(1);
      if (i >= created.size()) break;
      Status s = repo.chunks().Get(created[i], &buf);
      if (!s.ok()) {
        spdlog::error("verification: {}", s.ToString());
        if (s.IsCorruption()) (void)repo.chunks().Quarantine(created[i]);
        std::lock_guard<std::mutex> l(mu);
        if (first_error.ok()) first_error = s;
        continue;
      }
      std::lock_guard<std::mutex> l(mu);
      ++v->chunks_checked;
    }
  };
  RunWorkers(WorkerCount(options.workers), worker);
  if (!first_error.ok()) return first_error.WithContext("verification failed");
  if (Cancelled(options)) return Status::Interrupted("backup interrupted");
  v->complete = v->chunks_checked == v->chunks_total;
  return Status::OK();
}

// RBD sources: compare chunks against the source snapshot — every chunk
// written by this backup and a random sample of the others — within the
// time budget.
Status VerifySample(Repository& repo, sources::Source& source,
                    const RevisionIndex& index,
                    const std::vector<Digest>& created,
                    const BackupOptions& options, store::Verification* v) {
  v->method = "sample";
  std::set<Digest> fresh(created.begin(), created.end());
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
      std::ceil(options.verify_sample * static_cast<double>(data_slots)));
  want_others = std::min(want_others, others.size());
  std::vector<size_t> order = must;
  order.insert(order.end(), others.begin(), others.begin() + want_others);
  v->chunks_total = order.size();
  const auto deadline =
      std::chrono::steady_clock::now() + options.verify_budget;

  std::atomic<size_t> next{0};
  std::atomic<bool> out_of_time{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    std::vector<uint8_t> stored, live(index.chunk_size());
    while (!Cancelled(options)) {
      if (std::chrono::steady_clock::now() > deadline) {
        out_of_time = true;
        break;
      }
      size_t i = next.fetch_add(1);
      if (i >= order.size()) break;
      const size_t slot = order[i];
      const Digest& d = index.slot(slot);
      Status s = repo.chunks().Get(d, &stored);
      // A damaged chunk is moved away so that the next (full) backup
      // writes a fresh copy instead of deduplicating against it.
      if (s.IsCorruption()) (void)repo.chunks().Quarantine(d);
      std::span<uint8_t> src(live.data(), index.SlotLength(slot));
      if (s.ok()) {
        s = source.Read(static_cast<uint64_t>(slot) * index.chunk_size(), src);
      }
      if (s.ok() && Digest::Of(src) != d) {
        s = Status::Corruption("chunk " + d.Hex() + " differs from slot " +
                                   std::to_string(slot) + " of the source",
                               source.Name());
      }
      std::lock_guard<std::mutex> l(mu);
      if (!s.ok()) {
        spdlog::error("verification: {}", s.ToString());
        if (first_error.ok()) first_error = s;
      } else {
        ++v->chunks_checked;
      }
    }
  };
  RunWorkers(WorkerCount(options.workers), worker);
  if (!first_error.ok()) return first_error.WithContext("verification failed");
  if (Cancelled(options)) return Status::Interrupted("backup interrupted");
  v->complete = !out_of_time && v->chunks_checked == v->chunks_total;
  return Status::OK();
}

}  // namespace

Status ValidateTag(const std::string& tag) {
  if (tag.empty()) return Status::InvalidArgument("empty tag");
  for (char c : tag) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '/') {
      return Status::InvalidArgument(
          "tag must not contain whitespace, ',' or '/'", tag);
    }
  }
  return Status::OK();
}

Result<Revision> RunBackup(Repository& repo, sources::Source& source,
                           const BackupOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.tags.empty()) {
    return Status::InvalidArgument("a backup needs at least one tag");
  }
  for (const auto& t : options.tags) {
    Status s = ValidateTag(t);
    if (!s.ok()) return s;
  }
  auto locks = repo.LockWriter("backup");
  if (!locks.ok()) return locks.status();
  Status s = repo.RemoveLeftovers();
  if (!s.ok()) return s;
  auto revisions = repo.Revisions();
  if (!revisions.ok()) return revisions.status();

  Revision rev;
  rev.id = store::NewRevisionId();
  rev.timestamp_us = store::NowMicros();
  rev.tags = options.tags;
  rev.chunk_size = store::kDefaultChunkSize;
  rev.source = source.Name();

  s = source.Begin(rev.id);
  if (!s.ok()) return s;
  bool published = false;
  std::vector<Digest> created;  // chunks this backup wrote
  // On failure: undo the source's snapshot and delete the chunks this
  // backup created. No published revision can refer to them (they did not
  // exist before), and we hold the writer lock, so this is safe and frees
  // the space at once (a full disk stays recoverable without a purge).
  struct AbortGuard {
    Repository& repo;
    sources::Source& src;
    const std::vector<Digest>& created;
    bool& published;
    ~AbortGuard() {
      if (published) return;
      src.Abort();
      for (const Digest& d : created) (void)repo.chunks().Remove(d);
      (void)repo.chunks().Sync();
    }
  } guard{repo, source, created, published};

  rev.size = source.Size();
  RevisionIndex index(rev.size, rev.chunk_size);
  std::string base;
  bool rewrite = false;  // replace existing chunk files (distrusted parent)
  if (!revisions->empty()) {
    const Revision& parent = revisions->back();
    rev.parent = parent.id;
    if (options.full) {
      spdlog::info("backup: full backup requested; reading everything");
    } else if (parent.trust == store::Trust::kDistrusted) {
      spdlog::warn(
          "backup: newest revision {} is distrusted; reading everything "
          "and rewriting every chunk",
          parent.id);
      rewrite = true;
    } else if (source.CanDiffFrom(parent.id)) {
      auto parent_index = repo.LoadIndex(parent.id);
      if (!parent_index.ok()) return parent_index.status();
      if (parent_index->chunk_size() == rev.chunk_size) {
        base = parent.id;
        index = std::move(*parent_index);
        index.Resize(rev.size);
      }
    } else if (source.verify_mode() == sources::VerifyMode::kSample) {
      // Snapshot sources (RBD) normally keep the parent's snapshot; if it
      // is gone, an operator removed it, which costs a full read.
      spdlog::warn(
          "backup: the snapshot of parent revision {} is gone from "
          "{}; reading everything (full backup)",
          parent.id, source.Name());
    }
  }

  ExtentList extents;
  s = source.Extents(base, &extents);
  if (!s.ok()) return s;
  rev.stats.extents_changed = extents.size();
  if (!base.empty() && revisions->back().size != rev.size) {
    // A slot whose length changed with the resize holds different content
    // than its parent digest says, even where the diff reports nothing:
    // re-read the old last slot (if partial) and the new last slot.
    const uint64_t cs = rev.chunk_size;
    for (uint64_t size : {revisions->back().size, rev.size}) {
      const uint64_t start = size / cs * cs;
      if (size % cs != 0 && start < rev.size) {
        extents.push_back({start, std::min<uint64_t>(cs, rev.size - start),
                           Extent::Kind::kData});
      }
    }
    std::sort(
        extents.begin(), extents.end(),
        [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  }
  std::vector<SlotPlan> plan = PlanSlots(extents, !base.empty(), &index, &rev);
  spdlog::debug("backup: {} slots, {} to read, base '{}'", index.slot_count(),
                plan.size(), base);

  std::vector<Digest> replaced;  // existing chunks rewritten (verify only)
  s = StoreSlots(repo, source, plan, options, rewrite, &index, &rev, &created,
                 &replaced);
  if (!s.ok()) return s;
  // What the backup itself read; sampled verification reads more.
  rev.stats.bytes_read = source.bytes_read();
  s = repo.chunks().Sync();
  if (!s.ok()) return s;
  TestHook("synced");
  if (options.before_verify) options.before_verify(repo, index);
  // File sources have no snapshot: what was read must still be the image
  // whose size the revision records.
  s = source.CheckUnchanged();
  if (!s.ok()) return s.WithContext("nothing published");

  if (source.verify_mode() == sources::VerifyMode::kFull) {
    std::vector<Digest> written = created;
    written.insert(written.end(), replaced.begin(), replaced.end());
    s = VerifyReadback(repo, written, options, &rev.verification);
  } else {
    std::vector<Digest> written = created;
    written.insert(written.end(), replaced.begin(), replaced.end());
    s = VerifySample(repo, source, index, written, options, &rev.verification);
  }
  // A sampled mismatch may lie in a chunk carried over from older
  // revisions (now quarantined), so a retry must not diff from the parent:
  // publish the revision as distrusted (visible in status), which makes
  // the next backup read everything, and fail below.
  const bool distrust =
      s.IsCorruption() && source.verify_mode() == sources::VerifyMode::kSample;
  if (!s.ok() && !distrust) return s;
  size_t data_slots = 0;
  for (size_t i = 0; i < index.slot_count(); ++i)
    data_slots += !index.IsZero(i);
  auto& v = rev.verification;
  v.fraction = v.chunks_total
                   ? static_cast<double>(v.chunks_checked) / v.chunks_total
                   : 1.0;
  v.coverage =
      data_slots ? static_cast<double>(v.chunks_checked) / data_slots : 1.0;
  rev.stats.duration =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (Cancelled(options)) return Status::Interrupted("backup interrupted");
  if (distrust) {
    rev.trust = store::Trust::kDistrusted;
    Status p = repo.Publish(rev, index);
    if (!p.ok()) return s;
    published = true;
    source.Abort();  // its snapshot is no base for the next backup
    return s.WithContext("revision " + rev.id +
                         " published as distrusted; the next backup reads "
                         "everything");
  }
  s = repo.Publish(rev, index, [] { TestHook("index"); });
  if (!s.ok()) return s;
  published = true;
  TestHook("published");
  s = source.Commit(rev.id);
  if (!s.ok()) {
    spdlog::warn(
        "backup: revision {} published, but the source could not "
        "clean up: {}",
        rev.id, s.ToString());
  }
  return rev;
}

}  // namespace backy::backup
