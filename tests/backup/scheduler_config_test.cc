#include <gtest/gtest.h>

#include "backup/scheduler/config.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

const char* kGood = R"(global: {base-dir: /srv/backy, worker-limit: 2, status-file: /srv/backy/status, status-interval: 30}
api: {listen: "127.0.0.1:6023", token: secret}
schedules:
  default: {hourly: {interval: 1h, keep: 24}, daily: {interval: 1d, keep: 14}, weekly: {interval: 1w, keep: 8}}
  fast:
    often: {interval: 5s, keep: 3}
    min-keep: 2
jobs:
  vm1: {schedule: default, source: {type: ceph-rbd, pool: rbd, image: vm1}}
  vm2: {schedule: fast, source: {type: file, filename: /images/vm2.raw}}
)";

TEST(DaemonConfigTest, ParsesTheIssueExample) {
  auto c = ParseDaemonConfig(kGood, "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->base_dir, "/srv/backy");
  EXPECT_EQ(c->worker_limit, 2);
  EXPECT_EQ(c->status_file, "/srv/backy/status");
  EXPECT_EQ(c->status_interval_s, 30);
  EXPECT_EQ(c->api.listen, "127.0.0.1:6023");
  EXPECT_EQ(c->api.token, "secret");
  ASSERT_EQ(c->jobs.size(), 2u);
  const auto& vm1 = c->jobs.at("vm1");
  EXPECT_EQ(vm1.schedule_name, "default");
  EXPECT_EQ(vm1.schedule.tags.at("hourly").interval_seconds, 3600);
  EXPECT_EQ(vm1.schedule.tags.at("weekly").keep, 8u);
  EXPECT_EQ(vm1.schedule.min_keep, 1u);
  EXPECT_EQ(vm1.source.at("pool"), "rbd");
  const auto& vm2 = c->jobs.at("vm2");
  EXPECT_EQ(vm2.schedule.tags.at("often").interval_seconds, 5);
  EXPECT_EQ(vm2.schedule.min_keep, 2u);
  EXPECT_EQ(vm2.source.at("filename"), "/images/vm2.raw");
}

TEST(DaemonConfigTest, DefaultsDependOnBaseDir) {
  auto c = ParseDaemonConfig("global: {base-dir: /b/}\n", "x.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->base_dir, "/b");
  EXPECT_EQ(c->worker_limit, 1);
  EXPECT_EQ(c->status_file, "/b/status");
  EXPECT_EQ(c->status_interval_s, 30);
  EXPECT_EQ(c->log_file, "/b/scheduler.log");
  EXPECT_EQ(c->api.listen, "unix:/b/api.sock");
  EXPECT_EQ(c->backoff_base_s, 120);
  EXPECT_EQ(c->backoff_max_s, 6 * 3600);
  EXPECT_TRUE(c->jobs.empty());
}

TEST(DaemonConfigTest, RelativeFilenameIsRelativeToTheConfigFile) {
  auto c = ParseDaemonConfig(
      "schedules: {s: {t: {interval: 1h, keep: 1}}}\n"
      "jobs: {a: {schedule: s, source: {type: file, filename: img/a.raw}}}\n",
      "/etc/backy/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->jobs.at("a").source.at("filename"), "/etc/backy/img/a.raw");
}

// Each error names the file and the 1-based line of the offending node.
void ExpectError(const std::string& text, const std::string& where,
                 const std::string& what) {
  auto c = ParseDaemonConfig(text, "/etc/backy.conf");
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_TRUE(c.status().IsInvalidArgument());
  const std::string msg = c.status().Message();
  EXPECT_EQ(msg.rfind("/etc/backy.conf:" + where + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
}

TEST(DaemonConfigTest, ErrorsNameFileAndLine) {
  ExpectError("global:\n  base-dir: /x\n  wroker-limit: 2\n", "3",
              "unknown key 'wroker-limit'");
  ExpectError("global:\n  worker-limit: zero\n", "2", "must be a number");
  ExpectError("global:\n  worker-limit: 0\n", "2", "at least 1");
  ExpectError("schedules:\n  s:\n    h: {interval: 1x, keep: 3}\n", "3",
              "bad duration");
  ExpectError("schedules:\n  s:\n    h: {keep: 3}\n", "3",
              "needs 'interval' and 'keep'");
  ExpectError(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n  a:\n"
      "    schedule: nope\n    source: {type: file, filename: /x}\n",
      "4", "unknown schedule 'nope'");
  ExpectError(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n  a:\n"
      "    schedule: s\n    source: {type: nfs, filename: /x}\n",
      "5", "must be file or ceph-rbd");
  ExpectError(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n"
      "  a:\n    schedule: s\n    source: {type: ceph-rbd, pool: rbd}\n",
      "5", "needs 'pool' and 'image'");
  ExpectError(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n"
      "  ../evil: {schedule: s, source: {type: file, filename: /x}}\n",
      "3", "bad job name");
  ExpectError("api: {listen: nowhere}\n", "1", "HOST:PORT or unix:PATH");
  ExpectError("schedules:\n  s:\n    manual:x: {interval: 1h, keep: 1}\n", "3",
              "bad tag name");
}

TEST(DaemonConfigTest, YamlSyntaxErrorNamesTheLine) {
  auto c = ParseDaemonConfig("global:\n  base-dir: /x\n  bad: [unclosed\n",
                             "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().Message().rfind("/etc/backy.conf:", 0), 0u)
      << c.status().Message();
}

TEST(DaemonConfigTest, MissingFileIsAnError) {
  auto c = LoadDaemonConfig("/nonexistent/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().Message().find("/nonexistent/backy.conf"),
            std::string::npos);
}

}  // namespace
}  // namespace backy::backup::scheduler
