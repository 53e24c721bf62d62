// The scheduler daemon (`backy scheduler`): runs every job of the config on
// its schedule as child processes (`backy -b BASE/JOB backup TAGS`, then
// `expire`, then `purge`), at most worker-limit at once; keeps the status
// file; serves the control API; reloads the config on SIGHUP (and reopens
// its log file, as on SIGUSR1, for logrotate); stops on
// SIGTERM/SIGINT after its children have stopped. Owns everything it
// starts. Single-threaded: one io_context runs signals, timers, the API
// and the children's pipes.
#pragma once

#include <string>

#include "store/status.h"

namespace backy::backup::scheduler {

struct DaemonOptions {
  std::string config_path;
  // The backy binary the jobs run; /proc/self/exe runs this very binary
  // even after a package upgrade replaced the file.
  std::string backy_binary = "/proc/self/exe";
  bool verbose = false;  // pass -v to the children; log debug lines
  // -l FILE: the daemon's log, instead of global.log-file (where the log
  // goes: ChooseDaemonLog in backup/logging.h).
  std::string logfile;
  // --state-dir: replaces global.state-dir (a rados: base-dir only).
  std::string state_dir;
};

// Runs until SIGTERM or SIGINT, then stops the running children (SIGTERM;
// a backup publishes nothing when stopped) and waits for them. OK after a
// clean stop; InvalidArgument when the config cannot be loaded at start
// ("FILE:LINE: ...", or naming the file it cannot read); the error of the
// API's listener, the lock (another scheduler on the same base-dir, or
// state-dir for a rados: base-dir: Busy) or that directory.
Status RunDaemon(const DaemonOptions& options);

}  // namespace backy::backup::scheduler
