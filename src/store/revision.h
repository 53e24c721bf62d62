// Revision: the metadata of one backup — id, time, parent, tags, trust,
// image size, statistics and how it was verified — stored as YAML in
// revisions/<id>.rev next to its index revisions/<id>.index.
//
// Plain value type. The YAML fields are specified in man/backy-store.5.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "store/status.h"

namespace backy::store {

enum class Trust { kTrusted, kDistrusted, kVerified };
std::string TrustName(Trust t);
Result<Trust> ParseTrust(std::string_view s);

struct RevisionStats {
  uint64_t bytes_read = 0;       // bytes read from the source
  uint64_t bytes_written = 0;    // bytes written to chunk files
  uint64_t chunks_new = 0;       // chunks written by this backup
  uint64_t chunks_reused = 0;    // slots whose chunk existed already
  uint64_t chunks_zero = 0;      // all-zero slots (no chunk)
  uint64_t chunks_carried = 0;   // slots taken from the parent unread
  uint64_t extents_changed = 0;  // extents the source reported as changed
  double duration = 0;           // seconds, source open to publish
};

struct Verification {
  std::string method;  // "readback" (file) or "sample" (RBD), "" if none
  uint64_t chunks_checked = 0;
  uint64_t chunks_total = 0;  // chunks the method set out to check
  double fraction = 0;        // chunks_checked / chunks_total (1 if none)
  double coverage = 0;        // chunks_checked / data slots of the revision
  bool complete = false;      // every planned chunk was checked in time
};

struct Revision {
  std::string id;
  int64_t timestamp_us = 0;  // microseconds since the epoch, UTC
  std::string parent;        // id of the revision this one was based on
  std::set<std::string> tags;
  Trust trust = Trust::kTrusted;
  uint64_t size = 0;  // image size in bytes
  uint32_t chunk_size = 0;
  std::string source;  // e.g. "file:/images/vm1.raw", for humans
  RevisionStats stats;
  Verification verification;
  // Stored in backy 2.x's form (store/legacy_repository.h): metadata in
  // DIR/<id>.rev, a JSON mapping of 2.x chunk hashes, chunks read through
  // Repository::ChunksOf(). Set by the reader; never written to YAML.
  bool legacy = false;

  std::string ToYaml() const;
  // Parses strictly: a missing required key (id, timestamp, size,
  // chunk_size), a value of the wrong YAML type (`trust: {a: 1}`,
  // `tags: daily`) or an impossible one (a timestamp of month 13, a
  // negative count) is Corruption naming `name` (the file path), the line
  // and the key. Unknown keys are ignored.
  static Result<Revision> FromYaml(const std::string& text,
                                   const std::string& name);
  // Parses a backy 2.x revision file (DIR/<uuid>.rev: uuid, timestamp,
  // parent, backend_type, stats.{bytes_written,duration}, tags, trust) as
  // strictly as FromYaml, into a revision with legacy = true; `size`,
  // `chunk_size` and `source` are left for the caller (they are not in
  // it). `*complete` says whether it has stats.duration: 2.x wrote that
  // last, so a revision without it never completed. NotSupported for a
  // backend type other than "chunked".
  static Result<Revision> FromLegacyYaml(const std::string& text,
                                         const std::string& name,
                                         bool* complete);
};

// The order of a repository's revisions, oldest first: by timestamp, then
// id (for a std::sort of revisions).
inline bool IsOlder(const Revision& a, const Revision& b) {
  return a.timestamp_us != b.timestamp_us ? a.timestamp_us < b.timestamp_us
                                          : a.id < b.id;
}

// A revision whose metadata cannot be used: unreadable, not a regular file,
// too large, not valid YAML, or naming another id.
struct DamagedRevision {
  std::string id;  // from the file name
  Status status;   // why, naming the file
};

// Checks that `tag` can name a tag of a new revision (given to `backup`,
// or scheduled in backy.conf): non-empty, no whitespace, no ',' (the
// separator of TAGS), no '/' (JOB/SPEC export names), and not a bare
// "manual:" (a manual tag names what it was for). InvalidArgument naming
// the tag otherwise. Reading a revision accepts more (FromYaml).
Status ValidateTag(std::string_view tag);

// Splits TAGS as `backup` takes them ("daily,manual:before-upgrade") and
// checks each with ValidateTag. An empty item ("daily,,weekly", a leading
// or trailing ',', or no tag at all) is InvalidArgument naming TAGS.
// Repeated tags count once.
Result<std::set<std::string>> ParseTagList(std::string_view tags);

// A new random revision id: 22 characters of [0-9A-Za-z] (like backy 2.x's
// shortuuid), safe as a file name and in NBD export names.
std::string NewRevisionId();

// Current time in microseconds since the epoch.
int64_t NowMicros();
// "2026-11-22T03:10:02.123456Z" and back. ParseTimestamp() takes
// YYYY-MM-DD, optionally followed by T (or a space) and HH:MM:SS[.frac],
// optionally by Z or +00:00; anything else, or a date or time that cannot
// exist, is InvalidArgument.
std::string FormatTimestamp(int64_t us);
Result<int64_t> ParseTimestamp(std::string_view s);

}  // namespace backy::store
