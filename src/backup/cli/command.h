// The command-line commands of `backy`. Each command lives in its own file
// in this directory and is listed once in commands.cc (the registration
// table); main.cc parses the global options, picks the command and prints
// its error as "backy: COMMAND: message".
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "store/repository.h"
#include "store/status.h"

namespace backy::backup::cli {

struct GlobalOptions {
  bool verbose = false;
  std::string logfile;
  std::string backupdir = ".";
  // How to reach the cluster of a rados: repository (--ceph-conf,
  // --client-id, $BACKY_RADOS_LEASE_SECONDS).
  store::RepositoryOptions repository;
};

class Command {
 public:
  virtual ~Command() = default;
  virtual std::string Name() const = 0;
  virtual std::string Description() const = 0;
  // Adds the command's options and arguments to its sub-app.
  virtual void Setup(CLI::App* app) = 0;
  // Runs the command after parsing; the Status is printed by main.
  virtual Status Run(const GlobalOptions& global) = 0;
};

// The registration table: every command, in --help order.
std::vector<std::unique_ptr<Command>> AllCommands();

// Set by SIGINT/SIGTERM; long-running commands stop when it is set.
extern std::atomic<bool> g_cancel;

// Opens the repository at global.backupdir.
Result<std::unique_ptr<store::Repository>> OpenRepository(
    const GlobalOptions& global);
// Opens the repository at `location` (a directory, or rados:POOL[/NS]/NAME)
// with the global options' Ceph settings: for commands that name a second
// repository (copy --to).
Result<std::unique_ptr<store::Repository>> OpenRepositoryAt(
    const std::string& location, const GlobalOptions& global);

// Reads the revisions and resolves SPEC (see store/spec.h).
Result<store::Revision> FindRevision(store::Repository& repo,
                                     const std::string& spec);

}  // namespace backy::backup::cli
