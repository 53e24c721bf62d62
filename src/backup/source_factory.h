// Builds the Source a repository's config describes (source.type: file,
// ceph-rbd) and the config section `backy init TYPE ...` writes.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "sources/source.h"
#include "store/repository.h"

namespace backy::backup {

// The Source for `config.source`. InvalidArgument names the missing key.
Result<std::unique_ptr<sources::Source>> MakeSource(
    const store::RepositoryConfig& config, const std::string& config_name);

// The config's source section for `backy init TYPE SPEC`.
Result<std::map<std::string, std::string>> SourceSectionFor(
    const std::string& type, const std::string& spec);

}  // namespace backy::backup
