#include "backup/scheduler/reconcile.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "backup/scheduler/metrics.h"
#include "store/filename.h"
#include "store/fs_util.h"
#include "store/legacy_repository.h"
#include "store/repository.h"
#include "store/revision.h"

namespace backy::backup::scheduler {

Status MakePrivateDir(const std::string& dir, bool warn) {
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  if (!parent.empty() && parent != dir) {
    Status s = store::MakeDirs(parent);
    if (!s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), 0700) == 0) {
    ::chmod(dir.c_str(), 0700);
    return Status::OK();
  }
  if (errno != EEXIST) return Status::FromErrno(errno, "mkdir", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return Status::FromErrno(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("not a directory", dir);
  }
  if (warn && (st.st_mode & 0077) != 0) {
    spdlog::warn("{} is mode {:o}: other users may read it (chmod 0700)", dir,
                 st.st_mode & 07777);
  }
  return Status::OK();
}

Status MakePrivateFile(const std::string& path) {
  const int fd =
      ::open(path.c_str(),
             O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::FromErrno(errno, "stat", path);
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::InvalidArgument("not a regular file", path);
  } else if (st.st_uid == ::geteuid() && (st.st_mode & 0077) != 0 &&
             ::fchmod(fd, 0600) != 0) {
    s = Status::FromErrno(errno, "chmod", path);
  }
  ::close(fd);
  return s;
}

Status PrepareDirectories(const DaemonConfig& config) {
  Status s = MakePrivateDir(config.state_dir, /*warn=*/false);
  if (!s.ok()) {
    return s.WithContext(config.RadosBase() ? "global.state-dir"
                                            : "global.base-dir");
  }
  if (config.RadosBase()) {
    // The job logs' directories (a directory base-dir has the repository
    // directories instead, made by Init).
    for (const auto& [name, job] : config.jobs) {
      s = MakePrivateDir(config.JobStateDir(name), /*warn=*/false);
      if (!s.ok()) return s.WithContext("global.state-dir");
    }
  }
  const auto status_dir =
      std::filesystem::path(config.status_file).parent_path().string();
  if (!status_dir.empty() && status_dir != config.state_dir) {
    s = MakePrivateDir(status_dir, /*warn=*/false);
    if (!s.ok()) return s.WithContext("global.status-file");
  }
  return Status::OK();
}

void LogJobChanges(const DaemonConfig& before, const DaemonConfig& after) {
  for (const auto& [name, job] : before.jobs) {
    if (!after.jobs.count(name)) spdlog::info("job {}: removed", name);
  }
  for (const auto& [name, job] : after.jobs) {
    auto it = before.jobs.find(name);
    if (it == before.jobs.end()) {
      spdlog::info("job {}: added", name);
    } else if (!(it->second == job)) {
      spdlog::info("job {}: changed", name);
    }
  }
}

bool NeedsUpgrade(const std::string& dir) {
  auto legacy = store::IsLegacyRepository(dir);
  if (!legacy.ok()) return false;
  struct stat st;
  return *legacy ||
         ::lstat(store::LegacyBackupLockFileName(dir).c_str(), &st) == 0;
}

void EnsureRepository(const DaemonConfig& config, const std::string& name,
                      const JobConfig& job) {
  const std::string dir = config.JobDir(name);
  const auto options = config.RepoOptions();
  if (!config.RadosBase() && NeedsUpgrade(dir)) {
    spdlog::info(
        "job {}: {} is (still) a backy 2.x repository: its next run upgrades "
        "it "
        "(backy upgrade) before the backup",
        name, dir);
    return;
  }
  auto repo = store::Repository::Open(dir, options);
  if (!repo.ok() && repo.status().IsNotFound()) {
    store::RepositoryConfig rc;
    rc.source = job.source;
    rc.schedule = job.schedule;
    Status s = store::Repository::Init(dir, rc, options);
    if (!s.ok() && s.IsInvalidArgument() && config.RadosBase()) {
      // Another host created it just now.
      return;
    }
    if (!s.ok()) {
      spdlog::error("job {}: cannot create the repository: {}", name,
                    s.Message());
    } else {
      spdlog::info("job {}: created repository {}", name, dir);
    }
    return;
  }
  if (!repo.ok()) {
    spdlog::error("job {}: {}", name, repo.status().Message());
    return;
  }
  const auto& current = (*repo)->config();
  if (current.source == job.source && current.schedule == job.schedule) {
    return;
  }
  store::RepositoryConfig rc = current;
  rc.source = job.source;
  rc.schedule = job.schedule;
  Status s = store::Repository::WriteConfig(dir, rc, options);
  if (!s.ok()) {
    spdlog::error("job {}: cannot update the repository config: {}", name,
                  s.Message());
  } else {
    spdlog::info("job {}: updated the source and schedule in {}", name,
                 (*repo)->ConfigName());
  }
}

void LoadHistory(const DaemonConfig& config, const std::string& name,
                 Planner* planner, bool measure_disk) {
  auto repo =
      store::Repository::Open(config.JobDir(name), config.RepoOptions());
  if (!repo.ok()) return;
  auto revs = (*repo)->Revisions();
  if (!revs.ok()) {
    spdlog::warn("job {}: {}", name, revs.status().Message());
    return;
  }
  std::map<std::string, int64_t> last;
  std::optional<int64_t> newest;
  RepositoryFigures figures;
  figures.revisions = static_cast<int64_t>(revs->size());
  for (const auto& r : *revs) {
    for (const auto& t : r.tags) {
      auto& v = last[t];
      v = std::max(v, r.timestamp_us);
    }
    if (!newest || r.timestamp_us > *newest) {
      newest = r.timestamp_us;
      figures.newest_bytes_read = r.stats.bytes_read;
      figures.newest_bytes_written = r.stats.bytes_written;
    }
  }
  planner->SetHistory(name, std::move(last), newest);
  auto it = planner->jobs().find(name);
  if (it != planner->jobs().end() && it->second.figures.disk_measured &&
      !measure_disk) {
    figures.disk_bytes = it->second.figures.disk_bytes;
    figures.disk_measured = true;
  } else if (!config.RadosBase()) {
    // (A pool's usage is Ceph's to report: `ceph df`.)
    auto disk = DiskBytes(config.JobDir(name));
    if (disk.ok()) {
      figures.disk_bytes = *disk;
      figures.disk_measured = true;
    } else {
      spdlog::warn("job {}: {}", name, disk.status().Message());
    }
  }
  planner->SetFigures(name, figures);
}

Result<std::set<std::string>> ClaimRun(const DaemonConfig& config,
                                       const std::string& name,
                                       Planner* planner, int64_t now_us,
                                       store::RepositoryLock* lease) {
  auto repo =
      store::Repository::Open(config.JobDir(name), config.RepoOptions());
  if (!repo.ok()) return repo.status();
  auto lock = (*repo)->LockJob("scheduler job " + name);
  if (!lock.ok()) return lock.status();
  *lease = std::move(*lock);
  // Under the lease, from the repository's own revisions: a tag another
  // host backed up since this one last read them is no longer due.
  LoadHistory(config, name, planner, /*measure_disk=*/false);
  const NextRun next = planner->Next(name, now_us);
  if (next.time_us > now_us) return std::set<std::string>{};
  return next.tags;
}

// True when expire by `schedule` would take every tag of `r` at once: each
// is kept 0 or not in the schedule, none is a manual: one (never expired).
// Without any schedule nothing expires.
static bool KeptByNoTag(const store::Revision& r,
                        const store::Schedule& schedule) {
  if (schedule.empty()) return false;
  for (const auto& t : r.tags) {
    if (t.starts_with("manual:")) return false;
    auto it = schedule.tags.find(t);
    if (it != schedule.tags.end() && it->second.keep > 0) return false;
  }
  return true;
}

std::vector<std::string> NewRevisionsFor(
    const std::vector<store::Revision>& source,
    const std::vector<store::Revision>& target,
    const store::Schedule& schedule) {
  std::set<std::string> have;
  std::optional<int64_t> newest;
  for (const auto& r : target) {
    have.insert(r.id);
    newest = std::max(newest.value_or(r.timestamp_us), r.timestamp_us);
  }
  std::vector<std::string> ids;
  for (const auto& r : source) {
    if (have.count(r.id) || (newest && r.timestamp_us < *newest) ||
        KeptByNoTag(r, schedule)) {
      continue;
    }
    ids.push_back(r.id);
  }
  return ids;
}

Result<std::vector<std::string>> PrepareCopyTarget(
    const std::string& source_dir, const std::string& target,
    const store::Schedule& schedule, const store::RepositoryOptions& options) {
  auto from = store::Repository::Open(source_dir, options);
  if (!from.ok()) return from.status();
  auto to = store::Repository::Open(target, options);
  if (!to.ok() && to.status().IsNotFound()) {
    store::RepositoryConfig rc = (*from)->config();
    rc.schedule = schedule;
    Status s = store::Repository::Init(target, rc, options);
    if (!s.ok()) return s.WithContext("creating the copy target");
    spdlog::info("created the copy target {}", target);
    to = store::Repository::Open(target, options);
  } else if (to.ok() && !((*to)->config().schedule == schedule)) {
    store::RepositoryConfig rc = (*to)->config();
    rc.schedule = schedule;
    Status s = store::Repository::WriteConfig(target, rc, options);
    if (!s.ok()) return s.WithContext("the copy target's schedule");
    to = store::Repository::Open(target, options);
  }
  if (!to.ok()) return to.status();
  auto source_revs = (*from)->Revisions();
  if (!source_revs.ok()) return source_revs.status();
  auto target_revs = (*to)->Revisions();
  if (!target_revs.ok()) return target_revs.status();
  return NewRevisionsFor(*source_revs, *target_revs, schedule);
}

void ReconcileJobs(const DaemonConfig& config, Planner* planner) {
  planner->Configure(config);
  for (const auto& [name, job] : config.jobs) {
    EnsureRepository(config, name, job);
    LoadHistory(config, name, planner, /*measure_disk=*/false);
  }
}

}  // namespace backy::backup::scheduler
