#include "store/duration.h"

#include <charconv>
#include <cstdio>
#include <utility>

namespace backy::store {

std::optional<DurationParts> SplitDuration(std::string_view text) {
  DurationParts d;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, d.number);
  if (end == first ||
      (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return std::nullopt;
  }
  d.too_large = ec == std::errc::result_out_of_range;
  const std::string_view unit(end, static_cast<size_t>(last - end));
  if (unit.empty() || unit == "s") {
    d.unit_seconds = 1;
  } else if (unit == "m") {
    d.unit_seconds = 60;
  } else if (unit == "h") {
    d.unit_seconds = 3600;
  } else if (unit == "d") {
    d.unit_seconds = 86400;
  } else if (unit == "w") {
    d.unit_seconds = 7 * 86400;
  } else {
    return std::nullopt;
  }
  return d;
}

Result<int64_t> ParseDuration(std::string_view text) {
  const std::string t(text);
  auto d = SplitDuration(text);
  if (!d || d->number <= 0) {
    return Status::InvalidArgument("bad duration '" + t +
                                   "' (use e.g. 1h, 1d, 1w)");
  }
  // Bounded before multiplying (no overflow, and callers may convert to
  // microseconds): no schedule or budget needs more than 100 years.
  constexpr int64_t kMaxSeconds = int64_t{100} * 366 * 86400;
  if (d->too_large || d->number > kMaxSeconds / d->unit_seconds) {
    return Status::InvalidArgument("duration '" + t +
                                   "' is longer than 100 years");
  }
  return d->number * d->unit_seconds;
}

namespace {

std::string FormatUnit(int64_t seconds) {
  for (auto [unit, mul] :
       {std::pair{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}}) {
    if (seconds % mul == 0) return std::to_string(seconds / mul) + unit;
  }
  return std::to_string(seconds) + "s";
}

std::string FormatClock(double seconds) {
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60,
                  s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

std::string FormatDuration(double seconds, DurationFormat format) {
  switch (format) {
    case DurationFormat::kUnit:
      return FormatUnit(static_cast<int64_t>(seconds));
    case DurationFormat::kClock:
      return FormatClock(seconds);
  }
  return FormatUnit(static_cast<int64_t>(seconds));
}

}  // namespace backy::store
