// What monitoring reads of backy. Prometheus: the status document
// (status.h) in the text exposition format, written by prometheus-cpp's
// TextSerializer, served by GET /metrics and written as a textfile-
// collector file (backy.prom) next to the status file; one gauge or
// counter per figure, per job with the label `job` (man/backy.conf.5,
// "METRICS"). Nagios: the output of a plugin with performance data, for
// `backy check`. Pure functions, except the file writer and DiskBytes;
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backup/scheduler/status.h"
#include "store/status.h"

namespace backy::backup::scheduler {

// The Content-Type of the text exposition format.
inline constexpr const char* kMetricsContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// `doc` in the text exposition format. A job without a revision has no
// last-success, bytes-read or bytes-written sample; a job that never ran
// has no last-duration sample (absent, not 0, so alerts on them stay
// quiet until there is a figure).
std::string MetricsText(const StatusDoc& doc);

// Writes MetricsText(doc) to `path` (DaemonConfig::MetricsFile())
// atomically (the collector never reads half a file), mode 0600 like the
// status file.
Status WriteMetricsFile(const std::string& path, const StatusDoc& doc);

// The bytes allocated to the files under `dir` (st_blocks, symlinks not
// followed): what the repository costs on disk. One stat per file.
Result<uint64_t> DiskBytes(const std::string& dir);

// One performance datum of a Nagios plugin (plugin guidelines:
// 'label'=value[UOM];[warn];[crit];[min];[max]). No value is "U" (cannot
// be determined); warn and crit are Nagios ranges ("10", "5:", "@1:2").
struct PerfDatum {
  std::string label;
  std::optional<double> value;
  std::string uom;  // "s", "B", "%", "c" or ""
  std::string warn, crit;
  std::optional<double> min, max;
};

// The datum as the guidelines write it: the label quoted ('...', a quote
// doubled) unless it is only letters, digits, '_', '.' and '-'; '=' (which
// no label may hold) becomes '_'; trailing empty fields left out.
std::string FormatPerfDatum(const PerfDatum& d);

// A plugin's whole output, per the guidelines' long-output form:
//   SUMMARY | PERF PERF ...
//   LONG LINE
//   ...
//   LAST LONG LINE | LONG_PERF
//   LONG_PERF
// Without long lines, every datum is on the first line. A '|' in the text
// (it would cut the line into text and perfdata) becomes '/'. Ends in "\n".
std::string FormatPluginOutput(const std::string& summary,
                               const std::vector<PerfDatum>& perf,
                               const std::vector<std::string>& long_lines,
                               const std::vector<PerfDatum>& long_perf);

}  // namespace backy::backup::scheduler
