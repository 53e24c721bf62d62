// backy: block-based backup and restore of VM images.
//
// Parses the global options (-v, -l LOGFILE, -b BACKUPDIR), sets up logging
// and signals, runs one command and turns its Status into one line on
// stderr ("backy: COMMAND: message") and the exit code.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "backup/cli/command.h"
#include "backup/logging.h"

namespace {

using backy::Status;
using backy::backup::cli::g_cancel;

extern "C" void OnCancelSignal(int sig) {
  if (g_cancel.exchange(true)) {
    // Second signal: stop at once.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
  }
}

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnCancelSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A closed pipe (restore - | head) is reported as EPIPE, not a signal.
  ::signal(SIGPIPE, SIG_IGN);
}

// 2 is for usage errors (a bad option or argument); damaged or missing
// data (Corruption, NotFound, IOError, ...) is 1.
int ExitCode(const Status& s) {
  if (s.ok()) return 0;
  if (s.IsInterrupted()) return 130;
  if (s.IsInvalidArgument()) return 2;
  return 1;
}

// The message for a parse error before any command: CLI11 reports a
// misspelt command as "A subcommand is required", like a missing one.
std::string TopLevelError(const CLI::App& app, const CLI::ParseError& e) {
  const std::vector<std::string> rest = app.remaining();
  if (!rest.empty() && !rest.front().empty()) {
    const std::string& arg = rest.front();
    return (arg[0] == '-' ? "unknown option '" : "unknown command '") + arg +
           "'";
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e)) {
    return "a command is required";
  }
  return e.what();
}

}  // namespace

int main(int argc, char** argv) {
  // Everything backy creates holds disk images or says what is in them:
  // files it does not give an explicit mode (logs, sockets, restored
  // images) are for the owner only too.
  ::umask(0077);
  backy::backup::cli::GlobalOptions global;
  CLI::App app{
      "backy: block-based backup and restore of VM images.\n"
      "A repository (BACKUPDIR) holds the revisions of one image source.",
      "backy"};
  app.set_version_flag("--version", "backy 0.1.0");
  app.add_flag("-v,--verbose", global.verbose, "Log debug messages");
  app.add_option("-l,--logfile", global.logfile, "Also log to this file");
  app.add_option("-b,--backupdir", global.backupdir,
                 "Repository: a directory (default: the current directory), "
                 "or rados:POOL[/NAMESPACE]/NAME for one in a Ceph pool");
  app.add_option("--ceph-conf", global.repository.rados.conf_path,
                 "ceph.conf of a rados: repository's cluster (default: "
                 "$CEPH_CONF, then Ceph's default places)");
  app.add_option("--client-id", global.repository.rados.client_id,
                 "Ceph client id for a rados: repository (default: admin)");
  app.require_subcommand(1);
  app.fallthrough();

  auto commands = backy::backup::cli::AllCommands();
  std::vector<std::pair<CLI::App*, backy::backup::cli::Command*>> subs;
  for (auto& cmd : commands) {
    CLI::App* sub = app.add_subcommand(cmd->Name(), cmd->Description());
    cmd->Setup(sub);
    subs.emplace_back(sub, cmd.get());
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where;
    for (auto& [sub, cmd] : subs) {
      if (sub->parsed()) where = cmd->Name() + ": ";
    }
    const std::string message =
        where.empty() ? TopLevelError(app, e) : e.what();
    std::fprintf(
        stderr, "backy: %s%s\nRun 'backy %s--help' for usage.\n", where.c_str(),
        message.c_str(),
        where.empty() ? "" : (where.substr(0, where.size() - 2) + " ").c_str());
    return 2;
  }

  if (const char* lease = std::getenv("BACKY_RADOS_LEASE_SECONDS")) {
    char* end = nullptr;
    const long v = std::strtol(lease, &end, 10);
    if (end == lease || *end != '\0' || v < 3 || v > 3600) {
      std::fprintf(stderr,
                   "backy: BACKY_RADOS_LEASE_SECONDS must be 3 to 3600, not "
                   "'%s'\n",
                   lease);
      return 2;
    }
    global.repository.rados.lease_s = static_cast<int>(v);
  }
  backy::backup::SetupLogging(global.verbose, global.logfile);
  InstallSignalHandlers();
  for (auto& [sub, cmd] : subs) {
    if (!sub->parsed()) continue;
    Status s = cmd->Run(global);
    if (!s.ok()) {
      spdlog::debug("{} failed: {}", cmd->Name(), s.ToString());
      std::fprintf(
          stderr, "backy: %s: %s\n", cmd->Name().c_str(),
          (s.IsCorruption() ? "Corruption: " + s.Message() : s.Message())
              .c_str());
    }
    spdlog::shutdown();
    return ExitCode(s);
  }
  return 2;
}
