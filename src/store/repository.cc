#include "store/repository.h"

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

std::string RepositoryConfig::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << kRepositoryFormat;
  e << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : source) e << YAML::Key << k << YAML::Value << v;
  e << YAML::EndMap;
  e << YAML::Key << "store" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "compression" << YAML::Value
    << (compression.enabled ? "zstd" : "none");
  e << YAML::Key << "compression_level" << YAML::Value << compression.level;
  e << YAML::EndMap;
  if (!schedule.empty()) {
    e << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
    for (const auto& [tag, entry] : schedule.tags) {
      e << YAML::Key << tag << YAML::Value << YAML::Flow << YAML::BeginMap;
      e << YAML::Key << "interval" << YAML::Value
        << FormatDuration(entry.interval_seconds);
      e << YAML::Key << "keep" << YAML::Value << entry.keep;
      e << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::Key << "min-keep" << YAML::Value << schedule.min_keep;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

Result<RepositoryConfig> RepositoryConfig::FromYaml(const std::string& text,
                                                    const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap()) {
      return Status::Corruption("config is not a YAML map", name);
    }
    RepositoryConfig c;
    // No `format`: backy 2.x's config. 2.5 wrote {source: ..., schedule:
    // ...}; 2.4 the source's keys flat (`type: file`, `filename: ...`).
    c.legacy = !n["format"];
    if (!c.legacy) {
      int format = n["format"].as<int>(kRepositoryFormat);
      if (format != kRepositoryFormat) {
        return Status::NotSupported(
            "unsupported repository format " + std::to_string(format), name);
      }
    }
    YAML::Node src = n["source"];
    if (c.legacy && !src) {
      src = YAML::Node(YAML::NodeType::Map);
      for (const auto& kv : n) {
        const std::string key = kv.first.as<std::string>();
        if (key != "schedule" && kv.second.IsScalar()) src[key] = kv.second;
      }
    }
    if (!src || !src.IsMap()) {
      return Status::Corruption("config has no 'source' section", name);
    }
    for (const auto& kv : src) {
      if (!kv.second.IsScalar()) {
        return Status::Corruption(
            "source." + kv.first.as<std::string>() + " must be a scalar",
            name + ":" + std::to_string(kv.second.Mark().line + 1));
      }
      c.source[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    if (!c.source.count("type")) {
      return Status::Corruption("source has no 'type'", name);
    }
    if (YAML::Node store = n["store"]) {
      std::string comp = store["compression"].as<std::string>("zstd");
      if (comp != "zstd" && comp != "none") {
        return Status::Corruption(
            "store.compression must be 'zstd' or 'none', not '" + comp + "'",
            name + ":" + std::to_string(store["compression"].Mark().line + 1));
      }
      c.compression.enabled = comp == "zstd";
      c.compression.level = store["compression_level"].as<int>(3);
      if (c.compression.level < -7 || c.compression.level > 19) {
        return Status::Corruption(
            "store.compression_level must be between -7 and 19", name);
      }
    }
    if (YAML::Node sched = n["schedule"]) {
      if (!sched.IsMap()) {
        return Status::Corruption(
            "schedule must map tags to {interval, keep}",
            name + ":" + std::to_string(sched.Mark().line + 1));
      }
      for (const auto& kv : sched) {
        const std::string tag = kv.first.as<std::string>();
        const std::string where =
            name + ":" + std::to_string(kv.second.Mark().line + 1);
        if (!kv.second.IsMap() || !kv.second["interval"] ||
            !kv.second["keep"]) {
          return Status::Corruption(
              "schedule." + tag + " needs 'interval' and 'keep'", where);
        }
        auto interval = ParseDuration(kv.second["interval"].as<std::string>());
        if (!interval.ok()) {
          return Status::Corruption(
              "schedule." + tag + ".interval: " + interval.status().Message(),
              where);
        }
        int keep = kv.second["keep"].as<int>();
        if (keep < 0 || keep > 1000000) {
          return Status::Corruption(
              "schedule." + tag + ".keep must be from 0 to 1000000", where);
        }
        c.schedule.tags[tag] = {*interval, static_cast<uint32_t>(keep)};
      }
    }
    if (YAML::Node mk = n["min-keep"]) {
      int v = mk.as<int>();
      if (v < 0) {
        return Status::Corruption(
            "min-keep must be >= 0",
            name + ":" + std::to_string(mk.Mark().line + 1));
      }
      c.schedule.min_keep = static_cast<uint32_t>(v);
    }
    return c;
  } catch (const YAML::ParserException& e) {
    return Status::Corruption("YAML syntax error: " + e.msg,
                              name + ":" + std::to_string(e.mark.line + 1));
  } catch (const YAML::Exception& e) {
    return Status::Corruption(std::string("bad config: ") + e.msg,
                              name + ":" + std::to_string(e.mark.line + 1));
  }
}

Repository::Repository(std::string dir, RepositoryConfig config)
    : dir_(std::move(dir)), config_(std::move(config)) {
  chunks_ = std::make_unique<FileChunkStore>(ChunksDirName(dir_), tmp_dir(),
                                             QuarantineDirName(dir_),
                                             config_.compression);
  if (config_.legacy) {
    legacy_chunks_ = std::make_unique<LegacyChunkStore>(ChunksDirName(dir_));
  }
}

ChunkStore& Repository::ChunksOf(const Revision& revision) {
  return revision.legacy && legacy_chunks_ ? *legacy_chunks_ : *chunks_;
}

Status Repository::RequireCurrentFormat(std::string_view what) const {
  if (!legacy()) return Status::OK();
  return Status::NotSupported(
      "this is a backy 2.x repository; run 'backy "
      "upgrade' before " +
          std::string(what),
      dir_);
}

std::string Repository::SourceName() const {
  return SourceNameOf(config_.source);
}

std::string Repository::SourceNameOf(
    const std::map<std::string, std::string>& source) {
  auto get = [&](const char* k) {
    auto it = source.find(k);
    return it == source.end() ? std::string() : it->second;
  };
  const std::string type = get("type");
  if (!get("filename").empty()) return type + ":" + get("filename");
  if (!get("pool").empty())
    return type + ":" + get("pool") + "/" + get("image");
  return type;
}

Status Repository::Init(const std::string& dir,
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

Status Repository::WriteConfig(const std::string& dir,
                               const RepositoryConfig& config) {
  return WriteFileAtomic(ConfigFileName(dir), config.ToYaml(), TmpDirName(dir));
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& dir) {
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
  return std::unique_ptr<Repository>(new Repository(dir, std::move(*config)));
}

std::string Repository::RevisionPath(const std::string& id) const {
  return RevisionFileName(dir_, id);
}

std::string Repository::IndexPath(const std::string& id) const {
  return IndexFileName(dir_, id);
}

std::string Repository::MetadataPath(const Revision& revision) const {
  return revision.legacy ? LegacyRevisionFileName(dir_, revision.id)
                         : RevisionPath(revision.id);
}

std::string Repository::IndexPath(const Revision& revision) const {
  return revision.legacy ? LegacyMappingFileName(dir_, revision.id)
                         : IndexPath(revision.id);
}

Result<Repository::RevisionList> Repository::ScanRevisions() const {
  auto ids =
      ListRevisionFiles(RevisionsDirName(dir_), RevisionFileType::kMetadata);
  if (!ids.ok() && legacy() && !Exists(RevisionsDirName(dir_))) {
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
    auto old = ScanLegacyRevisions(dir_, SourceName());
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

Result<std::vector<Revision>> Repository::Revisions() const {
  auto list = ScanRevisions();
  if (!list.ok()) return list.status();
  for (const auto& d : list->damaged) {
    std::lock_guard<std::mutex> l(warned_mu_);
    if (warned_.insert(d.id).second) {
      spdlog::warn("skipping damaged revision {}: {}", d.id,
                   d.status.Message());
    }
  }
  return std::move(list->healthy);
}

std::vector<std::string> Repository::RevisionDirectories() const {
  std::vector<std::string> dirs{RevisionsDirName(dir_)};
  if (legacy()) dirs.push_back(dir_);
  return dirs;
}

Result<std::vector<std::string>> Repository::IndexIds() const {
  if (legacy() && !Exists(RevisionsDirName(dir_))) {
    return std::vector<std::string>{};
  }
  return ListRevisionFiles(RevisionsDirName(dir_), RevisionFileType::kIndex);
}

Result<RevisionIndex> Repository::LoadIndex(const Revision& revision) const {
  if (revision.legacy) return LoadLegacyIndex(dir_, revision.id);
  return LoadIndex(revision.id);
}

Result<RevisionIndex> ReadIndexFile(int fd, uint64_t file_size,
                                    const std::string& path) {
  // The header says how large the file must be: check that before reading
  // (and allocating for) the slots.
  std::vector<uint8_t> bytes(std::min<uint64_t>(file_size, kIndexHeaderSize));
  Status s = PReadAll(fd, bytes, 0, path);
  if (!s.ok()) return s;
  auto expected = RevisionIndex::FileSizeFromHeader(bytes, path);
  if (!expected.ok()) return expected.status();
  if (file_size != *expected) {
    return Status::Corruption("index file is " + std::to_string(file_size) +
                                  " bytes, its header says " +
                                  std::to_string(*expected),
                              path);
  }
  bytes.resize(*expected);
  s = PReadAll(fd, std::span<uint8_t>(bytes).subspan(kIndexHeaderSize),
               kIndexHeaderSize, path);
  if (!s.ok()) return s;
  return RevisionIndex::Decode(bytes, path);
}

Result<RevisionIndex> Repository::LoadIndex(const std::string& id) const {
  const std::string path = IndexPath(id);
  struct stat st;
  auto fd = OpenRegularFile(path, &st);
  if (fd.status().IsNotFound()) {
    return Status::Corruption("index of revision " + id + " is missing", path);
  }
  if (!fd.ok()) return fd.status();
  return ReadIndexFile(fd->get(), static_cast<uint64_t>(st.st_size), path);
}

Status Repository::Publish(const Revision& revision,
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

Status Repository::UpdateMetadata(const Revision& revision) {
  if (revision.legacy) return UpdateLegacyMetadata(dir_, revision);
  if (!Exists(RevisionPath(revision.id))) {
    return Status::NotFound("no such revision", revision.id);
  }
  return WriteFileAtomic(RevisionPath(revision.id), revision.ToYaml(),
                         tmp_dir());
}

Status Repository::Forget(const std::string& id) {
  const std::string rev = RevisionPath(id);
  if (legacy() && !Exists(rev)) return ForgetLegacyRevision(dir_, id);
  if (::unlink(rev.c_str()) != 0 &&
      !(errno == EISDIR && ::rmdir(rev.c_str()) == 0)) {
    return Status::FromErrno(errno, "remove", rev);
  }
  Status s = SyncDir(RevisionsDirName(dir_));
  if (!s.ok()) return s;
  const std::string idx = IndexPath(id);
  if (::unlink(idx.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove", idx);
  }
  return SyncDir(RevisionsDirName(dir_));
}

Result<Repository::Locks> Repository::LockWriter(std::string_view what) {
  Locks locks;
  std::string note =
      std::string(what) + " (pid " + std::to_string(::getpid()) + ")";
  // In a 2.x repository, 2.x's own writer lock: a Python backy backing it
  // up (or our `upgrade`) holds .backup exclusively.
  auto w = FileLock::Acquire(
      legacy() ? LegacyBackupLockFileName(dir_) : WriterLockFileName(dir_),
      // 2.x left .backup empty: no holder note written into it.
      FileLock::Mode::kExclusive, legacy() ? std::string() : note);
  if (!w.ok()) return w.status();
  locks.writer = std::move(*w);
  auto p = LockReader();
  if (!p.ok()) return p.status();
  locks.purge = std::move(*p);
  return locks;
}

Result<FileLock> Repository::LockReader() {
  // In a 2.x repository, .purge as 2.x's readers took it: a Python backy
  // purge (exclusive) cannot delete chunks under us, nor we read while it
  // runs.
  return FileLock::AcquireWaiting(
      legacy() ? LegacyPurgeLockFileName(dir_) : PurgeLockFileName(dir_),
      FileLock::Mode::kShared, [&] {
        if (legacy()) {
          spdlog::info(
              "waiting for a backy 2.x purge of {} to finish ({} is locked)",
              dir_, LegacyPurgeLockFileName(dir_));
        } else {
          spdlog::info("waiting for a purge of {} to finish", dir_);
        }
      });
}

Result<RevisionPin> Repository::PinRevision(const Revision& revision,
                                            std::string_view what) {
  return RevisionPin::Create(
      dir_, revision,
      std::string(what) + " (pid " + std::to_string(::getpid()) + ")");
}

Result<FileLock> Repository::LockPurge() {
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
        FileLock::Acquire(PurgeLockFileName(dir_), FileLock::Mode::kExclusive);
    if (!p.status().IsBusy()) return p;
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Busy(
          "repository is in use by a backup, forget, expire, distrust, "
          "upgrade or verify; purge later",
          dir_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status Repository::RemoveLeftovers() {
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
