#include "backup/source_factory.h"

#include <filesystem>

#include "sources/file_source.h"

namespace backy::backup {

Result<std::unique_ptr<sources::Source>> MakeSource(
    const store::RepositoryConfig& config, const std::string& config_name) {
  const auto& src = config.source;
  const std::string type = src.at("type");
  if (type == "file") {
    auto it = src.find("filename");
    if (it == src.end() || it->second.empty()) {
      return Status::InvalidArgument("source of type 'file' needs 'filename'",
                                     config_name);
    }
    return std::unique_ptr<sources::Source>(
        new sources::FileSource(it->second));
  }
  return Status::NotSupported("unknown source type '" + type + "'",
                              config_name);
}

Result<std::map<std::string, std::string>> SourceSectionFor(
    const std::string& type, const std::string& spec) {
  if (type == "file") {
    std::error_code ec;
    auto abs = std::filesystem::absolute(spec, ec);
    if (ec) return Status::InvalidArgument("bad path", spec);
    if (!std::filesystem::exists(abs, ec)) {
      return Status::NotFound("source image does not exist", abs.string());
    }
    return std::map<std::string, std::string>{{"type", "file"},
                                              {"filename", abs.string()}};
  }
  return Status::NotSupported("unknown source type '" + type +
                              "' (supported: file)");
}

}  // namespace backy::backup
