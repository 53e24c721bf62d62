// ExportAuthz: which jobs each TLS identity may read (`backy nbd-server
// --authz FILE`), and AuthorizedExports: the ExportProvider that applies it
// to a directory of repositories, whose export names are JOB/SPEC.
//
// The file is YAML, a mapping from TLS identity (PSK username, or the
// common name of a verified client certificate) to a list of job names, or
// to "*" for every job:
//   alice: [vm1, vm7]
//   bob: "*"
//   carol: []          # may see nothing (as anyone not in the file)
// It is read once, at startup, and checked strictly: every bad value is a
// one-line error naming the file, the line and the key.
//
// Thread-safety: an ExportAuthz is immutable once loaded; AuthorizedExports
// is as thread-safe as the provider it wraps.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/export.h"
#include "store/status.h"

namespace backy::backup {

// The largest authorization file read: far more identities than any site
// has, and a bound on what a damaged file makes the server parse.
inline constexpr uint64_t kMaxAuthzFileSize = 1 << 20;

class ExportAuthz {
 public:
  // Reads and parses `path`. The file must be a regular file, not a
  // symbolic link, at most kMaxAuthzFileSize bytes, owned by root or by the
  // user the server runs as, and not writable by group or others (as sshd
  // checks authorized_keys: whoever may change it may read every disk). It
  // holds no secrets, so others may read it. InvalidArgument naming the
  // file for every refusal, NotFound when it does not exist.
  static Result<ExportAuthz> Load(const std::string& path);

  // Parses `text`, the content of `path` (named in errors, "PATH:LINE:
  // what"). Refuses: a document that is not a mapping, an identity that is
  // empty, "*", has control characters or is given twice; a value that is
  // neither "*" nor a list; a list entry that is not a valid job name
  // (letters, digits, '.', '_', '-', not first '.' or '-', as the
  // scheduler's job names) or is listed twice. An empty list is allowed.
  static Result<ExportAuthz> Parse(std::string_view text,
                                   const std::string& path);

  // True if `identity` may see job `job`. The empty identity (a client
  // without TLS, or without a verified certificate) may see nothing.
  bool MaySee(std::string_view identity, std::string_view job) const;

  // How many identities the file names (for the startup log).
  size_t identity_count() const { return grants_.size(); }

 private:
  struct Grant {
    bool all = false;                         // "*"
    std::set<std::string, std::less<>> jobs;  // unless all
  };
  std::map<std::string, Grant, std::less<>> grants_;  // identity -> jobs
};

// Serves what `inner` (a RepositoryExports over a directory of
// repositories, export names JOB/SPEC) serves, to each client only for the
// jobs `authz` gives its TLS identity: ListExports() leaves the others out,
// and OpenExport() of another job's export fails with the very NotFound a
// job that does not exist gets from `inner`, so a client learns nothing of
// the jobs it may not read. Names without a '/' are `inner`'s to refuse.
class AuthorizedExports final : public nbd::ExportProvider {
 public:
  AuthorizedExports(std::unique_ptr<nbd::ExportProvider> inner,
                    ExportAuthz authz);

  Result<std::vector<nbd::ExportInfo>> ListExports(
      const nbd::Client& client) override;
  Result<std::shared_ptr<nbd::Export>> OpenExport(
      std::string_view name, const nbd::Client& client) override;

 private:
  const std::unique_ptr<nbd::ExportProvider> inner_;
  const ExportAuthz authz_;
};

}  // namespace backy::backup
