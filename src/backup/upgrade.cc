#include "backup/upgrade.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "backup/parallel_for.h"
#include "backup/progress.h"
#include "store/digest.h"
#include "store/filename.h"
#include "store/fs_util.h"
#include "store/legacy_chunk_store.h"
#include "store/legacy_repository.h"
#include "store/test_point.h"

namespace backy::backup {

using store::FileLock;
using Repository = store::DirectoryRepository;
using store::Revision;
using store::RevisionIndex;

// A 2.x slot maps onto a slot of ours one to one.
static_assert(store::kLegacyChunkSize == store::kDefaultChunkSize);

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool Cancelled(const UpgradeOptions& o) {
  return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Planning

// The 2.x chunk files in chunks/, then the prefix directories the upgrade
// empties (every one, for a 2.x config: 2.x made all 256 at init).
Status AddLegacyChunkFiles(const std::string& dir, bool legacy_config,
                           std::vector<std::string>* out) {
  const std::string chunks = store::ChunksDirName(dir);
  DIR* d = ::opendir(chunks.c_str());
  if (!d) {
    if (errno == ENOENT) return Status::OK();
    return Status::FromErrno(errno, "open directory", chunks);
  }
  std::vector<std::string> prefixes;
  while (struct dirent* e = ::readdir(d)) {
    if (store::IsChunkPrefixDirName(e->d_name))
      prefixes.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<std::string> emptied;
  for (const auto& p : prefixes) {
    const std::string sub = chunks + "/" + p;
    DIR* pd = ::opendir(sub.c_str());
    if (!pd) {
      if (errno == ENOTDIR || errno == ENOENT) continue;
      return Status::FromErrno(errno, "open directory", sub);
    }
    bool only_legacy = true, any_legacy = false;
    while (struct dirent* e = ::readdir(pd)) {
      const std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      if (store::ParseLegacyChunkFileName(name)) {
        out->push_back(sub + "/" + std::string(name));
        any_legacy = true;
      } else {
        only_legacy = false;
      }
    }
    ::closedir(pd);
    if (only_legacy && (any_legacy || legacy_config)) emptied.push_back(sub);
  }
  out->insert(out->end(), emptied.begin(), emptied.end());
  return Status::OK();
}

void AddIfExists(const std::string& path, std::vector<std::string>* out) {
  if (Exists(path)) out->push_back(path);
}

void AddRevisionFiles(const std::string& dir, const std::string& id,
                      std::vector<std::string>* out) {
  AddIfExists(store::LegacyRevisionFileName(dir, id), out);
  AddIfExists(store::LegacyMappingFileName(dir, id), out);
}

// Sizes of the distinct 2.x chunks the revisions to convert name, but not
// those a converted revision names (converted already).
Status MeasureChunks(Repository& repo, UpgradePlan* plan) {
  if (plan->to_convert.empty()) return Status::OK();
  std::set<Digest> done;
  for (const std::string& id : plan->converted) {
    auto index = store::LoadLegacyIndex(repo.dir(), id);
    if (!index.ok()) continue;  // only makes the figures larger
    for (size_t i = 0; i < index->slot_count(); ++i)
      done.insert(index->slot(i));
  }
  std::map<Digest, std::string> needed;  // -> the first revision naming it
  for (const Revision& r : plan->to_convert) {
    auto index = repo.LoadIndex(r);
    if (!index.ok()) return index.status();
    for (size_t i = 0; i < index->slot_count(); ++i) {
      const Digest& d = index->slot(i);
      if (!d.IsZero() && !done.count(d)) needed.emplace(d, r.id);
    }
  }
  store::ChunkStore& legacy = repo.ChunksOf(plan->to_convert.front());
  for (const auto& [d, id] : needed) {
    auto plain = legacy.PlainSize(d);
    if (!plain.ok()) {
      return plain.status().WithContext("2.x revision " + id);
    }
    struct stat st;
    const std::string path = legacy.ChunkName(d);
    if (::stat(path.c_str(), &st) != 0) {
      return Status::FromErrno(errno, "stat", path);
    }
    ++plan->legacy_chunks;
    plan->legacy_chunk_file_bytes += static_cast<uint64_t>(st.st_size);
    plan->legacy_chunk_plain_bytes += *plain;
  }
  return Status::OK();
}

}  // namespace

Result<UpgradePlan> PlanUpgrade(Repository& repo, bool measure) {
  const std::string& dir = repo.dir();
  UpgradePlan plan;
  plan.legacy_config = repo.legacy();
  // .backup goes last (and an upgrade that gets to its clean-up has made
  // it, as a lock): without it, a current repository has no 2.x files to
  // clean up, and nothing needs listing.
  if (!plan.legacy_config && !Exists(store::LegacyBackupLockFileName(dir))) {
    return plan;
  }
  auto scan = store::ScanLegacyRevisions(dir, repo.SourceName());
  if (!scan.ok()) return scan.status();
  std::vector<std::string>& files = plan.legacy_files;
  for (const Revision& r : scan->complete) {
    const bool converted = Exists(repo.RevisionPath(r.id));
    if (converted) {
      plan.converted.push_back(r.id);
      AddRevisionFiles(dir, r.id, &files);
    } else if (plan.legacy_config) {
      plan.to_convert.push_back(r);
      plan.image_bytes += r.size;
      // Its index (16 bytes a slot) and a .rev of well under 4 KiB.
      plan.metadata_bytes += store::kIndexHeaderSize +
                             16 * store::SlotsFor(r.size, r.chunk_size) + 4096;
      AddRevisionFiles(dir, r.id, &files);
    } else {
      // The config is ours, so every 2.x revision was converted before it
      // was written: this one came later (copied in?). Never delete data.
      spdlog::warn(
          "upgrade: 2.x revision {} has no converted form; leaving its files",
          r.id);
    }
  }
  for (const std::string& id : scan->incomplete) {
    plan.incomplete.push_back(id);
    AddRevisionFiles(dir, id, &files);
  }
  for (auto& d : scan->damaged) {
    if (Exists(repo.RevisionPath(d.id))) {
      AddRevisionFiles(dir, d.id, &files);  // converted; its 2.x copy broke
    } else if (plan.legacy_config) {
      plan.damaged.push_back(std::move(d));
    } else {
      spdlog::warn("upgrade: leaving damaged 2.x revision {}: {}", d.id,
                   d.status.ToString());
    }
  }
  Status s = AddLegacyChunkFiles(dir, plan.legacy_config, &files);
  if (!s.ok()) return s;
  AddIfExists(store::LegacyStoreMarkerFileName(dir), &files);
  AddIfExists(dir + "/" + std::string(store::kLegacyLastName), &files);
  AddIfExists(dir + "/" + std::string(store::kLegacyLastName) +
                  std::string(store::kRevisionSuffix),
              &files);
  // The locks last: while they exist, the clean-up is not finished.
  AddIfExists(store::LegacyPurgeLockFileName(dir), &files);
  AddIfExists(store::LegacyBackupLockFileName(dir), &files);
  if (measure) {
    s = MeasureChunks(repo, &plan);
    if (!s.ok()) return s;
  }
  return plan;
}

store::RepositoryConfig CurrentConfigFor(const store::RepositoryConfig& old) {
  store::RepositoryConfig c = old;
  c.legacy = false;
  if (!old.legacy) return c;
  auto get = [&](const char* k) {
    auto it = old.source.find(k);
    return it == old.source.end() ? std::string() : it->second;
  };
  std::string type = get("type");
  std::vector<const char*> keys;
  if (type == "file") {
    keys = {"filename", "full-always"};
  } else if (type == "ceph-rbd" || type == "flyingcircus") {
    // flyingcircus: 2.x's ceph-rbd plus a Consul-driven freeze of the
    // VM's file systems, which this backy does not do.
    type = "ceph-rbd";
    keys = {"pool", "namespace", "image", "full-always"};
  } else {
    return c;  // unknown to us: kept as it is; `backup` will say so
  }
  c.source.clear();
  c.source["type"] = type;
  for (const char* k : keys) {
    if (!get(k).empty()) c.source[k] = get(k);
  }
  for (const auto& [k, v] : old.source) {
    if (k != "type" && !c.source.count(k)) {
      spdlog::info("upgrade: dropping 2.x source key '{}' (not used)", k);
    }
  }
  return c;
}

namespace {

// ---------------------------------------------------------------------------
// Locks

struct UpgradeLocks {
  FileLock legacy_backup, legacy_purge, writer, purge;
};

// Takes `path` in `mode`; when busy, fails with `busy` or (options.wait)
// polls until it is free or the upgrade is cancelled.
Result<FileLock> TakeLock(const std::string& path, FileLock::Mode mode,
                          const std::string& note, const std::string& busy,
                          const UpgradeOptions& options) {
  bool said = false;
  while (true) {
    auto lock = FileLock::Acquire(path, mode, note);
    if (!lock.status().IsBusy()) return lock;
    if (!options.wait) {
      return Status::Busy(busy + "; stop it and run upgrade again");
    }
    if (!said && options.on_wait) options.on_wait(path);
    said = true;
    if (Cancelled(options)) return Status::Interrupted("upgrade interrupted");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// 2.x's locks (only those that exist, on a repository whose config is
// ours already), then ours: the same order as Repository::LockWriter, so
// the two cannot deadlock. 2.x's lock files are left as they are (no
// holder note): a refused upgrade changes nothing.
Result<UpgradeLocks> LockForUpgrade(const std::string& dir, bool legacy_config,
                                    const UpgradeOptions& options) {
  using Mode = FileLock::Mode;
  const std::string note = "upgrade (pid " + std::to_string(::getpid()) + ")";
  UpgradeLocks locks;
  const std::string backup2 = store::LegacyBackupLockFileName(dir);
  if (legacy_config || Exists(backup2)) {
    auto l = TakeLock(backup2, Mode::kExclusive, "",
                      "a backy 2.x backup (or a backy distrust, forget or "
                      "upgrade) holds " +
                          backup2,
                      options);
    if (!l.ok()) return l.status();
    locks.legacy_backup = std::move(*l);
  }
  const std::string purge2 = store::LegacyPurgeLockFileName(dir);
  if (legacy_config || Exists(purge2)) {
    auto l =
        TakeLock(purge2, Mode::kExclusive, "",
                 "a backy 2.x process or an nbd-server/restore holds " + purge2,
                 options);
    if (!l.ok()) return l.status();
    locks.legacy_purge = std::move(*l);
  }
  const std::string writer = store::WriterLockFileName(dir);
  auto w = TakeLock(writer, Mode::kExclusive, note,
                    "a backy backup, expire, forget or upgrade holds " + writer,
                    options);
  if (!w.ok()) return w.status();
  locks.writer = std::move(*w);
  const std::string purge = store::PurgeLockFileName(dir);
  auto p = TakeLock(purge, Mode::kShared, note, "a backy purge holds " + purge,
                    options);
  if (!p.ok()) return p.status();
  locks.purge = std::move(*p);
  return locks;
}

// ---------------------------------------------------------------------------
// Conversion

// Converts revisions one after the other; remembers which new chunk each
// 2.x chunk became, so a chunk shared by many revisions is decoded once.
class Converter {
 public:
  // Reads 2.x revisions of `repo` and writes the converted ones into
  // `target`: `repo` itself for an upgrade in place.
  Converter(Repository& repo, store::Repository& target,
            const UpgradeOptions& options, std::string source_name,
            uint64_t total_bytes)
      : repo_(repo),
        target_(target),
        options_(options),
        source_name_(std::move(source_name)),
        progress_("upgrade", total_bytes) {}

  // What earlier runs converted: pairs the slots of each converted
  // revision's index with its 2.x mapping (both still there).
  void Remember(const std::string& id) {
    auto ours = target_.LoadIndex(id);
    auto old = store::LoadLegacyIndex(repo_.dir(), id);
    if (!ours.ok() || !old.ok() || ours->slot_count() != old->slot_count()) {
      return;  // only a shortcut: such chunks are decoded again
    }
    for (size_t i = 0; i < old->slot_count(); ++i) {
      if (!old->IsZero(i)) done_.emplace(old->slot(i), ours->slot(i));
    }
  }

  Status Convert(const Revision& old) {
    auto mapping = repo_.LoadIndex(old);
    if (!mapping.ok()) return mapping.status();
    if (mapping->chunk_size() != store::kDefaultChunkSize) {
      return Status::Corruption(
          "2.x mapping has chunk size " + std::to_string(mapping->chunk_size()),
          store::LegacyMappingFileName(repo_.dir(), old.id));
    }
    RevisionIndex index(mapping->image_size(), store::kDefaultChunkSize);
    store::ChunkStore& legacy = repo_.ChunksOf(old);
    const unsigned workers = WorkerCount(options_.workers);
    std::vector<std::vector<uint8_t>> bufs(workers);
    auto slot = [&](unsigned w, size_t i) {
      Status s = ConvertSlot(legacy, *mapping, i, &bufs[w], &index);
      progress_.Add(index.SlotLength(i));
      if (!s.ok()) {
        return s.WithContext("2.x revision " + old.id + ", chunk " +
                             std::to_string(i));
      }
      return Status::OK();
    };
    Status s = ParallelFor(index.slot_count(), workers, slot,
                           [&] { return Cancelled(options_); });
    if (!s.ok()) return s;
    if (Cancelled(options_)) return Status::Interrupted("upgrade interrupted");
    s = target_.chunks().Sync();
    if (!s.ok()) return s;
    Revision rev = old;
    rev.legacy = false;
    rev.chunk_size = store::kDefaultChunkSize;
    rev.size = index.image_size();
    rev.source = source_name_;
    s = target_.Publish(rev, index);
    if (!s.ok()) return s;
    TestPoint("upgrade-published");
    return Status::OK();
  }

  void AddTo(UpgradeSummary* sum) const {
    sum->legacy_chunks_read += read_;
    sum->slots_deduplicated += dedup_;
    sum->zero_slots += zero_;
    sum->chunks_written += written_;
    sum->chunks_reused += reused_;
    sum->bytes_written += bytes_;
  }

 private:
  // Slot `i`: a slot the mapping leaves out stays zero; a 2.x chunk seen
  // before takes its new digest; else it is read (checked), and all zeros
  // make a zero slot, anything else a chunk of ours.
  Status ConvertSlot(store::ChunkStore& legacy, const RevisionIndex& mapping,
                     size_t i, std::vector<uint8_t>* buf,
                     RevisionIndex* index) {
    const Digest& old = mapping.slot(i);
    if (old.IsZero()) {
      ++zero_;
      return Status::OK();
    }
    if (auto known = Lookup(old)) {
      ++dedup_;
      index->set_slot(i, *known);
      return Status::OK();
    }
    Status s = legacy.Get(old, buf);
    if (!s.ok()) return s;
    ++read_;
    const uint32_t len = index->SlotLength(i);
    // 2.4 kept the old tail in the last chunk when an image shrank; it
    // read only up to the image size, and so do we.
    if (buf->size() > len && i + 1 == index->slot_count()) buf->resize(len);
    if (buf->size() != len) {
      return Status::Corruption("2.x chunk holds " +
                                    std::to_string(buf->size()) +
                                    " bytes, its slot " + std::to_string(len),
                                legacy.ChunkName(old));
    }
    Digest d;  // zero: the slot reads as zeros, no chunk
    if (IsAllZero(*buf)) {
      ++zero_;
    } else {
      d = Digest::Of(*buf);
      auto put = target_.chunks().Put(d, *buf);
      if (!put.ok()) return put.status();
      if (put->created) {
        ++written_;
        bytes_ += put->stored_bytes;
      } else {
        ++reused_;
      }
    }
    index->set_slot(i, d);
    std::lock_guard<std::mutex> l(mu_);
    done_.emplace(old, d);
    return Status::OK();
  }

  std::optional<Digest> Lookup(const Digest& old) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = done_.find(old);
    if (it == done_.end()) return std::nullopt;
    return it->second;
  }

  Repository& repo_;
  store::Repository& target_;
  const UpgradeOptions& options_;
  const std::string source_name_;
  Progress progress_;
  std::mutex mu_;
  // 2.x hash -> our digest (zero for an all-zero chunk). GUARDED_BY(mu_)
  std::unordered_map<Digest, Digest, DigestHash> done_;
  std::atomic<uint64_t> read_{0}, dedup_{0}, zero_{0}, written_{0}, reused_{0},
      bytes_{0};
};

// revisions/ and tmp/, as Repository::Init makes them; the repository
// directory becomes private (2.x made it world-readable).
Status MakeCurrentDirs(const std::string& dir) {
  for (const std::string& sub :
       {store::RevisionsDirName(dir), store::TmpDirName(dir)}) {
    Status s = store::MakeDirs(sub);
    if (!s.ok()) return s;
  }
  for (const std::string& d : {dir, store::ChunksDirName(dir)}) {
    if (::chmod(d.c_str(), store::kPrivateDirMode) != 0) {
      return Status::FromErrno(errno, "chmod", d);
    }
  }
  return store::SyncDir(dir);
}

// Removes `files` in order; a directory is removed only if empty (our
// chunks may share a prefix directory with 2.x's).
Status RemoveLegacyFiles(const std::string& dir,
                         const std::vector<std::string>& files,
                         uint64_t* removed) {
  for (size_t i = 0; i < files.size(); ++i) {
    if (i == files.size() / 2) TestPoint("upgrade-removing");
    const std::string& path = files[i];
    if (::unlink(path.c_str()) == 0) {
      ++*removed;
      continue;
    }
    if (errno == ENOENT) continue;
    if (errno == EISDIR || errno == EPERM) {
      if (::rmdir(path.c_str()) == 0) {
        ++*removed;
        continue;
      }
      if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOENT) continue;
    }
    return Status::FromErrno(errno, "remove", path);
  }
  Status s = store::SyncDir(store::ChunksDirName(dir));
  if (!s.ok()) return s;
  return store::SyncDir(dir);
}

// The prefix directories left (holding our chunks) become private too.
void MakeChunkDirsPrivate(const std::string& dir) {
  const std::string chunks = store::ChunksDirName(dir);
  DIR* d = ::opendir(chunks.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (store::IsChunkPrefixDirName(e->d_name)) {
      (void)::chmod((chunks + "/" + e->d_name).c_str(), store::kPrivateDirMode);
    }
  }
  ::closedir(d);
}

Status RefuseDamaged(const UpgradePlan& plan) {
  if (plan.damaged.empty()) return Status::OK();
  const auto& d = plan.damaged.front();
  std::string more;
  if (plan.damaged.size() > 1) {
    more = " (and " + std::to_string(plan.damaged.size() - 1) + " more)";
  }
  return Status::Corruption(
      "2.x revision " + d.id + " cannot be read" + more + ": " +
      d.status.ToString() +
      "; nothing was changed. Repair it, or move its .rev and mapping out "
      "of the repository, and run upgrade again");
}

// A damaged 2.x chunk or mapping: says what to do.
Status StoppedByDamage(const Status& s) {
  return Status::Corruption(
      "upgrade stopped: " + s.Message() +
      "; nothing was removed and the repository reads as before. Repair "
      "that file, or forget the revisions that need it ('backy verify "
      "--all' lists them), then run upgrade again");
}

// Refuses an upgrade that would fill the file system: the new chunks exist
// before the old ones are removed (UpgradePlan::PeakExtraBytes()).
Status CheckFreeSpace(Repository& repo, UpgradePlan* plan) {
  Status s = MeasureChunks(repo, plan);
  if (s.IsCorruption()) return StoppedByDamage(s);
  if (!s.ok()) return s;
  struct statvfs fs;
  if (::statvfs(repo.dir().c_str(), &fs) != 0) {
    return Status::FromErrno(errno, "statvfs", repo.dir());
  }
  const uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t need = plan->PeakExtraBytes();
  if (need <= free) return Status::OK();
  return Status::NoSpace("the upgrade needs about " + FormatBytes(need) +
                             " of free space (the size of the 2.x chunks it "
                             "converts), " +
                             FormatBytes(free) +
                             " is free; nothing was converted. Free some "
                             "space, or run upgrade --no-space-check",
                         repo.dir());
}

// Step 2 and 3 of Upgrade(): converts plan.to_convert, then writes the
// current config.
Status ConvertRevisions(Repository& repo, const UpgradePlan& plan,
                        const UpgradeOptions& options, UpgradeSummary* sum) {
  Status s = MakeCurrentDirs(repo.dir());
  if (!s.ok()) return s;
  s = repo.RemoveLeftovers();
  if (!s.ok()) return s;
  const store::RepositoryConfig config = CurrentConfigFor(repo.config());
  Converter converter(repo, repo, options,
                      Repository::SourceNameOf(config.source),
                      plan.image_bytes);
  for (const auto& id : plan.converted) converter.Remember(id);
  sum->revisions_resumed = plan.converted.size();
  for (const Revision& rev : plan.to_convert) {
    s = converter.Convert(rev);
    if (!s.ok()) break;
    ++sum->revisions_converted;
    sum->image_bytes += rev.size;
    spdlog::debug("upgrade: converted revision {}", rev.id);
  }
  converter.AddTo(sum);
  if (s.IsCorruption()) return StoppedByDamage(s);
  if (!s.ok()) {
    return s.WithContext(
        "upgrade stopped (nothing was removed; run it again to continue)");
  }
  s = Repository::WriteConfig(repo.dir(), config);
  if (!s.ok()) return s;
  TestPoint("upgrade-config");
  return Status::OK();
}

}  // namespace

Result<UpgradeSummary> Upgrade(const std::string& dir,
                               const UpgradeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  UpgradeSummary sum;
  auto repo = Repository::Open(dir);
  if (!repo.ok()) return repo.status();
  // A quick look without locks: most calls (the scheduler's) find nothing.
  auto first = PlanUpgrade(**repo, false);
  if (!first.ok()) return first.status();
  if (first->NothingToDo()) {
    sum.was_current = true;
    return sum;
  }
  auto locks = LockForUpgrade(dir, (*repo)->legacy(), options);
  if (!locks.ok()) return locks.status();
  // Under the locks: what is there now (another upgrade may have finished
  // meanwhile, and its Repository object read the old config).
  repo = Repository::Open(dir);
  if (!repo.ok()) return repo.status();
  auto plan = PlanUpgrade(**repo, false);
  if (!plan.ok()) return plan.status();
  if (plan->NothingToDo()) {
    sum.was_current = true;
    return sum;
  }
  Status s = RefuseDamaged(*plan);
  if (!s.ok()) return s;
  sum.clean_up_only = !plan->legacy_config;
  if (plan->legacy_config && options.check_space) {
    s = CheckFreeSpace(**repo, &*plan);
    if (!s.ok()) return s;
  }
  if (plan->legacy_config) {
    s = ConvertRevisions(**repo, *plan, options, &sum);
    if (!s.ok()) return s;
  }
  s = RemoveLegacyFiles(dir, plan->legacy_files, &sum.files_removed);
  if (!s.ok()) return s;
  MakeChunkDirsPrivate(dir);
  sum.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return sum;
}

Result<UpgradeSummary> UpgradeInto(
    const std::string& dir, const std::string& target_location,
    const store::RepositoryOptions& target_options,
    const UpgradeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  UpgradeSummary sum;
  auto repo = Repository::Open(dir);
  if (!repo.ok()) return repo.status();
  if (!(*repo)->legacy()) {
    return Status::InvalidArgument(
        "not a backy 2.x repository; 'backy copy' copies a current one", dir);
  }
  // Readers of a 2.x repository hold .purge shared: no 2.x purge deletes
  // chunks under us. A 2.x backup may go on; what it publishes later is
  // converted by the next run.
  auto reader = (*repo)->LockReader();
  if (!reader.ok()) return reader.status();
  auto plan = PlanUpgrade(**repo, false);
  if (!plan.ok()) return plan.status();
  Status s = RefuseDamaged(*plan);
  if (!s.ok()) return s;
  const store::RepositoryConfig config = CurrentConfigFor((*repo)->config());
  auto target = store::Repository::Open(target_location, target_options);
  if (target.status().IsNotFound()) {
    s = store::Repository::Init(target_location, config, target_options);
    if (!s.ok()) return s;
    target = store::Repository::Open(target_location, target_options);
  }
  if (!target.ok()) return target.status();
  auto locks = (*target)->LockWriter("upgrade");
  if (!locks.ok()) return locks.status();
  auto existing = (*target)->ScanRevisions();
  if (!existing.ok()) return existing.status();
  std::set<std::string> have;
  for (const auto& r : existing->healthy) have.insert(r.id);
  for (const auto& d : existing->damaged) have.insert(d.id);
  std::vector<Revision> todo;
  uint64_t bytes = 0;
  for (const Revision& r : plan->to_convert) {
    if (have.count(r.id)) continue;
    todo.push_back(r);
    bytes += r.size;
  }
  Converter converter(**repo, **target, options,
                      Repository::SourceNameOf(config.source), bytes);
  for (const Revision& r : plan->to_convert) {
    if (have.count(r.id)) {
      converter.Remember(r.id);
      ++sum.revisions_resumed;
    }
  }
  for (const Revision& rev : todo) {
    s = converter.Convert(rev);
    if (!s.ok()) break;
    ++sum.revisions_converted;
    sum.image_bytes += rev.size;
  }
  converter.AddTo(&sum);
  if (s.IsCorruption()) return StoppedByDamage(s);
  if (!s.ok()) {
    return s.WithContext("upgrade stopped (run it again to continue)");
  }
  sum.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return sum;
}

}  // namespace backy::backup
