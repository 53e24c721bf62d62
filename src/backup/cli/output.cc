// yaml-cpp's exceptions are converted to Status here.
#include "backup/cli/output.h"

#include <cstdio>

#include "backup/scheduler/status_json.h"

namespace backy::backup::cli {
namespace {

// A double as YAML 1.1 (PyYAML) reads a float: "12.0" and "1.0e+20", not
// "12" or "1e+20" (backy 2.x's stats.duration is a float, and scripts check
// its type).
std::string FloatScalar(std::string text) {
  if (text.find('.') != std::string::npos) return text;
  const size_t e = text.find_first_of("eE");
  return text.insert(e == std::string::npos ? text.size() : e, ".0");
}

}  // namespace

Result<YAML::Node> RevisionYaml(const store::Revision& r) {
  YAML::Node ours;
  try {
    ours = YAML::Load(r.ToYaml());
  } catch (const YAML::Exception& e) {
    return Status::Corruption("revision " + r.id + ": " + e.what());
  }
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : ours) {
    const auto key = kv.first.as<std::string>();
    out[key] = kv.second;
    if (key == "id") out["uuid"] = r.id;
  }
  if (out["stats"] && out["stats"]["duration"]) {
    out["stats"]["duration"] =
        FloatScalar(out["stats"]["duration"].as<std::string>());
  }
  return out;
}

std::string EmitYaml(const YAML::Node& doc) {
  YAML::Emitter e;
  e << doc;
  return std::string(e.c_str()) + "\n";
}

Result<std::string> RenderDocument(const std::string& yaml, bool json) {
  if (!json) return yaml;
  return scheduler::YamlTextToJsonLine(yaml);
}

Status PrintDocument(const std::string& yaml, bool json) {
  auto out = RenderDocument(yaml, json);
  if (!out.ok()) return out.status();
  std::fputs(out->c_str(), stdout);
  return Status::OK();
}

}  // namespace backy::backup::cli
