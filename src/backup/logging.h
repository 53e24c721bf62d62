// backy's log sinks, set up in one place for the CLI (main.cc) and the
// scheduler daemon: stderr (plain, or with time and level under -v) and
// log files, all lines "YYYY-MM-DD HH:MM:SS.mmm [PID] LEVEL message".
// Call from one thread at start (spdlog's default logger is replaced or
// extended); logging itself is thread-safe.
#pragma once

#include <spdlog/common.h>

#include <string>

#include "store/status.h"

namespace backy::backup {

// Makes the default logger "backy": stderr at info (debug with `verbose`),
// and `logfile` unless empty (info, debug with `verbose`). A log file that
// cannot be opened is reported on stderr ("backy: cannot open log file
// PATH: why") and left out.
void SetupLogging(bool verbose, const std::string& logfile);

// Adds the log file `path` at `level` to the default logger. IOError
// "cannot open log file PATH: why" when it cannot be opened (the logger is
// unchanged).
Status AddLogFile(const std::string& path, spdlog::level::level_enum level);

}  // namespace backy::backup
