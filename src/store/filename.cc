#include "store/filename.h"

namespace backy::store {

namespace {

std::string Join(std::string_view dir, std::string_view name) {
  std::string path(dir);
  path += '/';
  path += name;
  return path;
}

// `name` without `suffix` when it ends with it after a non-empty stem that
// does not start with '.'.
std::optional<std::string_view> Stem(std::string_view name,
                                     std::string_view suffix) {
  if (name.size() <= suffix.size() || !name.ends_with(suffix) ||
      name.front() == '.') {
    return std::nullopt;
  }
  return name.substr(0, name.size() - suffix.size());
}

// Lower-case hex digits only, as Digest::Hex() and pin tokens write them.
bool IsLowerHex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string_view PinSuffix(PinFileType type) {
  return type == PinFileType::kPin ? kPinSuffix : kIndexSuffix;
}

}  // namespace

std::string ConfigFileName(std::string_view dir) {
  return Join(dir, kConfigName);
}
std::string WriterLockFileName(std::string_view dir) {
  return Join(dir, kWriterLockName);
}
std::string PurgeLockFileName(std::string_view dir) {
  return Join(dir, kPurgeLockName);
}
std::string TmpDirName(std::string_view dir) { return Join(dir, kTmpDirName); }
std::string ChunksDirName(std::string_view dir) {
  return Join(dir, kChunksDirName);
}
std::string QuarantineDirName(std::string_view dir) {
  return Join(dir, kQuarantineDirName);
}
std::string RevisionsDirName(std::string_view dir) {
  return Join(dir, kRevisionsDirName);
}

std::string PinsDirName(std::string_view dir) {
  return Join(dir, kPinsDirName);
}

std::string RepositoryLogFileName(std::string_view dir) {
  return Join(dir, "backy.log");
}

std::string RevisionFileBaseName(std::string_view id, RevisionFileType type) {
  std::string name(id);
  name += type == RevisionFileType::kMetadata ? kRevisionSuffix : kIndexSuffix;
  return name;
}

std::string RevisionFileName(std::string_view dir, std::string_view id) {
  return Join(RevisionsDirName(dir),
              RevisionFileBaseName(id, RevisionFileType::kMetadata));
}

std::string IndexFileName(std::string_view dir, std::string_view id) {
  return Join(RevisionsDirName(dir),
              RevisionFileBaseName(id, RevisionFileType::kIndex));
}

std::string ChunkPrefixDirName(std::string_view chunks_dir,
                               const Digest& digest) {
  return Join(chunks_dir, digest.Hex().substr(0, kChunkPrefixLength));
}

std::string ChunkFileName(std::string_view chunks_dir, const Digest& digest) {
  return Join(ChunkPrefixDirName(chunks_dir, digest),
              digest.Hex() + std::string(kChunkSuffix));
}

std::string QuarantinedChunkFileName(std::string_view quarantine_dir,
                                     const Digest& digest) {
  return Join(quarantine_dir, digest.Hex() + std::string(kChunkSuffix));
}

bool IsChunkPrefixDirName(std::string_view name) {
  // Lower-case hex digits, as Digest::Hex() writes them: ".." has two
  // characters too, and is not one.
  return name.size() == kChunkPrefixLength && IsLowerHex(name);
}

std::optional<Digest> ParseChunkFileName(std::string_view name) {
  if (name.size() != 2 * Digest::kSize + kChunkSuffix.size() ||
      !name.ends_with(kChunkSuffix)) {
    return std::nullopt;
  }
  auto digest = Digest::FromHex(name.substr(0, 2 * Digest::kSize));
  if (!digest.ok()) return std::nullopt;
  return *digest;
}

std::optional<RevisionFile> ParseRevisionFileName(std::string_view name) {
  if (auto id = Stem(name, kRevisionSuffix)) {
    return RevisionFile{std::string(*id), RevisionFileType::kMetadata};
  }
  if (auto id = Stem(name, kIndexSuffix)) {
    return RevisionFile{std::string(*id), RevisionFileType::kIndex};
  }
  return std::nullopt;
}

std::optional<PinFile> ParsePinFileName(std::string_view name) {
  for (PinFileType type : {PinFileType::kPin, PinFileType::kIndex}) {
    auto token = Stem(name, PinSuffix(type));
    if (token && token->size() == kPinTokenLength && IsLowerHex(*token)) {
      return PinFile{std::string(*token), type};
    }
  }
  return std::nullopt;
}

std::string PinFileBaseName(std::string_view token, PinFileType type) {
  std::string name(token);
  name += PinSuffix(type);
  return name;
}

std::string LegacyBackupLockFileName(std::string_view dir) {
  return Join(dir, kLegacyBackupLockName);
}
std::string LegacyPurgeLockFileName(std::string_view dir) {
  return Join(dir, kLegacyPurgeLockName);
}
std::string LegacyRevisionFileName(std::string_view dir, std::string_view id) {
  return Join(dir, std::string(id) + std::string(kRevisionSuffix));
}
std::string LegacyMappingFileName(std::string_view dir, std::string_view id) {
  return Join(dir, id);
}
std::string LegacyStoreMarkerFileName(std::string_view dir) {
  return Join(ChunksDirName(dir), kLegacyStoreMarkerName);
}

std::string LegacyChunkFileName(std::string_view chunks_dir,
                                const Digest& digest) {
  return Join(ChunkPrefixDirName(chunks_dir, digest),
              digest.Hex() + std::string(kLegacyChunkSuffix));
}

std::optional<Digest> ParseLegacyChunkFileName(std::string_view name) {
  if (name.size() != 2 * Digest::kSize + kLegacyChunkSuffix.size() ||
      !name.ends_with(kLegacyChunkSuffix)) {
    return std::nullopt;
  }
  auto digest = Digest::FromHex(name.substr(0, 2 * Digest::kSize));
  if (!digest.ok()) return std::nullopt;
  return *digest;
}

std::optional<std::string> ParseLegacyRevisionFileName(std::string_view name) {
  auto id = Stem(name, kRevisionSuffix);
  if (!id || id->empty() || *id == kLegacyLastName || id->size() > 64) {
    return std::nullopt;
  }
  for (char c : *id) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                       (c >= 'A' && c <= 'Z');
    if (!alnum && c != '-' && c != '_') return std::nullopt;
  }
  return std::string(*id);
}

}  // namespace backy::store
