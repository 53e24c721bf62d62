#include "store/legacy_repository.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "store/filename.h"
#include "store/fs_util.h"
#include "store/repository.h"

namespace backy::store {
namespace {

constexpr uint64_t kMaxLegacyRevisionFileSize = 1 << 20;
// A mapping entry is ~45 bytes: 512 MiB is ~12 million slots, 45 TiB of
// image. Anything larger is damaged.
constexpr uint64_t kMaxMappingFileSize = uint64_t{512} << 20;

bool IsSymlink(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A streaming reader of a 2.x mapping file, `{"mapping": {"N": "hash",
// ...}, "size": BYTES}`: the index is built as the file is parsed, so
// memory is the index (16 bytes a slot), not a JSON tree of the file.
// Slots may come before the size; they are kept until it is known.
class MappingReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit MappingReader(std::string name) : name_(std::move(name)) {}

  Result<RevisionIndex> Finish(bool parsed) {
    if (!error_.ok()) return error_;
    if (!parsed) return Fail("not a JSON document");
    if (!size_) return Fail("no 'size'");
    if (!saw_mapping_) return Fail("no 'mapping'");
    if (*size_ > kMaxIndexSlots * uint64_t{kLegacyChunkSize}) {
      return Fail("image size " + std::to_string(*size_) +
                  " is more than an index can hold");
    }
    RevisionIndex index(*size_, kLegacyChunkSize);
    // backy 2.4's truncate() dropped the slots starting past the new size
    // but kept one starting exactly at it: that slot lies beyond the image
    // and is not read.
    const uint64_t boundary =
        *size_ % kLegacyChunkSize == 0 ? index.slot_count() : UINT64_MAX;
    for (const auto& [slot, digest] : slots_) {
      if (slot == boundary) continue;
      if (slot >= index.slot_count()) {
        return Fail("slot " + std::to_string(slot) +
                    " is past the image size " + std::to_string(*size_));
      }
      index.set_slot(slot, digest);
    }
    return index;
  }

  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("a boolean"); }
  bool number_integer(number_integer_t) override {
    return Value("a negative number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (depth_ == 1 && key_ == "size") {
      size_ = v;
      return true;
    }
    return Value("a number");
  }
  bool number_float(number_float_t, const string_t&) override {
    return Value("a fraction");
  }
  bool string(string_t& v) override {
    if (depth_ == 2 && in_mapping_) {
      uint64_t slot = 0;
      auto [ptr, ec] =
          std::from_chars(key_.data(), key_.data() + key_.size(), slot);
      if (key_.empty() || ec != std::errc() ||
          ptr != key_.data() + key_.size() || slot >= kMaxIndexSlots) {
        return Stop("slot number '" + Cut(key_) + "' is not a chunk number");
      }
      auto digest = Digest::FromHex(v);
      if (v.size() != 2 * Digest::kSize || !digest.ok()) {
        return Stop("slot " + key_ + ": '" + Cut(v) +
                    "' is not a 2.x chunk hash");
      }
      if (slots_.size() >= kMaxIndexSlots) return Stop("too many slots");
      slots_.emplace_back(slot, *digest);
      return true;
    }
    return Value("a string");
  }
  bool binary(binary_t&) override { return Value("binary data"); }
  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 1) return true;
    if (depth_ == 2 && key_ == "mapping") {
      in_mapping_ = saw_mapping_ = true;
      return true;
    }
    return Stop("unexpected object at '" + Cut(key_) + "'");
  }
  bool end_object() override {
    if (depth_ == 2) in_mapping_ = false;
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return Value("a list"); }
  bool end_array() override { return true; }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    return Stop("not valid JSON (at byte " + std::to_string(position) + ")");
  }

 private:
  static std::string Cut(const std::string& s) {
    return s.size() > 40 ? s.substr(0, 40) + "..." : s;
  }
  // A value the format does not have where it stands. Unknown top-level
  // keys are skipped only if scalar; anything else is damage.
  bool Value(const char* what) {
    if (depth_ == 1 && key_ != "size" && key_ != "mapping") return true;
    return Stop(std::string("unexpected ") + what + " at '" + Cut(key_) + "'");
  }
  bool Stop(const std::string& why) {
    if (error_.ok()) error_ = Fail(why);
    return false;
  }
  Status Fail(const std::string& why) const {
    return Status::Corruption("2.x mapping: " + why, name_);
  }

  const std::string name_;
  int depth_ = 0;
  std::string key_;
  bool in_mapping_ = false;
  bool saw_mapping_ = false;
  std::optional<uint64_t> size_;
  std::vector<std::pair<uint64_t, Digest>> slots_;
  Status error_;
};

// The image size of a mapping, cheaply: json.dump() writes "size" last, so
// the file ends with `"size": N}`. Falls back to reading it all.
Result<uint64_t> MappingImageSize(const std::string& dir,
                                  const std::string& id) {
  const std::string path = LegacyMappingFileName(dir, id);
  struct stat st;
  auto fd = OpenRegularFile(path, &st);
  if (fd.status().IsNotFound()) {
    return Status::Corruption("2.x revision " + id + " has no mapping", path);
  }
  if (!fd.ok()) return fd.status();
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t tail = std::min<uint64_t>(size, 64);
  std::string end(tail, '\0');
  Status s = PReadAll(
      fd->get(),
      std::span<uint8_t>(reinterpret_cast<uint8_t*>(end.data()), end.size()),
      size - tail, path);
  if (!s.ok()) return s;
  const auto key = end.rfind("\"size\":");
  if (key != std::string::npos) {
    size_t i = key + 7;
    while (i < end.size() && end[i] == ' ') ++i;
    uint64_t n = 0;
    auto [ptr, ec] =
        std::from_chars(end.data() + i, end.data() + end.size(), n);
    if (ec == std::errc() && ptr < end.data() + end.size() && *ptr == '}' &&
        n <= kMaxIndexSlots * uint64_t{kLegacyChunkSize}) {
      const std::string_view rest(ptr + 1, end.data() + end.size() - ptr - 1);
      if (rest.find_first_not_of(" \n") == std::string_view::npos) return n;
    }
  }
  auto index = LoadLegacyIndex(dir, id);
  if (!index.ok()) return index.status();
  return index->image_size();
}

}  // namespace

Result<bool> IsLegacyRepository(const std::string& dir) {
  std::string text;
  const std::string path = ConfigFileName(dir);
  Status s = ReadWholeFile(path, &text, 1 << 20);
  if (!s.ok()) return s;
  auto config = RepositoryConfig::FromYaml(text, path);
  if (!config.ok()) return config.status();
  return config->legacy;
}

Result<LegacyRevisionList> ScanLegacyRevisions(const std::string& dir,
                                               const std::string& source_name) {
  auto names = ListDirectory(dir);
  if (!names.ok()) return names.status();
  std::vector<std::string> ids;
  for (const auto& name : *names) {
    if (auto id = ParseLegacyRevisionFileName(name)) {
      ids.push_back(std::move(*id));
    }
  }
  std::sort(ids.begin(), ids.end());
  LegacyRevisionList list;
  for (const auto& id : ids) {
    const std::string path = LegacyRevisionFileName(dir, id);
    if (IsSymlink(path)) continue;  // 2.4's last.rev and the like
    std::string text;
    Status s = ReadWholeFile(path, &text, kMaxLegacyRevisionFileSize);
    if (s.IsNotFound()) continue;  // forgotten meanwhile
    if (!s.ok()) {
      list.damaged.push_back({id, s});
      continue;
    }
    bool complete = false;
    auto rev = Revision::FromLegacyYaml(text, path, &complete);
    if (!rev.ok()) {
      list.damaged.push_back({id, rev.status()});
      continue;
    }
    if (rev->id != id) {
      list.damaged.push_back(
          {id, Status::Corruption("2.x revision uuid '" + rev->id +
                                      "' does not match its file name",
                                  path)});
      continue;
    }
    if (!complete) {
      list.incomplete.push_back(id);
      continue;
    }
    auto size = MappingImageSize(dir, id);
    if (!size.ok()) {
      list.damaged.push_back({id, size.status()});
      continue;
    }
    rev->size = *size;
    rev->chunk_size = kLegacyChunkSize;
    rev->source = source_name;
    list.complete.push_back(std::move(*rev));
  }
  std::sort(list.complete.begin(), list.complete.end(), IsOlder);
  return list;
}

Result<RevisionIndex> LoadLegacyIndex(const std::string& dir,
                                      const std::string& id) {
  const std::string path = LegacyMappingFileName(dir, id);
  std::string text;
  Status s = ReadWholeFile(path, &text, kMaxMappingFileSize);
  if (s.IsNotFound()) {
    return Status::Corruption("2.x revision " + id + " has no mapping", path);
  }
  if (!s.ok()) return s;
  return ParseLegacyMapping(text, path);
}

Result<RevisionIndex> ParseLegacyMapping(std::string_view text,
                                         const std::string& name) {
  MappingReader reader(name);
  const bool parsed = nlohmann::json::sax_parse(text, &reader);
  return reader.Finish(parsed);
}

Status UpdateLegacyMetadata(const std::string& dir, const Revision& revision) {
  const std::string path = LegacyRevisionFileName(dir, revision.id);
  std::string text;
  Status s = ReadWholeFile(path, &text, kMaxLegacyRevisionFileSize);
  if (s.IsNotFound()) return Status::NotFound("no such revision", revision.id);
  if (!s.ok()) return s;
  std::string out;
  try {
    YAML::Node n = YAML::Load(text);
    if (!n.IsMap()) {
      return Status::Corruption("2.x revision is not a YAML map", path);
    }
    YAML::Node tags(YAML::NodeType::Sequence);
    for (const auto& t : revision.tags) tags.push_back(t);
    n["tags"] = tags;
    n["trust"] = TrustName(revision.trust);
    YAML::Emitter e;
    e << n;
    out = std::string(e.c_str()) + "\n";
  } catch (const YAML::Exception& e) {
    return Status::Corruption(std::string("bad 2.x revision: ") + e.what(),
                              path);
  }
  return WriteFileAtomic(path, out, dir, /*sync_dir=*/true);
}

Status ForgetLegacyRevision(const std::string& dir, const std::string& id) {
  const std::string rev = LegacyRevisionFileName(dir, id);
  if (::unlink(rev.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound("no such revision", id);
    return Status::FromErrno(errno, "remove", rev);
  }
  Status s = SyncDir(dir);
  if (!s.ok()) return s;
  const std::string mapping = LegacyMappingFileName(dir, id);
  if (::unlink(mapping.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove", mapping);
  }
  // 2.4's `last` and `last.rev` symlinks, if they name this revision.
  for (const auto& [link, target] :
       {std::pair{std::string(kLegacyLastName), id},
        {std::string(kLegacyLastName) + std::string(kRevisionSuffix),
         id + std::string(kRevisionSuffix)}}) {
    const std::string path = dir + "/" + link;
    char buf[256];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n > 0 && std::string_view(buf, static_cast<size_t>(n)) == target) {
      ::unlink(path.c_str());
    }
  }
  return SyncDir(dir);
}

}  // namespace backy::store
