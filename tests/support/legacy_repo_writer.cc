#include "legacy_repo_writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>

#include "store/file_io.h"
#include "store/legacy_chunk.h"

namespace backy::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChunk = 4 * 1024 * 1024;  // 2.x's Chunk.CHUNK_SIZE

Status Errno(const char* what, const std::string& object) {
  return Status::FromErrno(errno, what, object);
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errno("open", path);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) return Status::IOError("read failed", path);
  return s;
}

// Writes `data` to `path` through a temporary file in the same directory
// renamed over it, the file left with `mode` (2.x's SafeFile and chunk
// writes both work like this; no fsync: test data).
Status WriteReplacing(const std::string& path, std::string_view data,
                      mode_t mode) {
  std::string tmp = (fs::path(path).parent_path() / "tmpXXXXXXXX").string();
  int fd = mkstemp(tmp.data());
  if (fd < 0) return Errno("mkstemp", tmp);
  Status s = PWriteAll(
      fd, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
      0, tmp);
  close(fd);
  if (s.ok() && chmod(tmp.c_str(), mode) != 0) s = Errno("chmod", tmp);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    s = Errno("rename", path);
  if (!s.ok()) unlink(tmp.c_str());
  return s;
}

// Writes `data` in place (open "w", as File.flush() writes the mapping):
// a new file gets the umask's mode, an existing one keeps its own.
Status WriteInPlace(const std::string& path, std::string_view data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return Errno("open", path);
  Status s = PWriteAll(
      fd, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
      0, path);
  close(fd);
  return s;
}

// One flock held until destruction.
class Flock {
 public:
  Flock() = default;
  Flock(const Flock&) = delete;
  Flock& operator=(const Flock&) = delete;
  ~Flock() {
    if (fd_ >= 0) close(fd_);
  }
  // As 2.x's locked(): creates the file, opens it read-only, flocks it.
  Status Take(const std::string& path, int op) {
    int c = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (c < 0) return Errno("create", path);
    close(c);
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Errno("open", path);
    while (flock(fd_, op) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return Status::Busy("held by another backy (2.x would give up)", path);
      }
      return Errno("flock", path);
    }
    return Status::OK();
  }

 private:
  int fd_ = -1;
};

// PyYAML writes a str plain unless it would read back as another type or
// holds indicators; the writer accepts only strings it can write plain or
// single-quoted as PyYAML does, and refuses the rest.
Result<std::string> YamlString(const std::string& s, const char* what) {
  static const std::regex kSafe("[A-Za-z0-9][A-Za-z0-9_.:/+-]*");
  if (!std::regex_match(s, kSafe) || s.back() == ':') {
    return Status::InvalidArgument(
        std::string(what) + " must match [A-Za-z0-9][A-Za-z0-9_.:/+-]*", s);
  }
  // YAML 1.1 implicit types PyYAML resolves (int, float, bool, null,
  // timestamp): such strings it writes single-quoted.
  static const std::regex kImplicit(
      "[-+]?(0b[0-1_]+|0[0-7_]+|(0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|"
      "[1-9][0-9_]*(:[0-5]?[0-9])+)"
      "|[-+]?([0-9][0-9_]*)?\\.[0-9.]*([eE][-+][0-9]+)?"
      "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*"
      "|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|"
      "Off|OFF|y|Y|n|N|null|Null|NULL"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?.*");
  if (std::regex_match(s, kImplicit)) return "'" + s + "'";
  return s;
}

// "2026-12-01 19:37:34.453883+00:00" (microseconds left out when zero, as
// datetime.isoformat does) for now.
std::string NowTimestamp() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                now.time_since_epoch())
                .count();
  time_t secs = us / 1000000;
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string out = buf;
  if (us % 1000000 != 0) {
    snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(us % 1000000));
    out += buf;
  }
  return out + "+00:00";
}

// A key that orders 2.x timestamps: "YYYY-MM-DD HH:MM:SS" + 6 fraction
// digits.
std::string TimestampKey(const std::string& ts) {
  std::string base = ts.substr(0, std::min<size_t>(ts.size(), 19));
  std::string frac;
  if (ts.size() > 19 && ts[19] == '.') {
    for (size_t i = 20; i < ts.size() && isdigit(ts[i]); ++i) frac += ts[i];
  }
  frac.resize(6, '0');
  return base + frac;
}

// The newest revision in `dir` (complete or not) by timestamp, as 2.x's
// history[-1]: reads `uuid:` and `timestamp:` of each *.rev that is not a
// symlink.
Result<std::optional<std::string>> NewestRevision(const std::string& dir,
                                                  const std::string& except) {
  std::optional<std::string> best;
  std::string best_key;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.ends_with(".rev") || e.is_symlink()) continue;
    auto text = ReadWhole(e.path().string());
    if (!text.ok()) return text.status();
    std::string uuid, ts;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("uuid: ")) uuid = line.substr(6);
      if (line.starts_with("timestamp: ")) ts = line.substr(11);
    }
    if (uuid.size() > 1 && uuid.front() == '\'') {
      uuid = uuid.substr(1, uuid.size() - 2);
    }
    if (uuid.empty() || ts.empty() || uuid == except) continue;
    const std::string key = TimestampKey(ts);
    if (!best || key > best_key) {
      best = uuid;
      best_key = key;
    }
  }
  if (ec) return Status::FromErrno(ec.value(), "list", dir);
  return best;
}

std::string ChunkPath(const std::string& dir, const std::string& hash) {
  return dir + "/chunks/" + hash.substr(0, 2) + "/" + hash + ".chunk.lzo";
}

// The .rev as yaml.safe_dump(sort_keys) wrote Revision.write_info()'s dict.
Result<std::string> FormatRev(const LegacyRevisionSpec& spec,
                              const std::optional<std::string>& parent,
                              const std::string& timestamp, bool complete,
                              uint64_t bytes_written) {
  std::string out = "backend_type: chunked\n";
  if (parent) {
    if (parent->empty()) {
      out += "parent: ''\n";
    } else {
      auto p = YamlString(*parent, "parent");
      if (!p.ok()) return p.status();
      out += "parent: " + *p + "\n";
    }
  } else {
    out += "parent: null\n";
  }
  out += "stats:\n  bytes_written: " + std::to_string(bytes_written) + "\n";
  if (complete) out += "  duration: " + spec.duration + "\n";
  if (spec.tags.empty()) {
    out += "tags: []\n";
  } else {
    out += "tags:\n";
    for (const auto& t : spec.tags) {
      auto q = YamlString(t, "tag");
      if (!q.ok()) return q.status();
      out += "- " + *q + "\n";
    }
  }
  out += "timestamp: " + timestamp + "\n";
  out += "trust: " + spec.trust + "\n";
  auto u = YamlString(spec.uuid, "uuid");
  if (!u.ok()) return u.status();
  out += "uuid: " + *u + "\n";
  return out;
}

// A new repository as `backy init` (2.4) or the 2.5 scheduler left it, and
// what opening it as a Backup adds: chunks/ with its 256 folders and the
// "v2" marker, and for 2.5 quarantine/.
Status PrepareRepository(const LegacyRevisionSpec& spec) {
  std::error_code ec;
  fs::create_directories(spec.dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "mkdir", spec.dir);
  const std::string config = spec.dir + "/config";
  if (!fs::exists(config)) {
    std::string source =
        spec.source.empty() ? fs::absolute(spec.image).string() : spec.source;
    static const std::regex kPath("/[A-Za-z0-9/._-]*");
    if (!std::regex_match(source, kPath)) {
      return Status::InvalidArgument(
          "source path must match /[A-Za-z0-9/._-]* (PyYAML would quote it)",
          source);
    }
    std::string text =
        spec.version == 24
            ? "filename: " + source + "\ntype: file\n"
            : "source: {type: file, filename: " + source +
                  "}\nschedule:\n  daily: {interval: 1d, keep: 9}\n"
                  "  weekly: {interval: 7d, keep: 5}\n";
    Status s = WriteReplacing(config, text, 0440);
    if (!s.ok()) return s;
  }
  if (spec.version == 25) {
    fs::create_directories(spec.dir + "/quarantine/chunks", ec);
    if (ec) return Status::FromErrno(ec.value(), "mkdir", spec.dir);
  }
  char sub[3];
  for (int i = 0; i < 256; ++i) {
    snprintf(sub, sizeof sub, "%02x", i);
    fs::create_directories(spec.dir + "/chunks/" + sub, ec);
    if (ec) return Status::FromErrno(ec.value(), "mkdir", spec.dir);
  }
  const std::string store = spec.dir + "/chunks/store";
  if (!fs::exists(store)) return WriteInPlace(store, "v2");
  return Status::OK();
}

Status DecodeChunkFile(const std::string& dir, const std::string& hash,
                       std::vector<uint8_t>* plain) {
  const std::string path = ChunkPath(dir, hash);
  auto bytes = ReadWhole(path);
  if (!bytes.ok()) return bytes.status();
  return store::DecodeLegacyChunk(
      std::span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()),
      hash, path, plain);
}

// Stores `data` under its hash unless a chunk file of that name exists
// (2.x's Store.known), as chunk.flush() does.
Result<std::string> StoreChunk(const std::string& dir,
                               std::span<const uint8_t> data) {
  std::string hash = store::LegacyChunkHash(data);
  const std::string path = ChunkPath(dir, hash);
  if (fs::exists(path)) return hash;
  std::vector<uint8_t> file;
  Status s = store::EncodeLegacyChunk(data, &file);
  if (!s.ok()) return s;
  s = WriteReplacing(
      path,
      std::string_view(reinterpret_cast<const char*>(file.data()), file.size()),
      0440);
  if (!s.ok()) return s;
  return hash;
}

// 2.x's copy_overwrite() of the image into the chunked File opened on the
// parent's mapping, then truncate(size): the mapping it leaves.
Status CopyImage(const LegacyRevisionSpec& spec, LegacyMapping* m) {
  int fd = open(spec.image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", spec.image);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Errno("stat", spec.image);
    close(fd);
    return s;
  }
  const uint64_t size = st.st_size;
  const uint64_t old_size = m->size;
  std::map<uint64_t, size_t> where;  // slot -> index in m->slots
  for (size_t i = 0; i < m->slots.size(); ++i) where[m->slots[i].first] = i;

  Status s;
  std::vector<uint8_t> plain, old;
  for (uint64_t slot = 0; slot * kChunk < size && s.ok(); ++slot) {
    const uint64_t start = slot * kChunk;
    const uint64_t len = std::min(kChunk, size - start);
    plain.resize(len);
    s = PReadAll(fd, plain, start, spec.image);
    if (!s.ok()) break;
    auto it = where.find(slot);
    const std::string new_hash = store::LegacyChunkHash(plain);
    // What 2.x compared against: the old chunk's bytes, read through the
    // File, so cut at the old size.
    if (it != where.end() && m->slots[it->second].second == new_hash &&
        old_size >= start + len) {
      continue;  // equal: not touched
    }
    std::vector<uint8_t> data;
    if (len == kChunk) {
      // A full chunk is replaced whole (or, when it equals what the File
      // shows, left alone; with hashes equal that was caught above, and
      // an old chunk the old size cuts short never compares equal).
      data = plain;
    } else {
      old.clear();
      if (it != where.end()) {
        s = DecodeChunkFile(spec.dir, m->slots[it->second].second, &old);
        if (!s.ok()) break;
        const uint64_t visible =
            old_size > start ? std::min<uint64_t>(old.size(), old_size - start)
                             : 0;
        const uint64_t cmp = std::min<uint64_t>(len, visible);
        if (cmp > 0 && cmp == len &&
            std::equal(plain.begin(), plain.end(), old.begin())) {
          continue;  // the shown prefix equals: not touched
        }
      }
      // A partial write into the old chunk's bytes: its tail stays.
      data = old;
      if (data.size() < len) data.resize(len);
      std::copy(plain.begin(), plain.end(), data.begin());
    }
    auto h = StoreChunk(spec.dir, data);
    if (!h.ok()) {
      s = h.status();
      break;
    }
    if (it != where.end()) {
      m->slots[it->second].second = *h;
    } else {
      where[slot] = m->slots.size();
      m->slots.emplace_back(slot, *h);
    }
  }
  close(fd);
  if (!s.ok()) return s;
  // truncate(size): 2.4 drops the slots starting past the size, 2.5 those
  // starting at or past it.
  std::erase_if(m->slots, [&](const auto& e) {
    return spec.version == 24 ? e.first * kChunk > size
                              : e.first * kChunk >= size;
  });
  m->size = size;
  return Status::OK();
}

Status Symlink(const std::string& target, const std::string& link) {
  unlink(link.c_str());
  if (symlink(target.c_str(), link.c_str()) != 0) return Errno("symlink", link);
  return Status::OK();
}

}  // namespace

std::string FormatLegacyMapping(const LegacyMapping& m) {
  std::string out = "{\"mapping\": {";
  for (size_t i = 0; i < m.slots.size(); ++i) {
    if (i) out += ", ";
    out += "\"" + std::to_string(m.slots[i].first) + "\": \"" +
           m.slots[i].second + "\"";
  }
  out += "}, \"size\": " + std::to_string(m.size) + "}";
  return out;
}

Result<LegacyMapping> ParseLegacyMapping(const std::string& text,
                                         const std::string& object) {
  static const std::regex kAll(
      "\\{\"mapping\": \\{((?:\"[0-9]+\": \"[0-9a-f]{32}\"(?:, )?)*)\\}, "
      "\"size\": ([0-9]+)\\}");
  std::smatch whole;
  if (!std::regex_match(text, whole, kAll)) {
    return Status::Corruption("not a 2.x mapping as json.dump writes it",
                              object);
  }
  LegacyMapping m;
  m.size = std::stoull(whole[2].str());
  static const std::regex kPair("\"([0-9]+)\": \"([0-9a-f]{32})\"");
  const std::string pairs = whole[1].str();
  for (std::sregex_iterator it(pairs.begin(), pairs.end(), kPair), end;
       it != end; ++it) {
    m.slots.emplace_back(std::stoull((*it)[1].str()), (*it)[2].str());
  }
  return m;
}

Status WriteLegacyRevision(const LegacyRevisionSpec& spec) {
  if (spec.version != 24 && spec.version != 25) {
    return Status::InvalidArgument("version must be 2.4 or 2.5");
  }
  if (spec.trust != "trusted" && spec.trust != "distrusted" &&
      spec.trust != "verified") {
    return Status::InvalidArgument(
        "trust must be trusted, distrusted or verified", spec.trust);
  }
  if (spec.uuid.empty() || spec.dir.empty() || spec.image.empty()) {
    return Status::InvalidArgument("dir, image and uuid are needed");
  }
  static const std::regex kTs(
      "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?"
      "\\+00:00");
  const std::string timestamp =
      spec.timestamp.empty() ? NowTimestamp() : spec.timestamp;
  if (!std::regex_match(timestamp, kTs)) {
    return Status::InvalidArgument(
        "timestamp must look like 2026-12-01 19:37:34.453883+00:00", timestamp);
  }
  static const std::regex kFloat("[0-9]+\\.[0-9]+");
  if (!std::regex_match(spec.duration, kFloat)) {
    return Status::InvalidArgument("duration must look like 0.25",
                                   spec.duration);
  }
  if (auto u = YamlString(spec.uuid, "uuid"); !u.ok()) return u.status();

  Status s = PrepareRepository(spec);
  if (!s.ok()) return s;
  Flock backup_lock, purge_lock;
  s = backup_lock.Take(spec.dir + "/.backup", LOCK_EX | LOCK_NB);
  if (!s.ok()) return s;
  s = purge_lock.Take(spec.dir + "/.purge", LOCK_SH);
  if (!s.ok()) return s;

  const std::string mapping_path = spec.dir + "/" + spec.uuid;
  const std::string rev_path = mapping_path + ".rev";
  if (fs::exists(rev_path) || fs::exists(mapping_path)) {
    return Status::InvalidArgument("revision exists already", rev_path);
  }
  std::optional<std::string> parent = spec.parent;
  if (!parent) {
    auto newest = NewestRevision(spec.dir, spec.uuid);
    if (!newest.ok()) return newest.status();
    parent = *newest;
  }
  if (spec.version == 25) {
    // 2.5 drops the links 2.4 kept, and writes '' for no parent.
    unlink((spec.dir + "/last").c_str());
    unlink((spec.dir + "/last.rev").c_str());
    if (!parent) parent = "";
  } else if (parent && parent->empty()) {
    parent.reset();
  }

  // materialize(): the .rev without duration, then writable().
  auto rev = FormatRev(spec, parent, timestamp, false, 0);
  if (!rev.ok()) return rev.status();
  s = WriteReplacing(rev_path, *rev, 0440);
  if (!s.ok()) return s;
  if (chmod(rev_path.c_str(), 0640) != 0) return Errno("chmod", rev_path);

  // The mapping starts as a copy of the parent's.
  LegacyMapping m;
  if (parent && !parent->empty()) {
    const std::string pm = spec.dir + "/" + *parent;
    if (fs::exists(pm)) {
      auto text = ReadWhole(pm);
      if (!text.ok()) return text.status();
      auto parsed = ParseLegacyMapping(*text, pm);
      if (!parsed.ok()) return parsed.status();
      m = std::move(*parsed);
    }
  }
  s = CopyImage(spec, &m);
  if (!s.ok()) return s;
  s = WriteInPlace(mapping_path, FormatLegacyMapping(m));
  if (!s.ok() || spec.incomplete) return s;

  if (spec.version == 24) {
    s = Symlink(spec.uuid, spec.dir + "/last");
    if (s.ok()) s = Symlink(spec.uuid + ".rev", spec.dir + "/last.rev");
    if (!s.ok()) return s;
  }
  rev = FormatRev(spec, parent, timestamp, true, m.size);
  if (!rev.ok()) return rev.status();
  s = WriteReplacing(rev_path, *rev, 0440);
  if (!s.ok()) return s;
  if (chmod(mapping_path.c_str(), 0440) != 0) {
    return Errno("chmod", mapping_path);
  }
  return Status::OK();
}

}  // namespace backy::testing
