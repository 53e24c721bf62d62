// A test helper that writes backy 2.x repositories as the Python backy 2.4.3
// and 2.5.3 wrote them (chunked backend), for the cases the genuine fixtures
// in tests/data/legacy-backy lack: bigger images, incomplete revisions,
// damage. It owns nothing between calls; each call adds one revision to a
// directory, taking the 2.x locks as a 2.x backup does. Not thread-safe
// against itself on the same directory (the locks make a second one fail).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/status.h"

namespace backy::testing {

struct LegacyRevisionSpec {
  int version = 25;   // 24 (backy 2.4.3) or 25 (backy 2.5.3)
  std::string dir;    // the repository; created as 2.x would when missing
  std::string image;  // the file whose content the revision holds
  // What the config names as the source (written only when the repository
  // has no config yet); empty: the absolute path of `image`.
  std::string source;
  std::string uuid;
  // The parent's uuid. Unset: as 2.x chose it, the newest revision in the
  // directory (complete or not) by timestamp; none gives null (2.4) or ''
  // (2.5). The mapping starts as a copy of the parent's, as in 2.x.
  std::optional<std::string> parent;
  std::vector<std::string> tags;  // in the order written to the .rev
  std::string trust = "trusted";  // trusted, distrusted or verified
  // As PyYAML writes a UTC datetime: "2026-12-01 19:37:34.453883+00:00".
  // Empty: now.
  std::string timestamp;
  std::string duration = "0.25";  // stats.duration, written verbatim
  // A backup that never finished: the .rev without stats.duration (and
  // bytes_written 0), the mapping and chunks written, no `last` links.
  bool incomplete = false;
};

// Adds one revision of `spec.image` to `spec.dir` as 2.x's `backy backup`
// did: the chunk files it lacks (chunks/XX/<hash>.chunk.lzo, 0440), the
// JSON mapping `<uuid>` byte for byte as json.dump wrote it (key order
// kept from the parent's mapping, new slots appended), `<uuid>.rev` as
// yaml.safe_dump wrote it, and for 2.4 the `last`/`last.rev` symlinks.
// InvalidArgument for a bad spec (a uuid or tag PyYAML would quote),
// Busy when `.backup` is held, IOError naming the file otherwise.
Status WriteLegacyRevision(const LegacyRevisionSpec& spec);

// A 2.x JSON mapping: slot -> hash in file order, and the image size.
struct LegacyMapping {
  std::vector<std::pair<uint64_t, std::string>> slots;
  uint64_t size = 0;
};

// The bytes json.dump wrote for `m`: {"mapping": {"0": "...", ...},
// "size": N}, no newline.
std::string FormatLegacyMapping(const LegacyMapping& m);

// Parses a mapping file's bytes as json.dump wrote them (the writer's own
// output and the genuine fixtures'); Corruption naming `object` otherwise.
Result<LegacyMapping> ParseLegacyMapping(const std::string& text,
                                         const std::string& object);

}  // namespace backy::testing
