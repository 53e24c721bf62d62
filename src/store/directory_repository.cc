#include "store/directory_repository.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "store/duration.h"
#include "store/file_chunk_store.h"
#include "store/filename.h"
#include "store/legacy_chunk_store.h"
#include "store/legacy_repository.h"
#include "store/test_point.h"

namespace backy::store {

namespace {

// Caps on what is read of a YAML file: far above what backy writes (a
// .rev is under 1 KiB), so only a damaged or hostile file hits them.
constexpr uint64_t kMaxConfigFileSize = 1 << 20;
constexpr uint64_t kMaxRevisionFileSize = 1 << 20;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The ids of the revision files of `type` in `dir` (revisions/).
Result<std::vector<std::string>> ListRevisionFiles(const std::string& dir,
                                                   RevisionFileType type) {
  auto names = ListDirectory(dir);
  if (!names.ok()) return names.status();
  std::vector<std::string> out;
  for (const auto& name : *names) {
    auto file = ParseRevisionFileName(name);
    if (file && file->type == type) out.push_back(std::move(file->id));
  }
  return out;
}

}  // namespace

DirectoryRepository::DirectoryRepository(std::string dir,
                                         RepositoryConfig config)
    : Repository(std::move(dir), std::move(config)) {
  chunks_ = std::make_unique<FileChunkStore>(
      ChunksDirName(this->dir()), tmp_dir(), QuarantineDirName(this->dir()),
      this->config().compression);
  if (legacy()) {
    legacy_chunks_ =
        std::make_unique<LegacyChunkStore>(ChunksDirName(this->dir()));
  }
}

ChunkStore& DirectoryRepository::ChunksOf(const Revision& revision) {
  return revision.legacy && legacy_chunks_ ? *legacy_chunks_ : *chunks_;
}

Status DirectoryRepository::Init(const std::string& dir,
                                 const RepositoryConfig& config) {
  if (Exists(ConfigFileName(dir))) {
    return Status::InvalidArgument("already a repository", dir);
  }
  for (const std::string& sub :
       {dir, ChunksDirName(dir), RevisionsDirName(dir), TmpDirName(dir)}) {
    Status s = MakeDirs(sub);
    if (!s.ok()) return s;
  }
  // An existing directory becomes private too: it will hold disk images.
  if (::chmod(dir.c_str(), kPrivateDirMode) != 0) {
    return Status::FromErrno(errno, "chmod", dir);
  }
  Status s = SyncDir(dir);
  if (!s.ok()) return s;
  return WriteConfig(dir, config);
}

Status DirectoryRepository::WriteConfig(const std::string& dir,
                                        const RepositoryConfig& config) {
  return WriteFileAtomic(ConfigFileName(dir), config.ToYaml(), TmpDirName(dir));
}

Result<std::unique_ptr<DirectoryRepository>> DirectoryRepository::Open(
    const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    return Status::NotFound("not a backy repository (not a directory)", dir);
  }
  std::string text;
  const std::string path = ConfigFileName(dir);
  Status s = ReadWholeFile(path, &text, kMaxConfigFileSize);
  if (s.IsNotFound()) {
    return Status::NotFound(
        "not a backy repository (no config; run 'backy init' first)", dir);
  }
  if (!s.ok()) return s;
  auto config = RepositoryConfig::FromYaml(text, path);
  if (!config.ok()) return config.status();
  // A 2.x repository is read as it is (revisions/ and tmp/ appear only
  // once `upgrade` starts); opening it writes nothing.
  for (const std::string& sub :
       config->legacy
           ? std::vector<std::string>{ChunksDirName(dir)}
           : std::vector<std::string>{ChunksDirName(dir), RevisionsDirName(dir),
                                      TmpDirName(dir)}) {
    if (!Exists(sub)) {
      return Status::Corruption("repository directory is missing", sub);
    }
  }
  return std::unique_ptr<DirectoryRepository>(
      new DirectoryRepository(dir, std::move(*config)));
}

std::string DirectoryRepository::RevisionPath(const std::string& id) const {
  return RevisionFileName(dir(), id);
}

std::string DirectoryRepository::IndexPath(const std::string& id) const {
  return IndexFileName(dir(), id);
}

std::string DirectoryRepository::MetadataPath(const Revision& revision) const {
  return revision.legacy ? LegacyRevisionFileName(dir(), revision.id)
                         : RevisionPath(revision.id);
}

std::string DirectoryRepository::IndexPath(const Revision& revision) const {
  return revision.legacy ? LegacyMappingFileName(dir(), revision.id)
                         : IndexPath(revision.id);
}

Result<DirectoryRepository::RevisionList> DirectoryRepository::ScanRevisions()
    const {
  auto ids =
      ListRevisionFiles(RevisionsDirName(dir()), RevisionFileType::kMetadata);
  if (!ids.ok() && legacy() && !Exists(RevisionsDirName(dir()))) {
    ids = std::vector<std::string>{};  // 2.x, not being upgraded
  }
  if (!ids.ok()) return ids.status();
  std::sort(ids->begin(), ids->end());
  RevisionList list;
  for (const auto& id : *ids) {
    std::string text;
    const std::string path = RevisionPath(id);
    Status s = ReadWholeFile(path, &text, kMaxRevisionFileSize);
    if (s.IsNotFound()) continue;  // forgotten meanwhile
    if (!s.ok()) {
      list.damaged.push_back({id, s});
      continue;
    }
    auto rev = Revision::FromYaml(text, path);
    if (!rev.ok()) {
      list.damaged.push_back({id, rev.status()});
      continue;
    }
    if (rev->id != id) {
      list.damaged.push_back(
          {id, Status::Corruption(
                   "revision id '" + rev->id + "' does not match its file name",
                   path)});
      continue;
    }
    list.healthy.push_back(std::move(*rev));
  }
  if (legacy()) {
    // 2.x revisions, but not those `upgrade` has already converted: the
    // converted form is the one in use from its publication on.
    auto old = ScanLegacyRevisions(dir(), SourceName());
    if (!old.ok()) return old.status();
    std::set<std::string> converted(ids->begin(), ids->end());
    for (auto& r : old->complete) {
      if (!converted.count(r.id)) list.healthy.push_back(std::move(r));
    }
    for (auto& d : old->damaged) {
      if (!converted.count(d.id)) list.damaged.push_back(std::move(d));
    }
  }
  std::sort(list.healthy.begin(), list.healthy.end(), IsOlder);
  return list;
}

std::vector<std::string> DirectoryRepository::RevisionDirectories() const {
  std::vector<std::string> dirs{RevisionsDirName(dir())};
  if (legacy()) dirs.push_back(dir());
  return dirs;
}

Result<std::vector<std::string>> DirectoryRepository::IndexIds() const {
  if (legacy() && !Exists(RevisionsDirName(dir()))) {
    return std::vector<std::string>{};
  }
  return ListRevisionFiles(RevisionsDirName(dir()), RevisionFileType::kIndex);
}

Result<RevisionIndex> DirectoryRepository::LoadIndex(
    const Revision& revision) const {
  if (revision.legacy) return LoadLegacyIndex(dir(), revision.id);
  return LoadIndex(revision.id);
}

Result<RevisionIndex> DirectoryRepository::LoadIndex(
    const std::string& id) const {
  const std::string path = IndexPath(id);
  struct stat st;
  auto fd = OpenRegularFile(path, &st);
  if (fd.status().IsNotFound()) {
    return Status::Corruption("index of revision " + id + " is missing", path);
  }
  if (!fd.ok()) return fd.status();
  return ReadIndexFile(fd->get(), static_cast<uint64_t>(st.st_size), path);
}

Status DirectoryRepository::Publish(const Revision& revision,
                                    const RevisionIndex& index) {
  // The index goes first; a revision is visible only once its .rev exists,
  // and by then its index (and every chunk) is durable.
  Status s = WriteFileAtomic(IndexPath(revision.id), index.Encode(), tmp_dir(),
                             /*sync_dir=*/true);
  if (!s.ok()) return s.WithContext("publishing revision " + revision.id);
  TestPoint("index");
  s = WriteFileAtomic(RevisionPath(revision.id), revision.ToYaml(), tmp_dir(),
                      /*sync_dir=*/true);
  if (!s.ok()) return s.WithContext("publishing revision " + revision.id);
  return Status::OK();
}

Status DirectoryRepository::UpdateMetadata(const Revision& revision) {
  if (revision.legacy) return UpdateLegacyMetadata(dir(), revision);
  if (!Exists(RevisionPath(revision.id))) {
    return Status::NotFound("no such revision", revision.id);
  }
  return WriteFileAtomic(RevisionPath(revision.id), revision.ToYaml(),
                         tmp_dir());
}

Status DirectoryRepository::Forget(const std::string& id) {
  const std::string rev = RevisionPath(id);
  if (legacy() && !Exists(rev)) return ForgetLegacyRevision(dir(), id);
  if (::unlink(rev.c_str()) != 0 &&
      !(errno == EISDIR && ::rmdir(rev.c_str()) == 0)) {
    return Status::FromErrno(errno, "remove", rev);
  }
  Status s = SyncDir(RevisionsDirName(dir()));
  if (!s.ok()) return s;
  const std::string idx = IndexPath(id);
  if (::unlink(idx.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove", idx);
  }
  return SyncDir(RevisionsDirName(dir()));
}

Result<RepositoryLock> DirectoryRepository::LockWriter(std::string_view what) {
  std::string note =
      std::string(what) + " (pid " + std::to_string(::getpid()) + ")";
  // In a 2.x repository, 2.x's own writer lock: a Python backy backing it
  // up (or our `upgrade`) holds .backup exclusively.
  auto w = FileLock::Acquire(
      legacy() ? LegacyBackupLockFileName(dir()) : WriterLockFileName(dir()),
      // 2.x left .backup empty: no holder note written into it.
      FileLock::Mode::kExclusive, legacy() ? std::string() : note);
  if (!w.ok()) return w.status();
  RepositoryLock locks(std::move(*w));
  auto p = LockReader();
  if (!p.ok()) return p.status();
  locks.Add(std::move(*p));
  return locks;
}

Result<RepositoryLock> DirectoryRepository::LockReader() {
  // In a 2.x repository, .purge as 2.x's readers took it: a Python backy
  // purge (exclusive) cannot delete chunks under us, nor we read while it
  // runs.
  auto lock = FileLock::AcquireWaiting(
      legacy() ? LegacyPurgeLockFileName(dir()) : PurgeLockFileName(dir()),
      FileLock::Mode::kShared, [&] {
        if (legacy()) {
          spdlog::info(
              "waiting for a backy 2.x purge of {} to finish ({} is locked)",
              dir(), LegacyPurgeLockFileName(dir()));
        } else {
          spdlog::info("waiting for a purge of {} to finish", dir());
        }
      });
  if (!lock.ok()) return lock.status();
  return RepositoryLock(std::move(*lock));
}

Result<RevisionPin> DirectoryRepository::PinRevision(const Revision& revision,
                                                     std::string_view what) {
  return RevisionPin::Create(
      dir(), revision,
      std::string(what) + " (pid " + std::to_string(::getpid()) + ")");
}

Result<RepositoryLock> DirectoryRepository::LockPurge() {
  Status legacy_status = RequireCurrentFormat("purge");
  if (!legacy_status.ok()) return legacy_status;
  // Every writer (backup, forget, expire) holds purge.lock shared for its
  // whole run, so holding it exclusively means none is running; those
  // starting meanwhile wait for us, and so do readers about to pin. No
  // writer lock is needed (and taking one would make a backup that starts
  // now fail). A reader holds the lock only for the moment it pins: worth
  // a short wait, a writer is not.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (true) {
    auto p =
        FileLock::Acquire(PurgeLockFileName(dir()), FileLock::Mode::kExclusive);
    if (p.ok()) return RepositoryLock(std::move(*p));
    if (!p.status().IsBusy()) return p.status();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Busy(
          "repository is in use by a backup, forget, expire, distrust, "
          "upgrade or verify; purge later",
          dir());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<std::vector<std::string>> DirectoryRepository::ForEachLivePin(
    const std::function<Status(const PinnedIndex&,
                               const Result<RevisionIndex>&)>& mark) {
  auto pins = ScanPins(dir());
  if (!pins.ok()) return pins.status();
  for (const auto& pin : pins->live) {
    // Read from the link opened by the scan: the pin's reader may let go
    // meanwhile, the bytes stay readable.
    const std::string link = PinsDirName(dir()) + "/" +
                             PinFileBaseName(pin.token, PinFileType::kIndex);
    Status s = mark({pin.revision_id, link},
                    ReadIndexFile(pin.index.get(), pin.index_size, link));
    if (!s.ok()) return s;
  }
  return std::move(pins->stale);
}

Status DirectoryRepository::RemoveStalePins(
    const std::vector<std::string>& tokens) {
  return store::RemoveStalePins(dir(), tokens);
}

Result<bool> DirectoryRepository::HasRevision(const Revision& revision) const {
  struct stat st;
  if (::lstat(MetadataPath(revision).c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "stat", MetadataPath(revision));
}

std::string DirectoryRepository::LogFile() const {
  return legacy() ? std::string() : RepositoryLogFileName(dir());
}

Status DirectoryRepository::RemoveLeftovers() {
  if (legacy() && !Exists(tmp_dir())) return Status::OK();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tmp_dir(), ec)) {
    std::filesystem::remove(e.path(), ec);
  }
  auto indexes = IndexIds();
  if (!indexes.ok()) return indexes.status();
  for (const auto& id : *indexes) {
    if (!Exists(RevisionPath(id))) ::unlink(IndexPath(id).c_str());
  }
  return Status::OK();
}

}  // namespace backy::store
