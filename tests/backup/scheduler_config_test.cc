#include <gtest/gtest.h>

#include "backup/scheduler/config.h"
#include "backup/source_factory.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

const char* kGood =
    R"(global: {base-dir: /srv/backy, worker-limit: 2, status-file: /srv/backy/status, status-interval: 30}
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

TEST(DaemonConfigTest, RadosBaseDirKeepsLocalFilesInTheStateDir) {
  const std::string text =
      "global: {base-dir: \"rados:backups/ns\", ceph-conf: /etc/ceph/b.conf, "
      "client-id: backup}\n"
      "schedules: {s: {daily: {interval: 1d, keep: 3}}}\n"
      "jobs: {vm1: {schedule: s, source: {type: file, filename: /i.raw}}}\n";
  auto c = ParseDaemonConfig(text, "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_TRUE(c->RadosBase());
  EXPECT_EQ(c->JobDir("vm1"), "rados:backups/ns/vm1");
  EXPECT_EQ(c->state_dir, kDefaultStateDir);
  EXPECT_EQ(c->JobStateDir("vm1"), std::string(kDefaultStateDir) + "/vm1");
  EXPECT_EQ(c->status_file, std::string(kDefaultStateDir) + "/status");
  EXPECT_EQ(c->LockFile(), std::string(kDefaultStateDir) + "/scheduler.lock");
  EXPECT_EQ(c->rados.conf_path, "/etc/ceph/b.conf");
  EXPECT_EQ(c->GlobalArgs(),
            (std::vector<std::string>{"--ceph-conf", "/etc/ceph/b.conf",
                                      "--client-id", "backup"}));
  auto o = ParseDaemonConfig(text, "/etc/backy.conf", "/tmp/host-b");
  ASSERT_OK(o.status());
  EXPECT_EQ(o->status_file, "/tmp/host-b/status");
  EXPECT_EQ(o->JobStateDir("vm1"), "/tmp/host-b/vm1");
  // state-dir is for a rados: base-dir only; a bad rados: base is refused.
  EXPECT_FALSE(ParseDaemonConfig("global: {base-dir: /srv, state-dir: /x}\n",
                                 "/etc/backy.conf")
                   .ok());
  EXPECT_FALSE(
      ParseDaemonConfig("global: {base-dir: \"rados:\"}\n", "/etc/backy.conf")
          .ok());
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
  // The same rule as `backy backup TAGS` (store::ValidateTag): any
  // whitespace, not only ' ' and '\t', so a scheduled tag can be backed up.
  ExpectError("schedules:\n  s:\n    \"a\\vb\": {interval: 1h, keep: 1}\n", "3",
              "bad tag name");
}

// issue 9: every number is range-checked; nothing wraps or truncates.
TEST(DaemonConfigTest, NumbersOutOfRangeAreErrors) {
  const std::string sched = "schedules:\n  s:\n";
  // keep: 2^32 once became keep 0 (expire removed almost everything).
  ExpectError(sched + "    h: {interval: 1h, keep: 4294967296}\n", "3",
              "schedules.s.h.keep must be at least 0 and at most 1000000, "
              "got '4294967296'");
  ExpectError(sched + "    h: {interval: 1h, keep: -1}\n", "3",
              "at most 1000000");
  ExpectError(sched + "    h: {interval: 1h, keep: 99999999999999999999}\n",
              "3", "at most 1000000");
  ExpectError(sched + "    h: {interval: 1h, keep: 1.5}\n", "3",
              "must be a number from 0 to 1000000, got '1.5'");
  ExpectError(sched + "    h: {interval: 1h, keep: 0x10}\n", "3",
              "must be a number");
  ExpectError(sched + "    h: {interval: 1h, keep: [1]}\n", "3",
              "must be a number");
  ExpectError(
      sched + "    h: {interval: 1h, keep: 1}\n    min-keep: 4294967296\n", "4",
      "schedules.s.min-keep must be at least 0 and at most 1000000");
  // worker-limit: 2^32 once became 0 (nothing ever ran).
  ExpectError("global:\n  worker-limit: 4294967296\n", "2",
              "global.worker-limit must be at least 1 and at most 256");
  ExpectError("global:\n  worker-limit: 257\n", "2", "at most 256");
  // interval: 2^58 s wrapped to 0 us (SIGFPE on every start).
  ExpectError(sched + "    h: {interval: 288230376151711744, keep: 1}\n", "3",
              "schedules.s.h.interval must be at least 1s and at most 3650d, "
              "got '288230376151711744'");
  ExpectError(sched + "    h: {interval: 288230376151711744w, keep: 1}\n", "3",
              "at most 3650d");
  ExpectError(sched + "    h: {interval: 99999999999999999999999s, keep: 1}\n",
              "3", "at most 3650d");
  ExpectError(sched + "    h: {interval: 3651d, keep: 1}\n", "3",
              "at most 3650d");
  ExpectError(sched + "    h: {interval: 0, keep: 1}\n", "3", "at least 1s");
  ExpectError(sched + "    h: {interval: -1h, keep: 1}\n", "3", "at least 1s");
  ExpectError(sched + "    h: {interval: 1.5h, keep: 1}\n", "3",
              "bad duration");
  ExpectError("global:\n  status-interval: 2d\n", "2",
              "global.status-interval must be at least 1s and at most 1d");
  ExpectError("global:\n  status-interval: 0\n", "2", "at least 1s");
  ExpectError("global:\n  backoff-base: 5w\n", "2",
              "global.backoff-base must be at least 1s and at most 4w");
  ExpectError("global:\n  backoff-max: 9223372036854775807\n", "2",
              "global.backoff-max must be at least 1s and at most 4w");
}

TEST(DaemonConfigTest, NumbersAtTheLimitsAreAccepted) {
  auto c = ParseDaemonConfig(
      "global: {worker-limit: 256, status-interval: 1d, backoff-base: 1s, "
      "backoff-max: 4w}\n"
      "schedules:\n  s:\n    a: {interval: 3650d, keep: 1000000}\n"
      "    b: {interval: 1, keep: 0}\n    min-keep: 1000000\n",
      "x.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->worker_limit, 256);
  EXPECT_EQ(c->status_interval_s, 86400);
  EXPECT_EQ(c->backoff_base_s, 1);
  EXPECT_EQ(c->backoff_max_s, 4 * 7 * 86400);
  const auto& s = c->schedules.at("s");
  EXPECT_EQ(s.tags.at("a").interval_seconds, 3650 * 86400);
  EXPECT_EQ(s.tags.at("a").keep, 1000000u);
  EXPECT_EQ(s.tags.at("b").interval_seconds, 1);
  EXPECT_EQ(s.min_keep, 1000000u);
}

std::string JobConfig(const std::string& name, const std::string& global = "") {
  return "global: {base-dir: /srv/backy" + global +
         "}\nschedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n  " + name +
         ": {schedule: s, source: {type: file, filename: /x}}\n";
}

// issue 9: a job named like one of the scheduler's own files, or that is
// not one safe path component, is refused at load.
TEST(DaemonConfigTest, JobNamesThatCollideOrAreUnsafeAreErrors) {
  for (const char* name : {"status", "scheduler.lock", "scheduler.log",
                           "api.sock", "backy.prom"}) {
    ExpectError(JobConfig(name), "4",
                "job name '" + std::string(name) + "' is reserved");
  }
  for (const char* name : {"'.'", "'..'", "a/b", "/abs", "'-rf'", "'.hidden'",
                           "\"a\\0b\"", "\"a\\nb\"", "\"a\\tb\"", "'a b'"}) {
    ExpectError(JobConfig(name), "4", "bad job name");
  }
  ExpectError(JobConfig(std::string(256, 'a')), "4", "longer than 255 bytes");
  auto ok = ParseDaemonConfig(JobConfig(std::string(255, 'a')), "x.conf");
  EXPECT_OK(ok.status());
  // Files set elsewhere in the config collide too.
  ExpectError(JobConfig("st", ", status-file: /srv/backy/st"), "4",
              "job 'st' collides with the status file");
  ExpectError(JobConfig("vm1", ", status-file: /srv/backy/vm1/status"), "4",
              "job 'vm1' collides with the status file");
  ExpectError(JobConfig("log", ", log-file: /srv/backy//log"), "4",
              "job 'log' collides with the log");
  ExpectError("api: {listen: 'unix:/srv/backy/sock'}\n" + JobConfig("sock"),
              "5", "job 'sock' collides with the API socket");
  // backy.prom goes next to the status file, wherever that is.
  ExpectError(JobConfig("m", ", status-file: /srv/backy/m/st"), "4",
              "job 'm' collides with the status file");
  ExpectError(JobConfig("m", ", status-file: /srv/backy/m/backy.prom"), "4",
              "job 'm' collides with the status file");
  // Names that merely resemble them are fine.
  for (const char* name : {"status2", "vm.status", "a-b_c.d", "a..b"}) {
    auto c = ParseDaemonConfig(JobConfig(name), "x.conf");
    EXPECT_TRUE(c.ok()) << name << ": " << c.status().Message();
  }
  EXPECT_OK(
      ParseDaemonConfig(JobConfig("st", ", status-file: /var/lib/st"), "x.conf")
          .status());
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

// The one source validator: the scheduler's config and MakeSource (the
// repository's config) say the same thing about the same fault.
TEST(SourceSectionTest, OneMessagePerFaultForBothConfigs) {
  EXPECT_OK(ValidateSourceSection({{"type", "file"}, {"filename", "/x"}}));
  EXPECT_OK(ValidateSourceSection(
      {{"type", "ceph-rbd"}, {"pool", "rbd"}, {"image", "vm"}}));
  Status s = ValidateSourceSection({{"type", "file"}});
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.Message(), "a 'file' source needs 'filename'");
  s = ValidateSourceSection({{"type", "ceph-rbd"}, {"image", "vm"}}, "CONF");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.Message(), "a 'ceph-rbd' source needs 'pool' and 'image' (CONF)");
  s = ValidateSourceSection({{"type", "nfs"}});
  EXPECT_TRUE(s.IsNotSupported());
  EXPECT_EQ(s.Message(), "source 'type' must be file or ceph-rbd, got 'nfs'");
  EXPECT_EQ(ValidateSourceSection({}).Message(),
            "source 'type' must be file or ceph-rbd");

  store::RepositoryConfig rc;
  rc.source = {{"type", "file"}};
  auto source = MakeSource(rc, "repo/config");
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().Message(),
            "a 'file' source needs 'filename' (repo/config)");
  auto daemon = ParseDaemonConfig(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n"
      "  a: {schedule: s, source: {type: file}}\n",
      "/etc/backy.conf");
  ASSERT_FALSE(daemon.ok());
  EXPECT_NE(daemon.status().Message().find(
                "jobs.a: a 'file' source needs 'filename'"),
            std::string::npos)
      << daemon.status().Message();
}

TEST(DaemonConfigTest, MetricsPublicIsAStrictBoolean) {
  auto c = ParseDaemonConfig("api: {token: t}\n", "x.conf");
  ASSERT_OK(c.status());
  EXPECT_FALSE(c->api.metrics_public);
  c = ParseDaemonConfig("api: {token: t, metrics-public: true}\n", "x.conf");
  ASSERT_OK(c.status());
  EXPECT_TRUE(c->api.metrics_public);
  c = ParseDaemonConfig("api: {metrics-public: false}\n", "x.conf");
  ASSERT_OK(c.status());
  EXPECT_FALSE(c->api.metrics_public);
  for (const char* bad : {"yes", "1", "on", "True", "''", "[true]"}) {
    ExpectError(std::string("api:\n  metrics-public: ") + bad + "\n", "2",
                "api.metrics-public must be true or false");
  }
  ExpectError("api: {metrics-publik: true}\n", "1",
              "unknown key 'metrics-publik' in api");
}

// issue 15: copy-to and copy-schedule.
const std::string kCopySchedules =
    "schedules:\n"
    "  s: {daily: {interval: 1d, keep: 7}, weekly: {interval: 1w, keep: 4}}\n";

TEST(DaemonConfigTest, GlobalCopyToGivesEachJobItsTargetAndOptOut) {
  auto c = ParseDaemonConfig(
      "global: {base-dir: /srv/backy, copy-to: /mnt/offsite/, copy-schedule: "
      "{daily: {keep: 30}, min-keep: 3}}\n" +
          kCopySchedules +
          "jobs:\n"
          "  vm1: {schedule: s, source: {type: file, filename: /i/1}}\n"
          "  vm2: {schedule: s, source: {type: file, filename: /i/2}, "
          "copy-to: false}\n"
          "  vm3: {schedule: s, source: {type: file, filename: /i/3}, "
          "copy-to: none}\n"
          "  vm4: {schedule: s, source: {type: file, filename: /i/4}, "
          "copy-to: /elsewhere/x/../vm4, copy-schedule: {weekly: {keep: "
          "52}}}\n",
      "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->copy_to, "/mnt/offsite");
  const auto& vm1 = c->jobs.at("vm1");
  EXPECT_EQ(vm1.copy_to, "/mnt/offsite/vm1");
  // Listed tags take the copy's keep, the others keep the job's.
  EXPECT_EQ(vm1.copy_schedule.tags.at("daily").keep, 30u);
  EXPECT_EQ(vm1.copy_schedule.tags.at("daily").interval_seconds, 86400);
  EXPECT_EQ(vm1.copy_schedule.tags.at("weekly").keep, 4u);
  EXPECT_EQ(vm1.copy_schedule.min_keep, 3u);
  EXPECT_EQ(vm1.schedule.tags.at("daily").keep, 7u);  // the source's own
  EXPECT_EQ(c->jobs.at("vm2").copy_to, "");
  EXPECT_EQ(c->jobs.at("vm3").copy_to, "");
  EXPECT_TRUE(c->jobs.at("vm2").copy_schedule.empty());
  // A job's own copy-schedule replaces the global one.
  const auto& vm4 = c->jobs.at("vm4");
  EXPECT_EQ(vm4.copy_to, "/elsewhere/vm4");
  EXPECT_EQ(vm4.copy_schedule.tags.at("weekly").keep, 52u);
  EXPECT_EQ(vm4.copy_schedule.tags.at("daily").keep, 7u);
  EXPECT_EQ(vm4.copy_schedule.min_keep, 1u);
}

TEST(DaemonConfigTest, NoCopyToMeansNoCopy) {
  auto c = ParseDaemonConfig(
      kCopySchedules +
          "jobs: {a: {schedule: s, source: {type: file, filename: /i/a}}}\n",
      "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->copy_to, "");
  EXPECT_EQ(c->jobs.at("a").copy_to, "");
  EXPECT_TRUE(c->jobs.at("a").copy_schedule.empty());
}

TEST(DaemonConfigTest, RadosCopyToBaseNamesEachJob) {
  auto c = ParseDaemonConfig(
      "global: {copy-to: \"rados:backups/offsite\"}\n" + kCopySchedules +
          "jobs:\n"
          "  a: {schedule: s, source: {type: file, filename: /i/a}}\n"
          "  b: {schedule: s, source: {type: file, filename: /i/b}, copy-to: "
          "\"rados:other/b-copy\"}\n",
      "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->jobs.at("a").copy_to, "rados:backups/offsite/a");
  EXPECT_EQ(c->jobs.at("b").copy_to, "rados:other/b-copy");
  EXPECT_EQ(CopyTargetUnder("rados:p", "vm"), "rados:p/vm");
}

TEST(DaemonConfigTest, BadCopyValuesAreErrors) {
  const std::string job =
      "jobs:\n  a:\n    schedule: s\n    source: {type: file, filename: /i}\n";
  ExpectError("global:\n  copy-to: offsite\n", "2",
              "global.copy-to must be an absolute directory or "
              "rados:POOL[/NAMESPACE]");
  ExpectError("global:\n  copy-to: [/x]\n", "2", "global.copy-to must be");
  ExpectError("global:\n  copy-to: \"rados:p/ns/name\"\n", "2",
              "global.copy-to must be an absolute directory or "
              "rados:POOL[/NAMESPACE], got 'rados:p/ns/name'");
  ExpectError(kCopySchedules + job + "    copy-to: ../x\n", "7",
              "jobs.a.copy-to must be an absolute directory or "
              "rados:POOL[/NAMESPACE]/NAME (or false/none), got '../x'");
  ExpectError(kCopySchedules + job + "    copy-to: true\n", "7",
              "jobs.a.copy-to must be");
  ExpectError(kCopySchedules + job + "    copy-to: \"rados:pool\"\n", "7",
              "jobs.a.copy-to must be");
  ExpectError(kCopySchedules + job + "    copy-to: \"\"\n", "7",
              "jobs.a.copy-to must be");
  ExpectError(kCopySchedules + job + "    copy-schedule: {daily: {keep: 1}}\n",
              "7", "copy-schedule without a copy-to");
  const std::string copying = job + "    copy-to: /mnt/a\n";
  ExpectError(kCopySchedules + copying +
                  "    copy-schedule:\n      hourly: {keep: 1}\n",
              "9", "tag 'hourly' is not in schedule 's'");
  ExpectError(kCopySchedules + copying +
                  "    copy-schedule:\n      daily: {interval: 1d, keep: 1}\n",
              "9", "only 'keep'");
  ExpectError(kCopySchedules + copying +
                  "    copy-schedule:\n      daily: {keep: -1}\n",
              "9", "jobs.a.copy-schedule.daily.keep must be at least 0");
  ExpectError(kCopySchedules + copying +
                  "    copy-schedule:\n      daily: {keep: 1, kep: 2}\n",
              "9", "unknown key 'kep'");
  ExpectError(kCopySchedules + copying + "    copy-schedule:\n      daily: 3\n",
              "9", "must be {keep: N}");
  ExpectError("global:\n  copy-schedule: {\"manual:x\": {keep: 1}}\n", "2",
              "bad tag name 'manual:x'");
  ExpectError("global:\n  copy-schedule: {min-keep: many}\n", "2",
              "global.copy-schedule.min-keep must be a number");
}

// A copy into the job's own repository, into or around any job's, onto
// another job's target or the scheduler's files would eat what it copies.
TEST(DaemonConfigTest, HostileCopyTargetsAreRefused) {
  auto config = [](const std::string& a_copy, const std::string& global = "") {
    return "global: {base-dir: /srv/backy" + global + "}\n" + kCopySchedules +
           "jobs:\n"
           "  a:\n"
           "    schedule: s\n"
           "    source: {type: file, filename: /i/a}\n" +
           a_copy +
           "  b: {schedule: s, source: {type: file, filename: /i/b}, copy-to: "
           "/mnt/b}\n";
  };
  ExpectError(config("    copy-to: /srv/backy/a\n"), "8",
              "copy-to of job 'a' (/srv/backy/a) is its own repository");
  ExpectError(config("    copy-to: /srv/backy/a/./\n"), "8",
              "is its own repository");
  ExpectError(config("    copy-to: /srv/backy/a/copy\n"), "8",
              "is inside its own repository");
  ExpectError(config("    copy-to: /srv/backy/x/../a/c\n"), "8",
              "is inside its own repository");
  ExpectError(config("    copy-to: /srv\n"), "8", "holds its own repository");
  ExpectError(config("    copy-to: /srv/backy/b\n"), "8",
              "is the repository of job 'b'");
  ExpectError(config("    copy-to: /mnt/b\n"), "8",
              "overlaps the copy-to of job 'b' (/mnt/b)");
  ExpectError(config("    copy-to: /mnt/b/a\n"), "8", "overlaps the copy-to");
  ExpectError(config("    copy-to: /srv/backy/status\n"), "8",
              "collides with the status file");
  // global.copy-to = base-dir: every job's target is its own repository.
  ExpectError(config("", ", copy-to: /srv/backy"), "1",
              "copy-to of job 'a' (/srv/backy/a) is its own repository");
  ExpectError(config("    copy-to: \"rados:p/x\"\n") +
                  "  c: {schedule: s, source: {type: file, filename: /i/c}, "
                  "copy-to: \"rados:p/x\"}\n",
              "10", "is the target of job 'a' too");
  // A target in base-dir that is no job's repository is fine.
  auto ok = ParseDaemonConfig(config("    copy-to: /srv/backy/copies/a\n"),
                              "/etc/backy.conf");
  EXPECT_OK(ok.status());
}

}  // namespace
}  // namespace backy::backup::scheduler
