// backy's one JSON serializer (nlohmann::ordered_json): the scheduler's
// status (keys in the order of VisitFields in status.h), shared by
// StatusDoc::ToJson and the API's GET /v1/jobs, and the JSON form of a
// YAML document, which the CLI's --json prints (cli/output.h). Used by
// backy_app and the backy command (both link nlohmann-json privately).
// Pure functions; thread-safe.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>

#include "backup/scheduler/status.h"
#include "store/status.h"

namespace backy::backup::scheduler {

// One job's status fields as a JSON object.
nlohmann::ordered_json JobStatusJson(const JobStatus& job);

// `j` as one line of compact JSON plus "\n". Invalid UTF-8 in strings (a
// child's stderr may hold any bytes) is replaced by U+FFFD, never thrown.
std::string DumpJsonLine(const nlohmann::ordered_json& j);

// A YAML node as JSON, as a YAML 1.1 reader (PyYAML, which backy 2.x's
// scripts use) sees it: a mapping is an object (keys in document order), a
// sequence an array, a quoted scalar a string, and a plain scalar null (~,
// null, empty), a boolean (true/false, yes/no, on/off in any of their three
// spellings), an integer (decimal, within 64 bits), a float (with a '.') or
// else a string: a timestamp too, JSON having no time type.
nlohmann::ordered_json YamlToJson(const YAML::Node& node);

// `yaml` (one document) as DumpJsonLine of YamlToJson. InvalidArgument when
// it does not parse.
Result<std::string> YamlTextToJsonLine(const std::string& yaml);

}  // namespace backy::backup::scheduler
