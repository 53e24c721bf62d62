// Machine-readable output of the commands: the YAML mapping of a revision
// (status --yaml, find --yaml) and one YAML document printed as it is or,
// for --json, as JSON converted from that same document by the scheduler's
// JSON helpers (scheduler/status_json.h): both forms carry the same fields
// because there is one list of them. Pure, except PrintDocument;
// thread-safe.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "store/revision.h"
#include "store/status.h"

namespace backy::backup::cli {

// One revision as `status --yaml` lists it: its .rev mapping
// (Revision::ToYaml) with backy 2.x's `uuid` after `id`; stats.duration a
// float.
Result<YAML::Node> RevisionYaml(const store::Revision& r);

// `doc` as a YAML document ending in "\n".
std::string EmitYaml(const YAML::Node& doc);

// `yaml` (one document) as it is, or as JSON (one line) when `json`.
Result<std::string> RenderDocument(const std::string& yaml, bool json);

// Prints RenderDocument(yaml, json) to stdout.
Status PrintDocument(const std::string& yaml, bool json);

}  // namespace backy::backup::cli
