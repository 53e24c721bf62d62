// The JSON form of the scheduler's status (nlohmann::ordered_json, keys in
// the order of VisitFields in status.h), shared by StatusDoc::ToJson and
// the API's GET /v1/jobs. Internal to backy_app (nlohmann-json is a private
// dependency). Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backup/scheduler/status.h"

namespace backy::backup::scheduler {

// One job's status fields as a JSON object.
nlohmann::ordered_json JobStatusJson(const JobStatus& job);

// `j` as one line of compact JSON plus "\n". Invalid UTF-8 in strings (a
// child's stderr may hold any bytes) is replaced by U+FFFD, never thrown.
std::string DumpJsonLine(const nlohmann::ordered_json& j);

}  // namespace backy::backup::scheduler
