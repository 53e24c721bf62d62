// Where a repository's files are, by name: the one place that builds and
// parses the paths inside a repository directory (like leveldb's
// db/filename.h). man/backy-store.5 describes the same layout:
//   DIR/config  DIR/lock  DIR/purge.lock  DIR/tmp/  DIR/quarantine/
//   DIR/revisions/<id>.rev  DIR/revisions/<id>.index
//   DIR/pins/<token>.pin  DIR/pins/<token>.index  (store/revision_pin.h)
//   DIR/chunks/<xx>/<digest>.chunk  (xx: the digest's first two hex digits)
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/digest.h"

namespace backy::store {

// The entries of a repository directory.
inline constexpr std::string_view kConfigName = "config";
inline constexpr std::string_view kWriterLockName = "lock";
inline constexpr std::string_view kPurgeLockName = "purge.lock";
inline constexpr std::string_view kTmpDirName = "tmp";
inline constexpr std::string_view kChunksDirName = "chunks";
inline constexpr std::string_view kQuarantineDirName = "quarantine";
inline constexpr std::string_view kRevisionsDirName = "revisions";
inline constexpr std::string_view kPinsDirName = "pins";
// Suffixes of the files in revisions/ and of chunk files.
inline constexpr std::string_view kRevisionSuffix = ".rev";
inline constexpr std::string_view kIndexSuffix = ".index";
inline constexpr std::string_view kChunkSuffix = ".chunk";
inline constexpr std::string_view kPinSuffix = ".pin";
// A pin's token: this many lower-case hex digits.
inline constexpr size_t kPinTokenLength = 32;
// A chunk's prefix directory is named for the first this-many hex digits
// of its digest.
inline constexpr size_t kChunkPrefixLength = 2;

// Paths in the repository directory `dir`.
std::string ConfigFileName(std::string_view dir);
std::string WriterLockFileName(std::string_view dir);
std::string PurgeLockFileName(std::string_view dir);
std::string TmpDirName(std::string_view dir);
std::string ChunksDirName(std::string_view dir);
std::string QuarantineDirName(std::string_view dir);
std::string RevisionsDirName(std::string_view dir);
std::string PinsDirName(std::string_view dir);
// DIR/backy.log: what each command did to the repository.
std::string RepositoryLogFileName(std::string_view dir);
// DIR/revisions/<id>.rev: the revision's metadata (YAML).
std::string RevisionFileName(std::string_view dir, std::string_view id);
// DIR/revisions/<id>.index: the revision's index (binary).
std::string IndexFileName(std::string_view dir, std::string_view id);

// Paths of chunks, in a chunks directory (ChunksDirName) or a quarantine
// directory (QuarantineDirName).
// CHUNKS/<xx>: the directory holding the chunks whose hex digest starts
// with xx.
std::string ChunkPrefixDirName(std::string_view chunks_dir,
                               const Digest& digest);
// CHUNKS/<xx>/<hex digest>.chunk
std::string ChunkFileName(std::string_view chunks_dir, const Digest& digest);
// QUARANTINE/<hex digest>.chunk
std::string QuarantinedChunkFileName(std::string_view quarantine_dir,
                                     const Digest& digest);

// Parsing names found by listing a directory (names, not paths).
// True when `name` could be a chunk prefix directory in chunks/:
// kChunkPrefixLength lower-case hex digits (never "." or "..").
bool IsChunkPrefixDirName(std::string_view name);
// The digest of a chunk file named "<32 hex digits>.chunk"; nullopt for
// any other name.
std::optional<Digest> ParseChunkFileName(std::string_view name);

enum class RevisionFileType { kMetadata, kIndex };
struct RevisionFile {
  std::string id;
  RevisionFileType type;
};
// "<id>.rev" or "<id>.index" in revisions/, with a non-empty id that does
// not start with '.'; nullopt for any other name (temporary files, dot
// files, strays).
std::optional<RevisionFile> ParseRevisionFileName(std::string_view name);
// The name of a revision file of `type` for `id`: "<id>.rev" or
// "<id>.index" (ParseRevisionFileName's inverse).
std::string RevisionFileBaseName(std::string_view id, RevisionFileType type);

// The files of a pin in pins/ (store/revision_pin.h): "<token>.pin", the
// file its reader holds locked, and "<token>.index", its hard link to the
// revision's index.
enum class PinFileType { kPin, kIndex };
struct PinFile {
  std::string token;
  PinFileType type;
};
// The pin file named `name` (a name in pins/, token of kPinTokenLength
// lower-case hex digits); nullopt for any other name.
std::optional<PinFile> ParsePinFileName(std::string_view name);
// ParsePinFileName's inverse: "<token>.pin" or "<token>.index".
std::string PinFileBaseName(std::string_view token, PinFileType type);

// The files of a backy 2.x repository (store/legacy_repository.h), in the
// same directory layout 2.x used:
//   DIR/config  DIR/.backup  DIR/.purge  DIR/last  DIR/last.rev
//   DIR/<uuid>.rev  DIR/<uuid> (the JSON mapping)
//   DIR/chunks/store ("v2")  DIR/chunks/<xx>/<hash>.chunk.lzo
inline constexpr std::string_view kLegacyBackupLockName = ".backup";
inline constexpr std::string_view kLegacyPurgeLockName = ".purge";
inline constexpr std::string_view kLegacyChunkSuffix = ".chunk.lzo";
inline constexpr std::string_view kLegacyStoreMarkerName = "store";
// The names 2.4 kept as symlinks to the newest revision: never revisions.
inline constexpr std::string_view kLegacyLastName = "last";
std::string LegacyBackupLockFileName(std::string_view dir);
std::string LegacyPurgeLockFileName(std::string_view dir);
// DIR/<uuid>.rev and DIR/<uuid>.
std::string LegacyRevisionFileName(std::string_view dir, std::string_view id);
std::string LegacyMappingFileName(std::string_view dir, std::string_view id);
// DIR/chunks/store.
std::string LegacyStoreMarkerFileName(std::string_view dir);
// CHUNKS/<xx>/<32 hex digits>.chunk.lzo
std::string LegacyChunkFileName(std::string_view chunks_dir,
                                const Digest& digest);
// The digest of a chunk file named "<32 hex digits>.chunk.lzo"; nullopt for
// any other name.
std::optional<Digest> ParseLegacyChunkFileName(std::string_view name);
// The id of a 2.x revision metadata file "<id>.rev" in the repository's top
// directory; nullopt for any other name, "last.rev", dot files and names
// that could not be a 2.x id (2.x ids are shortuuids: [0-9A-Za-z]).
std::optional<std::string> ParseLegacyRevisionFileName(std::string_view name);

}  // namespace backy::store
