#include "store/revision.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>

namespace backy::store {

std::string TrustName(Trust t) {
  switch (t) {
    case Trust::kTrusted:
      return "trusted";
    case Trust::kDistrusted:
      return "distrusted";
    case Trust::kVerified:
      return "verified";
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

namespace {

// Reads exactly `width` decimal digits at `*pos`; false if any is missing.
bool Digits(std::string_view s, size_t* pos, size_t width, int* out) {
  if (s.size() - *pos < width) return false;
  int v = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += width;
  *out = v;
  return true;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

}  // namespace

Result<int64_t> ParseTimestamp(std::string_view s) {
  const std::string str(s);
  auto bad = [&] {
    return Status::InvalidArgument("bad timestamp '" + str +
                                   "' (use YYYY-MM-DD[THH:MM:SS[.ffffff]][Z])");
  };
  int y, mo, d, h = 0, mi = 0, sec = 0;
  size_t pos = 0;
  if (!Digits(s, &pos, 4, &y) || pos >= s.size() || s[pos++] != '-' ||
      !Digits(s, &pos, 2, &mo) || pos >= s.size() || s[pos++] != '-' ||
      !Digits(s, &pos, 2, &d)) {
    return bad();
  }
  int64_t frac_us = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    ++pos;
    if (!Digits(s, &pos, 2, &h) || pos >= s.size() || s[pos++] != ':' ||
        !Digits(s, &pos, 2, &mi) || pos >= s.size() || s[pos++] != ':' ||
        !Digits(s, &pos, 2, &sec)) {
      return bad();
    }
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      const size_t first = pos;
      int64_t scale = 100000;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        frac_us += (s[pos] - '0') * scale;  // digits past µs are dropped
        scale /= 10;
        ++pos;
      }
      if (pos == first) return bad();
    }
  }
  std::string_view rest = s.substr(pos);
  if (!(rest.empty() || rest == "Z" || rest == "+00:00")) {
    return Status::InvalidArgument("timestamp must be UTC: '" + str + "'");
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 ||
      mi > 59 || sec > 59) {
    return Status::InvalidArgument("impossible timestamp '" + str + "'");
  }
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000000 + frac_us;
}

Status ValidateTag(std::string_view tag) {
  if (tag.empty()) return Status::InvalidArgument("empty tag");
  for (char c : tag) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '/') {
      return Status::InvalidArgument(
          "tag must not contain whitespace, ',' or '/'", tag);
    }
  }
  if (tag == "manual:") {
    return Status::InvalidArgument("a manual: tag needs a name after ':'", tag);
  }
  return Status::OK();
}

Result<std::set<std::string>> ParseTagList(std::string_view tags) {
  std::set<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = tags.find(',', start);
    const std::string_view tag = tags.substr(
        start, comma == std::string_view::npos ? comma : comma - start);
    if (tag.empty()) return Status::InvalidArgument("empty tag in TAGS", tags);
    Status s = ValidateTag(tag);
    if (!s.ok()) return s;
    out.emplace(tag);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
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

namespace {

// Reads the fields of a revision's YAML map strictly: yaml-cpp's
// as<T>(fallback) returns the fallback for a value of the wrong type (a
// map read as a string, a scalar as a list), which would coerce damage
// into plausible metadata. Here a wrong type or an impossible value is
// Corruption naming the file, line and key.
class FieldReader {
 public:
  FieldReader(const YAML::Node& map, std::string prefix,
              const std::string& name)
      : map_(map), prefix_(std::move(prefix)), name_(name) {}

  // The value at `key`, or an undefined node when absent (a null value
  // counts as absent).
  YAML::Node Get(const char* key) const {
    YAML::Node v = map_[key];
    if (v && v.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
    return v;
  }

  Status Bad(const char* key, const std::string& what) const {
    YAML::Node v = map_[key];
    std::string where = name_;
    if (v) where += ":" + std::to_string(v.Mark().line + 1);
    return Status::Corruption("revision key '" + prefix_ + key + "': " + what,
                              where);
  }

  Status String(const char* key, std::string* out, bool required) const {
    YAML::Node v = Get(key);
    if (!v) return required ? Bad(key, "missing") : Status::OK();
    if (!v.IsScalar()) return Bad(key, "expected a string");
    *out = v.Scalar();
    return Status::OK();
  }

  Status Unsigned(const char* key, uint64_t* out, bool required,
                  uint64_t max = UINT64_MAX) const {
    YAML::Node v = Get(key);
    if (!v) return required ? Bad(key, "missing") : Status::OK();
    if (!v.IsScalar()) return Bad(key, "expected an unsigned integer");
    const std::string& text = v.Scalar();
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
      return Bad(key, "expected an unsigned integer, not '" + text + "'");
    }
    if (n > max) {
      return Bad(key,
                 std::to_string(n) + " is more than " + std::to_string(max));
    }
    *out = n;
    return Status::OK();
  }

  Status Double(const char* key, double* out) const {
    YAML::Node v = Get(key);
    if (!v) return Status::OK();
    double d = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, d) ||
        !std::isfinite(d) || d < 0) {
      return Bad(key, "expected a non-negative number");
    }
    *out = d;
    return Status::OK();
  }

  Status Bool(const char* key, bool* out) const {
    YAML::Node v = Get(key);
    if (!v) return Status::OK();
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return Bad(key, "expected true or false");
    }
    *out = b;
    return Status::OK();
  }

  // A nested map (stats, verification); an undefined node when absent.
  Result<YAML::Node> Map(const char* key) const {
    YAML::Node v = Get(key);
    if (v && !v.IsMap()) return Bad(key, "expected a map");
    return v;
  }

 private:
  const YAML::Node map_;
  const std::string prefix_;
  const std::string& name_;
};

// Revision ids (ours, and 2.x uuids) and parents: letters, digits, '.',
// '_', '-'. Anything else could not be a file name or would not survive
// being written back (a trailing '\r' is lost by YAML).
bool IsRevisionId(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

// Valid UTF-8 without control characters: what a tag written back to
// YAML keeps byte for byte (yaml-cpp replaces invalid sequences).
bool IsPrintableUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len = c >= 0xf0 && c <= 0xf4  ? 4
                 : c >= 0xe0             ? 3
                 : c >= 0xc2 && c < 0xe0 ? 2
                                         : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0x80 && cp < 0xa0)) {
      return false;
    }
    i += len;
  }
  return true;
}

// The keys ours and 2.x's revision files share, with the same meaning:
// timestamp (required), parent, tags, trust.
Status ReadHistoryFields(const FieldReader& f, Revision* r) {
  std::string text;
  Status s = f.String("timestamp", &text, true);
  if (!s.ok()) return s;
  auto ts = ParseTimestamp(text);
  if (!ts.ok()) return f.Bad("timestamp", ts.status().Message());
  r->timestamp_us = *ts;
  s = f.String("parent", &r->parent, false);
  if (!s.ok()) return s;
  if (!r->parent.empty() && !IsRevisionId(r->parent)) {
    return f.Bad("parent", "is not a revision id");
  }
  if (YAML::Node tags = f.Get("tags")) {
    if (!tags.IsSequence()) return f.Bad("tags", "expected a list");
    for (const auto& t : tags) {
      if (!t.IsScalar() || t.Scalar().empty() || !IsPrintableUtf8(t.Scalar())) {
        return f.Bad("tags", "expected a list of tag names");
      }
      r->tags.insert(t.Scalar());
    }
  }
  text = "trusted";
  s = f.String("trust", &text, false);
  if (!s.ok()) return s;
  auto trust = ParseTrust(text);
  if (!trust.ok()) return f.Bad("trust", trust.status().Message());
  r->trust = *trust;
  return Status::OK();
}

Status ReadRevision(const YAML::Node& n, const std::string& name, Revision* r) {
  FieldReader f(n, "", name);
  if (!n["format"]) {
    return Status::NotSupported("unsupported revision format", name);
  }
  uint64_t format = 0;
  Status s = f.Unsigned("format", &format, true);
  if (!s.ok()) return s;
  if (format != 1) {
    return Status::NotSupported(
        "unsupported revision format " + std::to_string(format), name);
  }
  s = f.String("id", &r->id, true);
  if (!s.ok()) return s;
  if (!IsRevisionId(r->id)) {
    return f.Bad("id", "is not a revision id (letters, digits, '.', '_', '-')");
  }
  s = ReadHistoryFields(f, r);
  if (!s.ok()) return s;
  s = f.Unsigned("size", &r->size, true);
  if (!s.ok()) return s;
  uint64_t chunk_size = 0;
  s = f.Unsigned("chunk_size", &chunk_size, true, UINT32_MAX);
  if (!s.ok()) return s;
  r->chunk_size = static_cast<uint32_t>(chunk_size);
  s = f.String("source", &r->source, false);
  if (!s.ok()) return s;

  auto stats = f.Map("stats");
  if (!stats.ok()) return stats.status();
  if (*stats) {
    FieldReader g(*stats, "stats.", name);
    RevisionStats& st = r->stats;
    for (auto [key, field] : {std::pair{"bytes_read", &st.bytes_read},
                              {"bytes_written", &st.bytes_written},
                              {"chunks_new", &st.chunks_new},
                              {"chunks_reused", &st.chunks_reused},
                              {"chunks_zero", &st.chunks_zero},
                              {"chunks_carried", &st.chunks_carried},
                              {"extents_changed", &st.extents_changed}}) {
      s = g.Unsigned(key, field, false);
      if (!s.ok()) return s;
    }
    s = g.Double("duration", &st.duration);
    if (!s.ok()) return s;
  }
  auto verification = f.Map("verification");
  if (!verification.ok()) return verification.status();
  if (*verification) {
    FieldReader g(*verification, "verification.", name);
    Verification& v = r->verification;
    s = g.String("method", &v.method, false);
    if (s.ok()) s = g.Unsigned("chunks_checked", &v.chunks_checked, false);
    if (s.ok()) s = g.Unsigned("chunks_total", &v.chunks_total, false);
    if (s.ok()) s = g.Double("fraction", &v.fraction);
    if (s.ok()) s = g.Double("coverage", &v.coverage);
    if (s.ok()) s = g.Bool("complete", &v.complete);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace

Result<Revision> Revision::FromYaml(const std::string& text,
                                    const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap())
      return Status::Corruption("revision is not a YAML map", name);
    Revision r;
    Status s = ReadRevision(n, name, &r);
    if (!s.ok()) return s;
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

Result<Revision> Revision::FromLegacyYaml(const std::string& text,
                                          const std::string& name,
                                          bool* complete) {
  *complete = false;
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap()) {
      return Status::Corruption("2.x revision is not a YAML map", name);
    }
    FieldReader f(n, "", name);
    Revision r;
    r.legacy = true;
    Status s = f.String("uuid", &r.id, true);
    if (!s.ok()) return s;
    if (!IsRevisionId(r.id)) return f.Bad("uuid", "is not a revision id");
    std::string text_value = "chunked";
    s = f.String("backend_type", &text_value, false);
    if (!s.ok()) return s;
    if (text_value != "chunked") {
      return Status::NotSupported(
          "2.x revision of backend type '" + text_value +
              "' (only 'chunked' revisions can be read)",
          name);
    }
    s = ReadHistoryFields(f, &r);
    if (!s.ok()) return s;
    auto stats = f.Map("stats");
    if (!stats.ok()) return stats.status();
    if (*stats) {
      FieldReader g(*stats, "stats.", name);
      s = g.Unsigned("bytes_written", &r.stats.bytes_written, false);
      if (!s.ok()) return s;
      s = g.Double("duration", &r.stats.duration);
      if (!s.ok()) return s;
      *complete = static_cast<bool>(g.Get("duration"));
    }
    return r;
  } catch (const YAML::ParserException& e) {
    return Status::Corruption("YAML syntax error at line " +
                                  std::to_string(e.mark.line + 1) + ": " +
                                  e.msg,
                              name);
  } catch (const YAML::Exception& e) {
    return Status::Corruption(std::string("bad 2.x revision: ") + e.what(),
                              name);
  }
}

}  // namespace backy::store
