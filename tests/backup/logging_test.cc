// Logging: where the daemon's log goes (pure rule), the journal check, and
// the log files themselves (owner-only, appended, no symlinks followed,
// reopened after a rename, the repository's line written once).
#include "backup/logging.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/test_util.h"

namespace backy::backup {
namespace {

namespace fs = std::filesystem;

TEST(ChooseDaemonLogTest, DashLFileWinsOverEverything) {
  EXPECT_EQ(ChooseDaemonLog("/l.log", "/conf.log", "/b/scheduler.log", true),
            "/l.log");
  EXPECT_EQ(ChooseDaemonLog("/l.log", "-", "/b/scheduler.log", false),
            "/l.log");
}

TEST(ChooseDaemonLogTest, ConfigDashMeansStderr) {
  EXPECT_EQ(ChooseDaemonLog("", "-", "/b/scheduler.log", false), "");
  EXPECT_EQ(ChooseDaemonLog("", "-", "/b/scheduler.log", true), "");
}

TEST(ChooseDaemonLogTest, ConfiguredFileIsUsedEvenUnderTheJournal) {
  EXPECT_EQ(ChooseDaemonLog("", "/var/log/backy.log", "/b/scheduler.log", true),
            "/var/log/backy.log");
}

TEST(ChooseDaemonLogTest, DefaultIsTheJournalOrBaseSchedulerLog) {
  EXPECT_EQ(ChooseDaemonLog("", "/b/scheduler.log", "/b/scheduler.log", true),
            "");
  EXPECT_EQ(ChooseDaemonLog("", "/b/scheduler.log", "/b/scheduler.log", false),
            "/b/scheduler.log");
  EXPECT_EQ(ChooseDaemonLog("", "", "/b/scheduler.log", false),
            "/b/scheduler.log");
}

TEST(MatchesJournalStreamTest, ParsesDevColonIno) {
  EXPECT_TRUE(MatchesJournalStream("8:12345", 8, 12345));
  EXPECT_FALSE(MatchesJournalStream("8:12345", 8, 12346));
  EXPECT_FALSE(MatchesJournalStream("9:12345", 8, 12345));
  EXPECT_FALSE(MatchesJournalStream(nullptr, 8, 12345));
  for (const char* bad : {"", ":", "8:", ":12345", "8-12345", "8:12345x",
                          "x8:12345", "8:12:345", "-8:12345"}) {
    EXPECT_FALSE(MatchesJournalStream(bad, 8, 12345)) << bad;
  }
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("backy-logging-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    SetupLogging(false, "");  // closes the test's log files
    fs::remove_all(dir_);
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos;
         pos = text.find(what, pos + 1)) {
      ++n;
    }
    return n;
  }
  static unsigned Mode(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  fs::path dir_;
};

TEST_F(LogFileTest, AppendToLogWritesEachLineFormattedOwnerOnly) {
  const fs::path log = dir_ / "a.log";
  ASSERT_OK(AppendToLog(log, spdlog::level::warn, "first\nsecond"));
  ASSERT_OK(AppendToLog(log, spdlog::level::info, "third"));
  const std::string text = Read(log);
  EXPECT_EQ(Count(text, "\n"), 3) << text;
  EXPECT_EQ(Count(text, "] warning first\n"), 1) << text;
  EXPECT_EQ(Count(text, "] warning second\n"), 1) << text;
  EXPECT_EQ(Count(text, "] info third\n"), 1) << text;
  EXPECT_EQ(Count(text, "[" + std::to_string(::getpid()) + "]"), 3) << text;
  EXPECT_EQ(Mode(log), 0600u);
}

TEST_F(LogFileTest, AnOpenLogIsMadeOwnerOnly) {
  const fs::path log = dir_ / "open.log";
  { std::ofstream(log) << "old\n"; }
  ::chmod(log.c_str(), 0644);
  ASSERT_OK(AppendToLog(log, spdlog::level::info, "new"));
  EXPECT_EQ(Mode(log), 0600u);
  EXPECT_EQ(Read(log).substr(0, 4), "old\n");  // appended, not truncated
}

TEST_F(LogFileTest, APlantedSymlinkIsRefusedNotFollowed) {
  const fs::path target = dir_ / "elsewhere";
  { std::ofstream(target) << "precious\n"; }
  const fs::path log = dir_ / "backy.log";
  fs::create_symlink(target, log);
  Status s = AppendToLog(log, spdlog::level::info, "line");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.Message().find(log.string()), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("symlink"), std::string::npos) << s.Message();
  EXPECT_EQ(Read(target), "precious\n");
}

TEST_F(LogFileTest, AFifoIsRefusedWithoutHanging) {
  const fs::path log = dir_ / "fifo.log";
  ASSERT_EQ(::mkfifo(log.c_str(), 0600), 0);
  Status s = AppendToLog(log, spdlog::level::info, "line");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.Message().find(log.string()), std::string::npos) << s.Message();
}

TEST_F(LogFileTest, RepositoryLineIsWrittenOnceWhenDashLIsThatLog) {
  const std::string repo = dir_.string();
  SetupLogging(false, RepositoryLogName(repo));
  LogToRepository(repo, "forgot revision abc", /*on_stderr=*/false);
  LogToRepository(repo, "restored revision abc", /*on_stderr=*/true);
  const std::string text = Read(RepositoryLogName(repo));
  EXPECT_EQ(Count(text, "info forgot revision abc\n"), 1) << text;
  EXPECT_EQ(Count(text, "info restored revision abc\n"), 1) << text;
}

TEST_F(LogFileTest, RepositoryLineGoesToTheRepositoryAndTheDashLFile) {
  const std::string repo = (dir_ / "repo").string();
  fs::create_directories(repo);
  const fs::path other = dir_ / "other.log";
  SetupLogging(false, other);
  LogToRepository(repo, "purge: freed 1 of 2 chunks", /*on_stderr=*/false);
  EXPECT_EQ(Count(Read(RepositoryLogName(repo)), "purge: freed 1 of 2"), 1);
  EXPECT_EQ(Count(Read(other), "purge: freed 1 of 2"), 1);
  EXPECT_EQ(Mode(RepositoryLogName(repo)), 0600u);
}

TEST_F(LogFileTest, RepositoryLogSymlinkLeavesTheTargetAlone) {
  const std::string repo = dir_.string();
  const fs::path target = dir_ / "elsewhere";
  { std::ofstream(target) << "precious\n"; }
  fs::create_symlink(target, RepositoryLogName(repo));
  SetupLogging(false, "");
  LogToRepository(repo, "forgot revision abc", /*on_stderr=*/false);
  EXPECT_EQ(Read(target), "precious\n");
}

TEST_F(LogFileTest, ReopenAfterRenameWritesANewFile) {
  const fs::path log = dir_ / "daemon.log";
  SetupLogging(false, log);
  ASSERT_OK(UseOnlyDaemonLog(log, spdlog::level::info, false));
  spdlog::info("before the rotation");
  fs::rename(log, dir_ / "daemon.log.1");
  spdlog::info("still the old file");
  ASSERT_OK(ReopenLogFiles());
  spdlog::info("after the rotation");
  const std::string old_text = Read(dir_ / "daemon.log.1");
  const std::string new_text = Read(log);
  EXPECT_EQ(Count(old_text, "before the rotation"), 1) << old_text;
  EXPECT_EQ(Count(old_text, "still the old file"), 1) << old_text;
  EXPECT_EQ(Count(old_text, "after the rotation"), 0) << old_text;
  EXPECT_EQ(Count(new_text, "after the rotation"), 1) << new_text;
  EXPECT_EQ(Count(new_text, "before the rotation"), 0) << new_text;
  EXPECT_EQ(Mode(log), 0600u);
}

TEST_F(LogFileTest, UseOnlyDaemonLogOpensTheChosenFileOnce) {
  const fs::path log = dir_ / "scheduler.log";
  SetupLogging(false, "");
  ASSERT_OK(UseOnlyDaemonLog(log, spdlog::level::info, false));
  spdlog::info("one line");
  spdlog::debug("not at info");
  const std::string text = Read(log);
  EXPECT_EQ(Count(text, "one line"), 1) << text;
  EXPECT_EQ(Count(text, "not at info"), 0) << text;
}

}  // namespace
}  // namespace backy::backup
