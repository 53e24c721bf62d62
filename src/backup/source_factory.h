// Builds the Source a repository's config describes (source.type: file,
// ceph-rbd), the backup options its source section sets, and the config
// section `backy init TYPE ...` writes. Stateless functions; thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "backup/backup_run.h"
#include "sources/source.h"
#include "store/repository.h"

namespace backy::backup {

// backy 2.x's source type for a Flying Circus VM's root disk: a ceph-rbd
// image whose snapshot 2.x asked the VM (through Consul) to freeze for. Read
// here as plain ceph-rbd from `pool`/`image`, with a warning; its `vm` and
// `consul_acl_token` keys are ignored.
inline constexpr const char* kFlyingCircusType = "flyingcircus";

// Checks that a source section names a known type with the keys it needs,
// one message per fault (followed by " (OBJECT)" when `object` is set):
//   NotSupported     "source 'type' must be file or ceph-rbd, got 'X'"
//                    (without ", got ..." when there is no type)
//   InvalidArgument  "a 'file' source needs 'filename'"
//   InvalidArgument  "a 'ceph-rbd' source needs 'pool' and 'image'"
//                    (and the same for 'flyingcircus')
// Used by MakeSource and by the scheduler's config (scheduler/config.cc).
Status ValidateSourceSection(const std::map<std::string, std::string>& source,
                             std::string_view object = {});

// The Source for `config.source`. The faults of ValidateSourceSection
// (naming `config_name`), InvalidArgument for a malformed key;
// NotSupported for ceph-rbd in a build without RBD support. Does not connect to
// anything.
Result<std::unique_ptr<sources::Source>> MakeSource(
    const store::RepositoryConfig& config, const std::string& config_name);

// Applies the source section's backup settings to `options`:
// `full-always` (true/false) and, for ceph-rbd, `verify_budget` (seconds)
// and `verify_sample` (fraction 0..1). InvalidArgument for malformed
// values; absent keys leave `options` unchanged.
Status ApplySourceOptions(const store::RepositoryConfig& config,
                          const std::string& config_name,
                          BackupOptions* options);

// What `backy init` was told besides TYPE and SPEC.
struct SourceInitOptions {
  // ceph-rbd only; empty means "not set" (CEPH_CONF/CEPH_ARGS and Ceph's
  // defaults apply at backup time).
  std::string ceph_conf;
  std::string client_id;
  std::string keyring;
  int verify_budget_s = 300;
  int connect_timeout_s = 30;
  bool full_always = false;
  // Check that the source exists (ceph-rbd: connect and open the image).
  bool check = true;
};

// The config's source section for `backy init TYPE SPEC`. For file: NotFound
// when the image is missing, InvalidArgument when it is empty, a directory
// or neither a regular file nor a block device (sources::ProbeFileImage). For
// ceph-rbd (SPEC is POOL/IMAGE or POOL/NAMESPACE/IMAGE): with `check`, connects
// and fails with the cluster's error (unreachable, pool or image missing)
// unless the image exists.
Result<std::map<std::string, std::string>> SourceSectionFor(
    const std::string& type, const std::string& spec,
    const SourceInitOptions& init = {});

}  // namespace backy::backup
