// Durations as people write them: "90s", "15m", "1h", "1d", "1w" (plain
// seconds too) in configs and on the command line, and the two ways backy
// prints them (as a config would say it, or as a clock). Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/status.h"

namespace backy::store {

// "90s", "15m", "1h", "1d", "1w" (also plain seconds) → seconds, from 1 s
// to 100 years; InvalidArgument naming `text` otherwise.
Result<int64_t> ParseDuration(std::string_view text);

// The two parts of a duration as written: an integer (any sign; strictly
// digits, no spaces or fractions) and the seconds of its unit (s, m, h, d,
// w; none = s). nullopt when `text` is not of that form. `too_large` when
// the integer does not fit in int64. For callers with their own ranges
// (the scheduler's config); ParseDuration is this plus 1 s .. 100 years.
struct DurationParts {
  int64_t number = 0;
  int64_t unit_seconds = 1;
  bool too_large = false;
};
std::optional<DurationParts> SplitDuration(std::string_view text);

enum class DurationFormat {
  // The shortest exact form ParseDuration reads back: 3600 → "1h",
  // 86400 → "1d", 90 → "90s". For whole seconds (configs, schedules).
  kUnit,
  // A clock, rounded to the second: 5 → "0:05", 3723 → "1:02:03". For
  // measured times (backup durations, ETAs).
  kClock,
};
std::string FormatDuration(double seconds,
                           DurationFormat format = DurationFormat::kUnit);

}  // namespace backy::store
