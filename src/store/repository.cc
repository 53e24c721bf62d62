#include "store/repository.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "store/directory_repository.h"
#include "store/duration.h"
#include "store/fs_util.h"
#if BACKY_WITH_RADOS
#include "store/rados_repository.h"
#endif

namespace backy::store {

std::string RepositoryConfig::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << kRepositoryFormat;
  e << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : source) e << YAML::Key << k << YAML::Value << v;
  e << YAML::EndMap;
  e << YAML::Key << "store" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "compression" << YAML::Value
    << (compression.enabled ? "zstd" : "none");
  e << YAML::Key << "compression_level" << YAML::Value << compression.level;
  e << YAML::EndMap;
  if (!schedule.empty()) {
    e << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
    for (const auto& [tag, entry] : schedule.tags) {
      e << YAML::Key << tag << YAML::Value << YAML::Flow << YAML::BeginMap;
      e << YAML::Key << "interval" << YAML::Value
        << FormatDuration(entry.interval_seconds);
      e << YAML::Key << "keep" << YAML::Value << entry.keep;
      e << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::Key << "min-keep" << YAML::Value << schedule.min_keep;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

Result<RepositoryConfig> RepositoryConfig::FromYaml(const std::string& text,
                                                    const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap()) {
      return Status::Corruption("config is not a YAML map", name);
    }
    RepositoryConfig c;
    // No `format`: backy 2.x's config. 2.5 wrote {source: ..., schedule:
    // ...}; 2.4 the source's keys flat (`type: file`, `filename: ...`).
    c.legacy = !n["format"];
    if (!c.legacy) {
      int format = n["format"].as<int>(kRepositoryFormat);
      if (format != kRepositoryFormat) {
        return Status::NotSupported(
            "unsupported repository format " + std::to_string(format), name);
      }
    }
    YAML::Node src = n["source"];
    if (c.legacy && !src) {
      src = YAML::Node(YAML::NodeType::Map);
      for (const auto& kv : n) {
        const std::string key = kv.first.as<std::string>();
        if (key != "schedule" && kv.second.IsScalar()) src[key] = kv.second;
      }
    }
    if (!src || !src.IsMap()) {
      return Status::Corruption("config has no 'source' section", name);
    }
    for (const auto& kv : src) {
      if (!kv.second.IsScalar()) {
        return Status::Corruption(
            "source." + kv.first.as<std::string>() + " must be a scalar",
            name + ":" + std::to_string(kv.second.Mark().line + 1));
      }
      c.source[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    if (!c.source.count("type")) {
      return Status::Corruption("source has no 'type'", name);
    }
    if (YAML::Node store = n["store"]) {
      std::string comp = store["compression"].as<std::string>("zstd");
      if (comp != "zstd" && comp != "none") {
        return Status::Corruption(
            "store.compression must be 'zstd' or 'none', not '" + comp + "'",
            name + ":" + std::to_string(store["compression"].Mark().line + 1));
      }
      c.compression.enabled = comp == "zstd";
      c.compression.level = store["compression_level"].as<int>(3);
      if (c.compression.level < -7 || c.compression.level > 19) {
        return Status::Corruption(
            "store.compression_level must be between -7 and 19", name);
      }
    }
    if (YAML::Node sched = n["schedule"]) {
      if (!sched.IsMap()) {
        return Status::Corruption(
            "schedule must map tags to {interval, keep}",
            name + ":" + std::to_string(sched.Mark().line + 1));
      }
      for (const auto& kv : sched) {
        const std::string tag = kv.first.as<std::string>();
        const std::string where =
            name + ":" + std::to_string(kv.second.Mark().line + 1);
        if (!kv.second.IsMap() || !kv.second["interval"] ||
            !kv.second["keep"]) {
          return Status::Corruption(
              "schedule." + tag + " needs 'interval' and 'keep'", where);
        }
        auto interval = ParseDuration(kv.second["interval"].as<std::string>());
        if (!interval.ok()) {
          return Status::Corruption(
              "schedule." + tag + ".interval: " + interval.status().Message(),
              where);
        }
        int keep = kv.second["keep"].as<int>();
        if (keep < 0 || keep > 1000000) {
          return Status::Corruption(
              "schedule." + tag + ".keep must be from 0 to 1000000", where);
        }
        c.schedule.tags[tag] = {*interval, static_cast<uint32_t>(keep)};
      }
    }
    if (YAML::Node mk = n["min-keep"]) {
      int v = mk.as<int>();
      if (v < 0) {
        return Status::Corruption(
            "min-keep must be >= 0",
            name + ":" + std::to_string(mk.Mark().line + 1));
      }
      c.schedule.min_keep = static_cast<uint32_t>(v);
    }
    return c;
  } catch (const YAML::ParserException& e) {
    return Status::Corruption("YAML syntax error: " + e.msg,
                              name + ":" + std::to_string(e.mark.line + 1));
  } catch (const YAML::Exception& e) {
    return Status::Corruption(std::string("bad config: ") + e.msg,
                              name + ":" + std::to_string(e.mark.line + 1));
  }
}

Result<RepositoryLocation> RepositoryLocation::Parse(
    std::string_view location) {
  RepositoryLocation l;
  if (!IsRados(location)) {
    if (location.empty()) {
      return Status::InvalidArgument("empty repository location");
    }
    l.path = std::string(location);
    return l;
  }
  l.kind = Kind::kRados;
  const std::string_view spec = location.substr(6);
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = spec.find('/', pos);
    parts.emplace_back(spec.substr(pos, slash == std::string_view::npos
                                            ? std::string_view::npos
                                            : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        std::string(why) +
            " (expected rados:POOL/NAME or rados:POOL/NAMESPACE/NAME)",
        location);
  };
  if (parts.size() < 2 || parts.size() > 3) return bad("bad RADOS location");
  for (const auto& p : parts) {
    if (p.empty()) return bad("empty part in RADOS location");
  }
  l.pool = parts[0];
  if (parts.size() == 3) l.ns = parts[1];
  l.name = parts.back();
  // The name prefixes every object of the repository (NAME/head,
  // NAME/chunk/...): no slash, nothing a shell or a log would mangle.
  const bool name_ok = l.name != "." && l.name != ".." &&
                       std::all_of(l.name.begin(), l.name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) ||
                                c == '_' || c == '-' || c == '.';
                       });
  if (!name_ok) {
    return bad("repository name '" + l.name +
               "' must be letters, digits, '_', '-' and '.'");
  }
  return l;
}

bool RepositoryLocation::IsRados(std::string_view location) {
  return location.substr(0, 6) == "rados:";
}

std::string RepositoryLocation::ToString() const {
  if (kind == Kind::kDirectory) return path;
  return "rados:" + pool + "/" + (ns.empty() ? "" : ns + "/") + name;
}

#if !BACKY_WITH_RADOS
namespace {
Status NoRados(const std::string& location) {
  return Status::NotSupported(
      "this backy was built without RADOS support (BACKY_WITH_RBD=OFF)",
      location);
}
}  // namespace
#endif

Repository::Repository(std::string location, RepositoryConfig config)
    : location_(std::move(location)), config_(std::move(config)) {}

Status Repository::Init(const std::string& location,
                        const RepositoryConfig& config,
                        const RepositoryOptions& options) {
  auto l = RepositoryLocation::Parse(location);
  if (!l.ok()) return l.status();
  if (l->kind == RepositoryLocation::Kind::kRados) {
#if BACKY_WITH_RADOS
    return RadosRepository::Init(*l, config, options.rados);
#else
    (void)options;
    return NoRados(location);
#endif
  }
  return DirectoryRepository::Init(location, config);
}

Status Repository::WriteConfig(const std::string& location,
                               const RepositoryConfig& config,
                               const RepositoryOptions& options) {
  auto l = RepositoryLocation::Parse(location);
  if (!l.ok()) return l.status();
  if (l->kind == RepositoryLocation::Kind::kRados) {
#if BACKY_WITH_RADOS
    return RadosRepository::WriteConfig(*l, config, options.rados);
#else
    (void)options;
    return NoRados(location);
#endif
  }
  return DirectoryRepository::WriteConfig(location, config);
}

Result<std::unique_ptr<Repository>> Repository::Open(
    const std::string& location, const RepositoryOptions& options) {
  auto l = RepositoryLocation::Parse(location);
  if (!l.ok()) return l.status();
  if (l->kind == RepositoryLocation::Kind::kRados) {
#if BACKY_WITH_RADOS
    auto r = RadosRepository::Open(*l, options.rados);
    if (!r.ok()) return r.status();
    return std::unique_ptr<Repository>(std::move(*r));
#else
    (void)options;
    return NoRados(location);
#endif
  }
  auto r = DirectoryRepository::Open(location);
  if (!r.ok()) return r.status();
  return std::unique_ptr<Repository>(std::move(*r));
}

Status Repository::RequireCurrentFormat(std::string_view what) const {
  if (!legacy()) return Status::OK();
  return Status::NotSupported(
      "this is a backy 2.x repository; run 'backy "
      "upgrade' before " +
          std::string(what),
      location_);
}

std::string Repository::SourceName() const {
  return SourceNameOf(config_.source);
}

std::string Repository::SourceNameOf(
    const std::map<std::string, std::string>& source) {
  auto get = [&](const char* k) {
    auto it = source.find(k);
    return it == source.end() ? std::string() : it->second;
  };
  const std::string type = get("type");
  if (!get("filename").empty()) return type + ":" + get("filename");
  if (!get("pool").empty())
    return type + ":" + get("pool") + "/" + get("image");
  return type;
}

Result<std::vector<Revision>> Repository::Revisions() const {
  auto list = ScanRevisions();
  if (!list.ok()) return list.status();
  for (const auto& d : list->damaged) {
    std::lock_guard<std::mutex> l(warned_mu_);
    if (warned_.insert(d.id).second) {
      spdlog::warn("skipping damaged revision {}: {}", d.id,
                   d.status.Message());
    }
  }
  return std::move(list->healthy);
}

Result<RevisionIndex> ReadIndexFile(int fd, uint64_t file_size,
                                    const std::string& path) {
  // The header says how large the file must be: check that before reading
  // (and allocating for) the slots.
  std::vector<uint8_t> bytes(std::min<uint64_t>(file_size, kIndexHeaderSize));
  Status s = PReadAll(fd, bytes, 0, path);
  if (!s.ok()) return s;
  auto expected = RevisionIndex::FileSizeFromHeader(bytes, path);
  if (!expected.ok()) return expected.status();
  if (file_size != *expected) {
    return Status::Corruption("index file is " + std::to_string(file_size) +
                                  " bytes, its header says " +
                                  std::to_string(*expected),
                              path);
  }
  bytes.resize(*expected);
  s = PReadAll(fd, std::span<uint8_t>(bytes).subspan(kIndexHeaderSize),
               kIndexHeaderSize, path);
  if (!s.ok()) return s;
  return RevisionIndex::Decode(bytes, path);
}

}  // namespace backy::store
