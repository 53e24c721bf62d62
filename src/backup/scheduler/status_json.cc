// yaml-cpp's exceptions stay in this file (YamlTextToJsonLine).
#include "backup/scheduler/status_json.h"

#include <charconv>
#include <regex>

namespace backy::backup::scheduler {
namespace {

using Json = nlohmann::ordered_json;

bool OneOf(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

// A plain scalar's value under YAML 1.1's resolvers (PyYAML's), for the
// types JSON has.
Json PlainScalar(const std::string& s) {
  if (OneOf(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (OneOf(s,
            {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})) {
    return true;
  }
  if (OneOf(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off",
                "OFF"})) {
    return false;
  }
  // Decimal integers only: YAML 1.1 reads "012" as octal and "0x1f" as
  // hex, which backy never writes; they stay strings here.
  static const std::regex kInt("[-+]?(0|[1-9][0-9]*)");
  static const std::regex kFloat(
      "[-+]?([0-9][0-9]*\\.[0-9]*|\\.[0-9]+)([eE][-+][0-9]+)?");
  if (std::regex_match(s, kInt)) {
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    const char* end = s.data() + s.size();
    int64_t i = 0;
    if (auto r = std::from_chars(begin, end, i); r.ec == std::errc()) return i;
    uint64_t u = 0;
    if (auto r = std::from_chars(begin, end, u); r.ec == std::errc()) return u;
    return std::stod(s);
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return s;
}

}  // namespace

Json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : node) {
        o[kv.first.Scalar()] = YamlToJson(kv.second);
      }
      return o;
    }
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& item : node) a.push_back(YamlToJson(item));
      return a;
    }
    case YAML::NodeType::Scalar:
      // yaml-cpp tags a quoted scalar "!", a plain one "?".
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
        return node.Scalar();
      }
      return PlainScalar(node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
  }
  return nullptr;
}

Result<std::string> YamlTextToJsonLine(const std::string& yaml) {
  try {
    return DumpJsonLine(YamlToJson(YAML::Load(yaml)));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("YAML to JSON: ") + e.what());
  }
}

}  // namespace backy::backup::scheduler
