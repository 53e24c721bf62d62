#include "backup/source_factory.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <filesystem>

#include "sources/file_source.h"
#ifdef BACKY_WITH_RBD
#include "sources/rbd_source.h"
#endif

namespace backy::backup {
namespace {

using Section = std::map<std::string, std::string>;

std::string Get(const Section& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? std::string() : it->second;
}

// Whole seconds in [min, max] from config key `key`.
Status ParseSeconds(const Section& s, const std::string& key, int min, int max,
                    const std::string& config_name, int* out) {
  auto it = s.find(key);
  if (it == s.end()) return Status::OK();
  const std::string& v = it->second;
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
    return Status::InvalidArgument("source." + key +
                                       " must be a number of "
                                       "seconds from " +
                                       std::to_string(min) + " to " +
                                       std::to_string(max) + ", got '" + v +
                                       "'",
                                   config_name);
  }
  *out = n;
  return Status::OK();
}

Status ParseBool(const Section& s, const std::string& key,
                 const std::string& config_name, bool* out) {
  auto it = s.find(key);
  if (it == s.end()) return Status::OK();
  if (it->second == "true" || it->second == "yes") {
    *out = true;
  } else if (it->second == "false" || it->second == "no") {
    *out = false;
  } else {
    return Status::InvalidArgument(
        "source." + key + " must be true or false, got '" + it->second + "'",
        config_name);
  }
  return Status::OK();
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

#ifdef BACKY_WITH_RBD
// The RbdConfig of a ceph-rbd source section.
// REQUIRES: ValidateSourceSection(src) is OK (MakeSource checks it; init
// builds the section itself).
Result<sources::RbdConfig> RbdConfigFrom(const Section& src,
                                         const std::string& config_name) {
  std::string spec = Get(src, "pool") + "/";
  if (!Get(src, "namespace").empty()) spec += Get(src, "namespace") + "/";
  spec += Get(src, "image");
  auto c = sources::ParseRbdSpec(spec);
  if (!c.ok()) return c.status().WithContext("in " + config_name);
  c->conf_path = Get(src, "ceph_conf");
  c->client_id = Get(src, "client_id");
  c->keyring = Get(src, "keyring");
  Status s = ParseSeconds(src, "connect_timeout", 1, 3600, config_name,
                          &c->connect_timeout_s);
  if (!s.ok()) return s;
  return c;
}
#endif

}  // namespace

Status ValidateSourceSection(const Section& source, std::string_view object) {
  const std::string type = Get(source, "type");
  if (type == "file") {
    if (Get(source, "filename").empty()) {
      return Status::InvalidArgument("a 'file' source needs 'filename'",
                                     object);
    }
    return Status::OK();
  }
  if (type == "ceph-rbd" || type == kFlyingCircusType) {
    if (Get(source, "pool").empty() || Get(source, "image").empty()) {
      return Status::InvalidArgument(
          "a '" + type + "' source needs 'pool' and 'image'", object);
    }
    return Status::OK();
  }
  return Status::NotSupported(
      "source 'type' must be file or ceph-rbd" +
          (type.empty() ? std::string() : ", got '" + type + "'"),
      object);
}

Result<std::unique_ptr<sources::Source>> MakeSource(
    const store::RepositoryConfig& config, const std::string& config_name) {
  const auto& src = config.source;
  Status valid = ValidateSourceSection(src, config_name);
  if (!valid.ok()) return valid;
  if (Get(src, "type") == "file") {
    return std::unique_ptr<sources::Source>(
        new sources::FileSource(Get(src, "filename")));
  }
  // ceph-rbd, or backy 2.x's flyingcircus: the same image, snapshotted
  // without asking the VM to freeze its filesystems first.
  if (Get(src, "type") == kFlyingCircusType) {
    spdlog::warn(
        "{}: source type 'flyingcircus' is backed up as ceph-rbd {}/{} "
        "without the Consul-driven filesystem freeze",
        config_name, Get(src, "pool"), Get(src, "image"));
  }
#ifdef BACKY_WITH_RBD
  auto c = RbdConfigFrom(src, config_name);
  if (!c.ok()) return c.status();
  return std::unique_ptr<sources::Source>(
      new sources::RbdSource(std::move(*c)));
#else
  return Status::NotSupported(
      "this backy was built without Ceph RBD support (BACKY_WITH_RBD)",
      config_name);
#endif
}

Status ApplySourceOptions(const store::RepositoryConfig& config,
                          const std::string& config_name,
                          BackupOptions* options) {
  const auto& src = config.source;
  Status s = ParseBool(src, "full-always", config_name, &options->full);
  if (!s.ok()) return s;
  int budget = static_cast<int>(options->verify_budget.count());
  s = ParseSeconds(src, "verify_budget", 0, 7 * 24 * 3600, config_name,
                   &budget);
  if (!s.ok()) return s;
  options->verify_budget = std::chrono::seconds(budget);
  auto it = src.find("verify_sample");
  if (it != src.end()) {
    double f = -1;
    try {
      size_t used = 0;
      f = std::stod(it->second, &used);
      if (used != it->second.size()) f = -1;
    } catch (const std::exception&) {
      f = -1;
    }
    if (!(f >= 0 && f <= 1)) {
      return Status::InvalidArgument(
          "source.verify_sample must be a fraction from 0 to 1, got '" +
              it->second + "'",
          config_name);
    }
    options->verify_sample = f;
  }
  return Status::OK();
}

Result<std::map<std::string, std::string>> SourceSectionFor(
    const std::string& type, const std::string& spec,
    const SourceInitOptions& init) {
  if (type == "file") {
    std::error_code ec;
    auto abs = std::filesystem::absolute(spec, ec);
    if (ec) return Status::InvalidArgument("bad path", spec);
    auto size = sources::ProbeFileImage(abs.string());
    if (!size.ok()) return size.status();
    Section section{{"type", "file"}, {"filename", abs.string()}};
    if (init.full_always) section["full-always"] = "true";
    return section;
  }
  if (type == "ceph-rbd") {
#ifdef BACKY_WITH_RBD
    auto c = sources::ParseRbdSpec(spec);
    if (!c.ok()) return c.status();
    Section section{{"type", "ceph-rbd"},
                    {"pool", c->pool},
                    {"image", c->image},
                    {"verify_budget", std::to_string(init.verify_budget_s)},
                    {"full-always", init.full_always ? "true" : "false"}};
    if (!c->rbd_namespace.empty()) section["namespace"] = c->rbd_namespace;
    if (!init.ceph_conf.empty())
      section["ceph_conf"] = Absolute(init.ceph_conf);
    if (!init.client_id.empty()) section["client_id"] = init.client_id;
    if (!init.keyring.empty()) section["keyring"] = Absolute(init.keyring);
    if (init.connect_timeout_s != 30) {
      section["connect_timeout"] = std::to_string(init.connect_timeout_s);
    }
    if (init.check) {
      auto config = RbdConfigFrom(section, "the new config");
      if (!config.ok()) return config.status();
      auto size = sources::ProbeRbdImage(*config);
      if (!size.ok()) {
        return size.status().WithContext(
            "checking the source (init --no-check skips this)");
      }
    }
    return section;
#else
    return Status::NotSupported(
        "this backy was built without Ceph RBD support (BACKY_WITH_RBD)");
#endif
  }
  return Status::NotSupported("unknown source type '" + type +
                              "' (supported: file, ceph-rbd)");
}

}  // namespace backy::backup
