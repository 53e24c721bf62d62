// yaml-cpp exceptions are converted to Status here and nowhere else.
#include "backup/export_authz.h"

#include <fcntl.h>
#include <limits.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>

#include "backup/revision_export.h"
#include "backup/scheduler/config.h"
#include "store/fs_util.h"

namespace backy::backup {
namespace {

// Longer than any PSK username or certificate common name (64 bytes by
// X.520) a site would use.
constexpr size_t kMaxIdentity = 1024;

// For messages and the log: the value as written (by a file or a client
// that may be hostile), quoted, cut short, bytes outside printable ASCII
// as '?'.
std::string Quote(std::string_view t) {
  std::string out = "'";
  for (size_t i = 0; i < t.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(t[i]);
    out += (c < 0x20 || c >= 0x7f) ? '?' : t[i];
  }
  if (t.size() > 40) out += "...";
  return out + "'";
}

// The scheduler's rule for job names (its config refuses the others), which
// are also the repository directories' names.
bool IsJobName(std::string_view name) {
  return scheduler::IsJobNameSpelling(name) && name.size() <= NAME_MAX;
}

bool HasControlCharacter(std::string_view s) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// The JOB of a JOB/SPEC name; a name without '/' is all JOB (what a job
// would be called if the inner provider ever took bare names).
std::string_view JobOf(std::string_view name) {
  return name.substr(0, name.find('/'));
}

// Reads `path` whole, with the checks of ExportAuthz::Load().
Status ReadAuthzFile(const std::string& path, std::string* out) {
  const int fd = ::open(
      path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ELOOP) {
      return Status::InvalidArgument(
          "authorization file is a symbolic link (give the file itself)", path);
    }
    return Status::FromErrno(errno, "reading the authorization file", path);
  }
  store::UniqueFd closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Status::FromErrno(errno, "reading the authorization file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("authorization file is not a regular file",
                                   path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxAuthzFileSize) {
    return Status::InvalidArgument("authorization file is larger than 1 MiB (" +
                                       std::to_string(st.st_size) + " bytes)",
                                   path);
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(
        "authorization file is owned by uid " + std::to_string(st.st_uid) +
            ", neither root nor the server's user (chown it)",
        path);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::InvalidArgument(
        "authorization file is writable by group or others (chmod go-w)", path);
  }
  // One byte more than the cap: a file that grew since fstat() is refused
  // instead of read cut short.
  out->assign(kMaxAuthzFileSize + 1, '\0');
  size_t got = 0;
  while (got < out->size()) {
    const ssize_t n = ::read(fd, out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::FromErrno(errno, "reading the authorization file", path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxAuthzFileSize) {
    return Status::InvalidArgument("authorization file is larger than 1 MiB",
                                   path);
  }
  out->resize(got);
  return Status::OK();
}

class Parser {
 public:
  explicit Parser(const std::string& path) : path_(path) {}

  // "PATH:LINE: what", LINE the node's.
  Status Error(const YAML::Node& at, const std::string& what) const {
    const int line = at.IsDefined() ? at.Mark().line + 1 : 0;
    return Status::InvalidArgument(
        path_ + ":" + std::to_string(line > 0 ? line : 1) + ": " + what);
  }

  // Adds the grants of the mapping `root` to `*grants`.
  // (A template: ExportAuthz's map type is private to it.)
  template <typename GrantMap>
  Status Grants(const YAML::Node& root, GrantMap* grants) const {
    if (!root.IsMap()) {
      return Error(root,
                   "expected a mapping of TLS identity to a list of job "
                   "names or \"*\" (e.g. alice: [vm1, vm7])");
    }
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) {
        return Error(kv.first, "an identity must be a string");
      }
      const std::string identity = kv.first.Scalar();
      const std::string where = "identity " + Quote(identity);
      if (identity.empty()) return Error(kv.first, "empty identity");
      if (identity == "*") {
        return Error(kv.first,
                     "'*' is not an identity: there is no entry for "
                     "everyone, name each identity");
      }
      if (identity.size() > kMaxIdentity || HasControlCharacter(identity)) {
        return Error(kv.first, where +
                                   ": not a PSK username or certificate "
                                   "name (control characters, or longer "
                                   "than " +
                                   std::to_string(kMaxIdentity) + " bytes)");
      }
      if (grants->count(identity)) {
        return Error(kv.first, where + " is given twice");
      }
      auto& grant = (*grants)[identity];
      const YAML::Node& v = kv.second;
      if (v.IsScalar() && v.Scalar() == "*") {
        grant.all = true;
        continue;
      }
      if (!v.IsSequence()) {
        return Error(v.IsDefined() && !v.IsNull() ? v : kv.first,
                     where +
                         " must have a list of job names ([] for none) or "
                         "\"*\" for all jobs");
      }
      for (const auto& j : v) {
        if (!j.IsScalar()) {
          return Error(j, where + ": a job name must be a string");
        }
        const std::string& job = j.Scalar();
        if (job == "*") {
          return Error(j, where + ": '*' in a list; write " + Quote(identity) +
                              ": \"*\" for all jobs");
        }
        if (!IsJobName(job)) {
          return Error(j, where + ": bad job name " + Quote(job) +
                              " (letters, digits, '.', '_', '-', not first "
                              "'.' or '-', at most " +
                              std::to_string(NAME_MAX) + " bytes)");
        }
        if (!grant.jobs.insert(job).second) {
          return Error(j, where + ": job " + Quote(job) + " is listed twice");
        }
      }
    }
    return Status::OK();
  }

 private:
  const std::string& path_;
};

}  // namespace

Result<ExportAuthz> ExportAuthz::Load(const std::string& path) {
  std::string text;
  Status s = ReadAuthzFile(path, &text);
  if (!s.ok()) return s;
  return Parse(text, path);
}

Result<ExportAuthz> ExportAuthz::Parse(std::string_view text,
                                       const std::string& path) {
  ExportAuthz authz;
  Parser parser(path);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsDefined() || root.IsNull()) {
      return Status::InvalidArgument(
          path + ":1: the file is empty (write {} to let nobody read)");
    }
    Status s = parser.Grants(root, &authz.grants_);
    if (!s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(
        path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return authz;
}

bool ExportAuthz::MaySee(std::string_view identity,
                         std::string_view job) const {
  // No identity has no grant, and what names no job is in no grant (not
  // even "*": that is every job).
  if (identity.empty() || job.empty()) return false;
  auto it = grants_.find(identity);
  if (it == grants_.end()) return false;
  return it->second.all || it->second.jobs.count(job) > 0;
}

AuthorizedExports::AuthorizedExports(std::unique_ptr<nbd::ExportProvider> inner,
                                     ExportAuthz authz)
    : inner_(std::move(inner)), authz_(std::move(authz)) {}

Result<std::vector<nbd::ExportInfo>> AuthorizedExports::ListExports(
    const nbd::Client& client) {
  // Nothing to show: do not even read the repositories.
  if (client.identity.empty()) return std::vector<nbd::ExportInfo>{};
  auto all = inner_->ListExports(client);
  if (!all.ok()) return all;
  std::vector<nbd::ExportInfo> out;
  for (auto& e : *all) {
    // Every name of a directory of repositories has a JOB part; a name
    // without one belongs to no job the file can grant.
    if (e.name.find('/') == std::string::npos) continue;
    if (authz_.MaySee(client.identity, JobOf(e.name))) {
      out.push_back(std::move(e));
    }
  }
  return out;
}

Result<std::shared_ptr<nbd::Export>> AuthorizedExports::OpenExport(
    std::string_view name, const nbd::Client& client) {
  const bool has_job = name.find('/') != std::string_view::npos;
  if (has_job && !authz_.MaySee(client.identity, JobOf(name))) {
    // The connection log says only what the client was told (no such
    // job); this line says why.
    spdlog::info("nbd-server: --authz: {}, {}, may not open {}", client.peer,
                 client.identity.empty() ? "no TLS identity"
                                         : "TLS " + Quote(client.identity),
                 Quote(name));
    return RepositoryExports::UnknownJob(name);
  }
  auto exp = inner_->OpenExport(name, client);
  if (!exp.ok()) return exp;
  // Whatever name opened it, the export is served only if its job is
  // granted: RepositoryExports names every export JOB/ID, so a bare name
  // the inner provider might one day resolve is held to the same rule.
  const std::string canonical = (*exp)->CanonicalName();
  const std::string_view job =
      JobOf(canonical.empty() ? name : std::string_view(canonical));
  if (!authz_.MaySee(client.identity, job))
    return RepositoryExports::UnknownJob(name);
  return exp;
}

}  // namespace backy::backup
