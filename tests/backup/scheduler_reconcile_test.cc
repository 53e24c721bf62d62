// issue 11: reconcile leaves a job's backy 2.x repository exactly as it is
// (a current config would make it look upgraded); the run upgrades it.
// Runs on copies of the genuine 2.x repositories in tests/data/legacy-backy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "backup/scheduler/config.h"
#include "backup/scheduler/reconcile.h"
#include "store/filename.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

namespace fs = std::filesystem;

// Every file under `dir` with its content.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) {
      files[fs::relative(e.path(), dir).string()] = "(not a file)";
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    files[fs::relative(e.path(), dir).string()] = ss.str();
  }
  return files;
}

class ReconcileLegacyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("backy-reconcile-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_);
    const fs::path fixtures =
        fs::path(BACKY_SOURCE_DIR) / "tests" / "data" / "legacy-backy";
    for (const char* v : {"v243", "v253"}) {
      fs::copy(fixtures / v, base_ / v,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
    auto c = ParseDaemonConfig(
        "global: {base-dir: " + base_.string() +
            "}\n"
            "schedules: {s: {often: {interval: 1h, keep: 5}}}\n"
            "jobs:\n"
            "  v243: {schedule: s, source: {type: file, filename: /x.raw}}\n"
            "  v253: {schedule: s, source: {type: file, filename: /y.raw}}\n"
            "  new: {schedule: s, source: {type: file, filename: /z.raw}}\n",
        "/etc/backy.conf");
    ASSERT_OK(c.status());
    config_ = *c;
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path base_;
  DaemonConfig config_;
};

TEST_F(ReconcileLegacyTest, A2xRepositoryNeedsAnUpgradeAndStaysAsItIs) {
  for (const char* v : {"v243", "v253"}) {
    const std::string dir = config_.JobDir(v);
    // As an interrupted `backy upgrade` leaves it: our tmp/ is there, so a
    // config could be written.
    fs::create_directories(store::TmpDirName(dir));
    EXPECT_TRUE(NeedsUpgrade(dir)) << v;
    const auto before = Snapshot(dir);
    EnsureRepository(config_, v, config_.jobs.at(v));
    Planner planner;
    planner.Configure(config_);
    LoadHistory(config_, v, &planner);
    EXPECT_EQ(Snapshot(dir), before) << v << ": reconcile changed the 2.x "
                                     << "repository";
    EXPECT_TRUE(NeedsUpgrade(dir)) << v;
  }
}

TEST_F(ReconcileLegacyTest, ACurrentOrMissingRepositoryNeedsNone) {
  EXPECT_FALSE(NeedsUpgrade(config_.JobDir("new")));  // missing
  EnsureRepository(config_, "new", config_.jobs.at("new"));
  ASSERT_TRUE(fs::exists(store::ConfigFileName(config_.JobDir("new"))));
  EXPECT_FALSE(NeedsUpgrade(config_.JobDir("new")));
  // An upgrade interrupted in its clean-up leaves 2.x's .backup (removed
  // last): the run upgrades again.
  std::ofstream(store::LegacyBackupLockFileName(config_.JobDir("new")));
  EXPECT_TRUE(NeedsUpgrade(config_.JobDir("new")));
}

// The figures of the status and the metrics come with the history; the
// disk walk is repeated only when asked (after a run), not on a reload.
TEST_F(ReconcileLegacyTest, LoadHistoryReadsTheRepositoryFigures) {
  Planner planner;
  planner.Configure(config_);
  LoadHistory(config_, "v253", &planner, /*measure_disk=*/false);
  const RepositoryFigures f = planner.jobs().at("v253").figures;
  EXPECT_EQ(f.revisions, 3);
  EXPECT_EQ(f.newest_bytes_written, 23592960u);
  EXPECT_TRUE(f.disk_measured);  // the first time even so
  EXPECT_GT(f.disk_bytes, 23592960u / 4);
  {
    std::ofstream big(fs::path(config_.JobDir("v253")) / "filler");
    big << std::string(1 << 20, 'x');
  }
  LoadHistory(config_, "v253", &planner, /*measure_disk=*/false);
  EXPECT_EQ(planner.jobs().at("v253").figures.disk_bytes, f.disk_bytes);
  LoadHistory(config_, "v253", &planner);
  EXPECT_GE(planner.jobs().at("v253").figures.disk_bytes,
            f.disk_bytes + (1 << 20));
  // No repository: nothing measured, nothing fails.
  LoadHistory(config_, "new", &planner);
  EXPECT_EQ(planner.jobs().at("new").figures.revisions, 0);
  EXPECT_FALSE(planner.jobs().at("new").figures.disk_measured);
}

// issue 15: the copy sends what is new since the target's newest revision,
// not what the target's own schedule expired.
store::Revision Rev(const std::string& id, int64_t t) {
  store::Revision r;
  r.id = id;
  r.timestamp_us = t;
  return r;
}

TEST(CopyTargetTest, NewRevisionsAreThoseNotOlderThanTheTargetsNewest) {
  store::Schedule sched;
  sched.tags["daily"] = {86400, 3};
  sched.tags["hourly"] = {3600, 0};  // none in the copy
  auto rev = [](const std::string& id, int64_t t,
                std::set<std::string> tags = {"daily"}) {
    store::Revision r = Rev(id, t);
    r.tags = std::move(tags);
    return r;
  };
  const std::vector<store::Revision> source = {rev("a", 1), rev("b", 2),
                                               rev("c", 3), rev("d", 4)};
  EXPECT_EQ(NewRevisionsFor(source, {}, sched),
            (std::vector<std::string>{"a", "b", "c", "d"}));
  // b was expired in the target: not sent again.
  EXPECT_EQ(NewRevisionsFor(source, {Rev("a", 1), Rev("c", 3)}, sched),
            (std::vector<std::string>{"d"}));
  EXPECT_EQ(NewRevisionsFor(source, {Rev("d", 4)}, sched),
            (std::vector<std::string>{}));
  // Same timestamp as the target's newest, another id: sent.
  EXPECT_EQ(NewRevisionsFor({rev("x", 5), rev("y", 5)}, {Rev("x", 5)}, sched),
            (std::vector<std::string>{"y"}));
  // What the target's expire would remove at once is not sent: only tags
  // kept 0 or unknown there; a manual: tag or one kept tag is enough to go.
  EXPECT_EQ(NewRevisionsFor({rev("h", 1, {"hourly"}), rev("u", 2, {"unknown"}),
                             rev("m", 3, {"hourly", "manual:x"}),
                             rev("hd", 4, {"hourly", "daily"})},
                            {}, sched),
            (std::vector<std::string>{"m", "hd"}));
  // Without a schedule nothing expires: everything new goes.
  EXPECT_EQ(NewRevisionsFor({rev("h", 1, {"hourly"})}, {}, store::Schedule{}),
            (std::vector<std::string>{"h"}));
}

TEST(CopyTargetTest, PrepareCreatesTheTargetWithItsScheduleAndUpdatesIt) {
  char tmpl[] = "/tmp/copy_target_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  store::RepositoryConfig rc;
  rc.source = {{"type", "file"}, {"filename", "/i/a"}};
  rc.schedule.tags["daily"] = {86400, 7};
  const std::string source = (dir / "a").string();
  ASSERT_OK(store::Repository::Init(source, rc));
  store::Schedule target_schedule = rc.schedule;
  target_schedule.tags["daily"].keep = 30;
  // Its parent is missing too.
  const std::string target = (dir / "offsite" / "a").string();
  auto ids = PrepareCopyTarget(source, target, target_schedule);
  ASSERT_OK(ids.status());
  EXPECT_TRUE(ids->empty());  // the source has no revision yet
  auto repo = store::Repository::Open(target);
  ASSERT_OK(repo.status());
  EXPECT_EQ((*repo)->config().schedule, target_schedule);
  EXPECT_EQ((*repo)->config().source, rc.source);
  // A changed copy-schedule reaches the existing target.
  target_schedule.tags["daily"].keep = 3;
  ASSERT_OK(PrepareCopyTarget(source, target, target_schedule).status());
  repo = store::Repository::Open(target);
  ASSERT_OK(repo.status());
  EXPECT_EQ((*repo)->config().schedule.tags.at("daily").keep, 3u);
  // A missing source is an error naming it.
  auto missing =
      PrepareCopyTarget((dir / "none").string(), target, target_schedule);
  EXPECT_FALSE(missing.ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace backy::backup::scheduler
