// The backy 2.x repository format, read in place: its config, its revisions
// (DIR/<uuid>.rev YAML and DIR/<uuid> JSON mapping), its chunks (see
// legacy_chunk_store.h) and its locks. Repository uses these for a directory
// whose config is 2.x's, and `backy upgrade` (backup/upgrade.h) to convert
// one. The format is in man/backy-store.5 ("BACKY 2.X REPOSITORIES").
//
// Reading writes nothing. The only writes are the ones 2.x itself made to a
// revision after its backup: new tags or trust (distrust, verify), and
// forgetting it. Pure functions of the directory; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "store/index.h"
#include "store/revision.h"
#include "store/status.h"

namespace backy::store {

// What 2.x wrote into its chunks/store marker file.
inline constexpr std::string_view kLegacyStoreVersion = "v2";
// 2.x chunks are 4 MiB; the last slot of an image may be shorter.
inline constexpr uint32_t kLegacyChunkSize = 4 * 1024 * 1024;

// Whether DIR/config is backy 2.x's: a YAML map without our `format` key
// (RepositoryConfig::FromYaml reads both; `legacy` says which). NotFound
// when there is no config, Corruption when it cannot be read.
Result<bool> IsLegacyRepository(const std::string& dir);

struct LegacyRevisionList {
  // Complete revisions (their .rev has stats.duration), with legacy = true,
  // oldest first (timestamp, then id). `size` comes from the mapping,
  // `chunk_size` is 4 MiB, `source` is `source_name`.
  std::vector<Revision> complete;
  // Revisions whose .rev or mapping cannot be used, naming the file.
  std::vector<DamagedRevision> damaged;
  // Ids of revisions 2.x never completed (no stats.duration): not
  // revisions at all, left for `upgrade` to remove.
  std::vector<std::string> incomplete;
};
// Reads the 2.x revisions in `dir`: every DIR/<id>.rev that is a regular
// file (not `last.rev`, not a symlink). A damaged one does not fail the
// scan. Fails only when `dir` cannot be listed.
Result<LegacyRevisionList> ScanLegacyRevisions(const std::string& dir,
                                               const std::string& source_name);

// Reads revision `id`'s JSON mapping (DIR/<id>) as an index of 4 MiB slots
// whose digests are the 2.x chunk hashes (MurmurHash3, read by
// LegacyChunkStore). A slot the mapping leaves out reads as zeros, as in
// 2.x; the one slot starting exactly at the image size that 2.4 kept after
// an image shrank is ignored. (After a shrink 2.4 also kept the old tail in
// the last chunk: its chunk may be longer than its slot, and only the
// slot's bytes are the image's.) Corruption naming the file for anything else:
// not JSON, no `size` or `mapping`, a size over the index limits, a slot number
// that is not a decimal number below the slot count, a hash that is not 32 hex
// digits, a file over 512 MiB.
Result<RevisionIndex> LoadLegacyIndex(const std::string& dir,
                                      const std::string& id);
// The parser behind LoadLegacyIndex(), on a mapping file's text; errors
// name `name`.
Result<RevisionIndex> ParseLegacyMapping(std::string_view text,
                                         const std::string& name);

// Rewrites DIR/<id>.rev with `revision`'s tags and trust, keeping every
// other key as 2.x wrote it, atomically (temp file in `dir`, fsync,
// rename, fsync dir). NotFound when the revision is gone.
Status UpdateLegacyMetadata(const std::string& dir, const Revision& revision);

// Removes 2.x revision `id`: its .rev first (it disappears at once), then
// its mapping, as 2.x's forget did. Its chunks stay. `last`/`last.rev`
// symlinks left pointing at it are removed too.
Status ForgetLegacyRevision(const std::string& dir, const std::string& id);

}  // namespace backy::store
