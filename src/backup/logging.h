// backy's log sinks, set up in one place for the CLI (main.cc) and the
// scheduler daemon: stderr (plain, or with time and level under -v) and
// log files, all lines "YYYY-MM-DD HH:MM:SS.mmm [PID] LEVEL message".
// Log files are opened O_APPEND and O_NOFOLLOW (a symlink planted in their
// place is refused, not followed), created owner-only, and can be reopened
// by path after logrotate renamed them. Call the setup functions from one
// thread at start (spdlog's default logger is replaced); logging itself,
// ReopenLogFiles and the append functions are thread-safe.
#pragma once

#include <spdlog/common.h>

#include <cstdint>
#include <string>

#include "store/status.h"

namespace backy::store {
class Repository;
}

namespace backy::backup {

// DIR/backy.log: the repository's log, where a command run with `-b DIR`
// records what it did and the scheduler records each step of a job's run.
std::string RepositoryLogName(const std::string& dir);

// Makes the default logger "backy": stderr at info (debug with `verbose`),
// and `logfile` unless empty (info, debug with `verbose`). A log file that
// cannot be opened is reported on stderr ("backy: cannot open log file
// PATH: why") and left out.
void SetupLogging(bool verbose, const std::string& logfile);

// The one place the daemon's log goes (each line once):
//   `cli_logfile` (-l FILE) given: that file;
//   else `config_log_file` "-": stderr;
//   else `config_log_file` other than `default_log_file` (asked for in
//   the config): that file;
//   else stderr when it is the journal (`journal`), `default_log_file`
//   when not.
// Returns the file's path, "" for stderr. Pure.
std::string ChooseDaemonLog(const std::string& cli_logfile,
                            const std::string& config_log_file,
                            const std::string& default_log_file, bool journal);

// True when `journal_stream` (the value of $JOURNAL_STREAM, "DEV:INO" in
// decimal, as systemd sets it; null when unset) names the file (dev, ino).
// Pure.
bool MatchesJournalStream(const char* journal_stream, uint64_t dev,
                          uint64_t ino);

// True when stderr is the stream $JOURNAL_STREAM names: systemd passed it
// to the journal (a child that inherited the variable but not the stream
// is not).
bool StderrIsJournal();

// Makes `file` (ChooseDaemonLog's answer) the default logger's only sink
// at `level`: an open log file of that path is kept (the -l file), any
// other file and stderr are dropped. "" keeps stderr only; with `journal`
// each line then starts with its syslog priority ("<4>" for a warning) for
// the journal to parse. IOError "cannot open log file PATH: why" when the
// file cannot be opened (the logger is unchanged).
Status UseOnlyDaemonLog(const std::string& file,
                        spdlog::level::level_enum level, bool journal);

// Reopens every log file of the default logger by its path, so that lines
// after a rename (logrotate) go to a new file at the old path. A file that
// cannot be reopened keeps its old descriptor; IOError names the first.
Status ReopenLogFiles();

// Appends `text`, each of its lines, at `level` to the log file `path` in
// the format above; not to the default logger's sinks. IOError "cannot
// write the log PATH: why" when it cannot be opened or written.
Status AppendToLog(const std::string& path, spdlog::level::level_enum level,
                   const std::string& text);

// Records what a command did in the repository's log
// (RepositoryLogName(dir)), at info: exactly once, also when -l names
// that very file (the scheduler's children), and in the other log files
// of the default logger; on stderr too when `on_stderr`. A repository log
// that cannot be written is a warning on stderr naming it; the command's
// result does not change.
void LogToRepository(const std::string& dir, const std::string& line,
                     bool on_stderr);
// The same for `repo`, except that a backy 2.x repository read in place
// gets no line (it stays as 2.x leaves it; the other log files and stderr
// still do).
void LogToRepository(const store::Repository& repo, const std::string& line,
                     bool on_stderr);

}  // namespace backy::backup
