#include "store/revision.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace backy::store {

std::string TrustName(Trust t) {
  switch (t) {
    case Trust::kTrusted: return "trusted";
    case Trust::kDistrusted: return "distrusted";
    case Trust::kVerified: return "verified";
  }
  return "?";
}

Result<Trust> ParseTrust(std::string_view s) {
  if (s == "trusted") return Trust::kTrusted;
  if (s == "distrusted") return Trust::kDistrusted;
  if (s == "verified") return Trust::kVerified;
  return Status::InvalidArgument("unknown trust state '" + std::string(s) +
                                 "'");
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatTimestamp(int64_t us) {
  time_t secs = static_cast<time_t>(us / 1000000);
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return buf;
}

Result<int64_t> ParseTimestamp(std::string_view s) {
  std::string str(s);
  int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
  struct tm tm = {};
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3) {
    return Status::InvalidArgument("bad timestamp '" + str + "'");
  }
  size_t pos = static_cast<size_t>(n);
  int64_t frac_us = 0;
  if (pos < str.size() && (str[pos] == 'T' || str[pos] == ' ')) {
    int m = 0;
    if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &mi, &sec,
                    &m) != 3) {
      return Status::InvalidArgument("bad timestamp '" + str + "'");
    }
    pos += 1 + static_cast<size_t>(m);
    if (pos < str.size() && str[pos] == '.') {
      ++pos;
      int64_t scale = 100000;
      while (pos < str.size() && isdigit(static_cast<unsigned char>(str[pos]))) {
        frac_us += (str[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
    }
  }
  std::string_view rest = std::string_view(str).substr(pos);
  if (!(rest.empty() || rest == "Z" || rest == "+00:00")) {
    return Status::InvalidArgument("timestamp must be UTC: '" + str + "'");
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000000 + frac_us;
}

std::string NewRevisionId() {
  static const char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::random_device rd;
  std::string id(22, '0');
  for (auto& c : id) c = kAlphabet[rd() % 62];
  return id;
}

std::string Revision::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << 1;
  e << YAML::Key << "id" << YAML::Value << id;
  e << YAML::Key << "timestamp" << YAML::Value << FormatTimestamp(timestamp_us);
  e << YAML::Key << "parent" << YAML::Value << parent;
  e << YAML::Key << "tags" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& t : tags) e << t;
  e << YAML::EndSeq;
  e << YAML::Key << "trust" << YAML::Value << TrustName(trust);
  e << YAML::Key << "size" << YAML::Value << size;
  e << YAML::Key << "chunk_size" << YAML::Value << chunk_size;
  e << YAML::Key << "source" << YAML::Value << source;
  e << YAML::Key << "stats" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "bytes_read" << YAML::Value << stats.bytes_read;
  e << YAML::Key << "bytes_written" << YAML::Value << stats.bytes_written;
  e << YAML::Key << "chunks_new" << YAML::Value << stats.chunks_new;
  e << YAML::Key << "chunks_reused" << YAML::Value << stats.chunks_reused;
  e << YAML::Key << "chunks_zero" << YAML::Value << stats.chunks_zero;
  e << YAML::Key << "chunks_carried" << YAML::Value << stats.chunks_carried;
  e << YAML::Key << "extents_changed" << YAML::Value << stats.extents_changed;
  e << YAML::Key << "duration" << YAML::Value << stats.duration;
  e << YAML::EndMap;
  e << YAML::Key << "verification" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "method" << YAML::Value << verification.method;
  e << YAML::Key << "chunks_checked" << YAML::Value
    << verification.chunks_checked;
  e << YAML::Key << "chunks_total" << YAML::Value << verification.chunks_total;
  e << YAML::Key << "fraction" << YAML::Value << verification.fraction;
  e << YAML::Key << "coverage" << YAML::Value << verification.coverage;
  e << YAML::Key << "complete" << YAML::Value << verification.complete;
  e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

Result<Revision> Revision::FromYaml(const std::string& text,
                                    const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap()) return Status::Corruption("revision is not a YAML map", name);
    if (n["format"].as<int>(0) != 1) {
      return Status::NotSupported("unsupported revision format", name);
    }
    Revision r;
    r.id = n["id"].as<std::string>("");
    if (r.id.empty()) return Status::Corruption("revision has no id", name);
    auto ts = ParseTimestamp(n["timestamp"].as<std::string>(""));
    if (!ts.ok()) return ts.status().WithContext(name);
    r.timestamp_us = *ts;
    r.parent = n["parent"].as<std::string>("");
    if (n["tags"]) {
      for (const auto& t : n["tags"]) r.tags.insert(t.as<std::string>());
    }
    auto trust = ParseTrust(n["trust"].as<std::string>("trusted"));
    if (!trust.ok()) return trust.status().WithContext(name);
    r.trust = *trust;
    r.size = n["size"].as<uint64_t>();
    r.chunk_size = n["chunk_size"].as<uint32_t>();
    r.source = n["source"].as<std::string>("");
    if (auto s = n["stats"]) {
      r.stats.bytes_read = s["bytes_read"].as<uint64_t>(0);
      r.stats.bytes_written = s["bytes_written"].as<uint64_t>(0);
      r.stats.chunks_new = s["chunks_new"].as<uint64_t>(0);
      r.stats.chunks_reused = s["chunks_reused"].as<uint64_t>(0);
      r.stats.chunks_zero = s["chunks_zero"].as<uint64_t>(0);
      r.stats.chunks_carried = s["chunks_carried"].as<uint64_t>(0);
      r.stats.extents_changed = s["extents_changed"].as<uint64_t>(0);
      r.stats.duration = s["duration"].as<double>(0);
    }
    if (auto v = n["verification"]) {
      r.verification.method = v["method"].as<std::string>("");
      r.verification.chunks_checked = v["chunks_checked"].as<uint64_t>(0);
      r.verification.chunks_total = v["chunks_total"].as<uint64_t>(0);
      r.verification.fraction = v["fraction"].as<double>(0);
      r.verification.coverage = v["coverage"].as<double>(0);
      r.verification.complete = v["complete"].as<bool>(false);
    }
    return r;
  } catch (const YAML::ParserException& e) {
    return Status::Corruption("YAML syntax error at line " +
                                  std::to_string(e.mark.line + 1) + ": " +
                                  e.msg,
                              name);
  } catch (const YAML::Exception& e) {
    return Status::Corruption(std::string("bad revision: ") + e.what(), name);
  }
}

}  // namespace backy::store
