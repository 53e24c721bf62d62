#include "backup/cli/command.h"
#include "store/spec.h"

namespace backy::backup::cli {

std::unique_ptr<Command> MakeInitCommand();
std::unique_ptr<Command> MakeBackupCommand();
std::unique_ptr<Command> MakeRestoreCommand();
std::unique_ptr<Command> MakeStatusCommand();
std::unique_ptr<Command> MakeFindCommand();
std::unique_ptr<Command> MakeForgetCommand();
std::unique_ptr<Command> MakeNbdServerCommand();
std::unique_ptr<Command> MakeSchedulerCommand();
std::unique_ptr<Command> MakeJobsCommand();
std::unique_ptr<Command> MakeRunCommand();
std::unique_ptr<Command> MakeCheckCommand();
std::unique_ptr<Command> MakeExpireCommand();
std::unique_ptr<Command> MakePurgeCommand();
std::unique_ptr<Command> MakeVerifyCommand();
std::unique_ptr<Command> MakeDistrustCommand();
std::unique_ptr<Command> MakeUpgradeCommand();
std::unique_ptr<Command> MakeCopyCommand();

std::vector<std::unique_ptr<Command>> AllCommands() {
  std::vector<std::unique_ptr<Command>> all;
  all.push_back(MakeInitCommand());
  all.push_back(MakeBackupCommand());
  all.push_back(MakeRestoreCommand());
  all.push_back(MakeStatusCommand());
  all.push_back(MakeFindCommand());
  all.push_back(MakeForgetCommand());
  all.push_back(MakeExpireCommand());
  all.push_back(MakePurgeCommand());
  all.push_back(MakeVerifyCommand());
  all.push_back(MakeDistrustCommand());
  all.push_back(MakeUpgradeCommand());
  all.push_back(MakeCopyCommand());
  all.push_back(MakeNbdServerCommand());
  all.push_back(MakeSchedulerCommand());
  all.push_back(MakeJobsCommand());
  all.push_back(MakeRunCommand());
  all.push_back(MakeCheckCommand());
  return all;
}

std::atomic<bool> g_cancel{false};

Result<std::unique_ptr<store::Repository>> OpenRepository(
    const GlobalOptions& global) {
  return OpenRepositoryAt(global.backupdir, global);
}

Result<std::unique_ptr<store::Repository>> OpenRepositoryAt(
    const std::string& location, const GlobalOptions& global) {
  return store::Repository::Open(location, global.repository);
}

Result<store::Revision> FindRevision(store::Repository& repo,
                                     const std::string& spec) {
  auto scan = repo.ScanRevisions();
  if (!scan.ok()) return scan.status();
  auto pos = store::ResolveSpec(scan->healthy, spec);
  if (pos.ok()) return scan->healthy[*pos];
  // A SPEC naming a damaged revision by id says why it cannot be used,
  // rather than that no such revision exists.
  for (const auto& d : scan->damaged) {
    if (d.id == spec) {
      return Status::Corruption("revision " + d.id +
                                " is damaged: " + d.status.ToString());
    }
  }
  return pos.status();
}

}  // namespace backy::backup::cli
