// Schedule: a job's backup plan as its repository's config records it —
// for each tag, how often a backup gets it and how many of the newest
// revisions carrying it keep it. The scheduler (backup/scheduler/) decides
// when to run from it; expire (backup/expire.h) decides what to keep.
// A plain value; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace backy::store {

struct ScheduleEntry {
  int64_t interval_seconds = 0;
  uint32_t keep = 0;
  bool operator==(const ScheduleEntry&) const = default;
};

struct Schedule {
  std::map<std::string, ScheduleEntry> tags;
  uint32_t min_keep = 1;  // never expire below this many revisions
  bool empty() const { return tags.empty(); }
  bool operator==(const Schedule&) const = default;
};

}  // namespace backy::store
