// issue 11: a backy 2.4 or 2.5 /etc/backy.conf is read as it is. The
// configs below follow the 2.x documentation and tests (doc/man-backy.rst,
// doc/backy.conf.example, src/backy/tests/test_daemon.py of tags 2.4.3 and
// 2.5.3 of flyingcircusio/backy).
#include <gtest/gtest.h>

#include <algorithm>

#include "backup/scheduler/config.h"
#include "backup/source_factory.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

// doc/backy.conf.example of 2.5.3 (block style, a flyingcircus job); its
// test03 names an undefined schedule "hourly" there, "frequent" here.
const char* k25Example = R"(global:
    base-dir: /my/backydir
    worker-limit: 3
    backup-completed-callback: /path/to/script.sh
schedules:
    default:
        daily:
            interval: 1d
            keep: 7
        weekly:
            interval: 1w
            keep: 4
        monthly:
            interval: 30d
            keep: 3
    frequent:
        hourly:
            interval: 1h
            keep: 24
        daily:
            interval: 1d
            keep: 7
        weekly:
            interval: 1w
            keep: 12
jobs:
    test01:
        schedule: default
        source:
            type: file
            filename: /path/to/vm/image
    test02:
        schedule: default
        source:
            type: ceph-rbd
            pool: rbd
            image: test02
    test03:
        schedule: frequent
        source:
            type: flyingcircus
            consul_acl_token: a211c244-846b-11e5-999b-081196cf15b4
            vm: test03
            pool: test
            image: test03.root
)";

// A 2.4 installation: every global key 2.4's daemon reads, plain seconds,
// hours as the 2.x tests write them.
const char* k24Config = R"(---
global:
    base-dir: /srv/backy
    worker-limit: 2
    status-file: /srv/backy/status
    status-interval: 30
    telnet-addrs: "::1, 127.0.0.1"
    telnet-port: 6023
schedules:
    default:
        daily:
            interval: 24h
            keep: 9
jobs:
    test01:
        source:
            type: file
            filename: /srv/images/test01.source
            cow: false
        schedule: default
    vm1:
        source:
            type: flyingcircus
            pool: rbd.hdd
            image: vm1.root
            vm: vm1
            consul_acl_token:
        schedule: default
)";

bool AnyContains(const std::vector<std::string>& lines,
                 const std::string& what) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(what) != std::string::npos;
  });
}

TEST(LegacyConfigTest, The25ExampleIsReadAsItIs) {
  auto c = ParseDaemonConfig(k25Example, "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->base_dir, "/my/backydir");
  EXPECT_EQ(c->worker_limit, 3);
  EXPECT_EQ(c->callback, "/path/to/script.sh");
  EXPECT_EQ(c->callback_timeout_s, 60);
  ASSERT_EQ(c->jobs.size(), 3u);
  EXPECT_EQ(c->jobs.at("test01").source,
            (std::map<std::string, std::string>{
                {"type", "file"}, {"filename", "/path/to/vm/image"}}));
  EXPECT_EQ(c->jobs.at("test02").schedule.tags.at("weekly").interval_seconds,
            7 * 86400);
  EXPECT_EQ(c->jobs.at("test01").schedule.tags.at("monthly").keep, 3u);
  EXPECT_EQ(c->jobs.at("test03").schedule.tags.at("weekly").keep, 12u);
  // The flyingcircus job's repository gets a plain ceph-rbd source.
  EXPECT_EQ(
      c->jobs.at("test03").source,
      (std::map<std::string, std::string>{
          {"type", "ceph-rbd"}, {"pool", "test"}, {"image", "test03.root"}}));
  EXPECT_OK(ValidateSourceSection(c->jobs.at("test03").source));
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_EQ(c->warnings[0].rfind("/etc/backy.conf:", 0), 0u) << c->warnings[0];
  EXPECT_NE(c->warnings[0].find("jobs.test03: source type 'flyingcircus' is "
                                "backed up as ceph-rbd test/test03.root"),
            std::string::npos)
      << c->warnings[0];
  EXPECT_NE(c->warnings[0].find("Consul"), std::string::npos);
}

TEST(LegacyConfigTest, TheConsulTokenIsNeverKeptNorShown) {
  auto c = ParseDaemonConfig(k25Example, "/etc/backy.conf");
  ASSERT_OK(c.status());
  for (const auto& w : c->warnings) {
    EXPECT_EQ(w.find("a211c244"), std::string::npos) << w;
  }
  for (const auto& [name, job] : c->jobs) {
    EXPECT_EQ(job.source.count("consul_acl_token"), 0u) << name;
    for (const auto& [k, v] : job.source) {
      EXPECT_EQ(v.find("a211c244"), std::string::npos) << name << "." << k;
    }
  }
}

TEST(LegacyConfigTest, A24ConfigWarnsOncePerIgnoredKey) {
  auto c = ParseDaemonConfig(k24Config, "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->status_interval_s, 30);
  EXPECT_EQ(c->status_file, "/srv/backy/status");
  EXPECT_EQ(c->callback, "");
  EXPECT_EQ(c->jobs.at("test01").schedule.tags.at("daily").interval_seconds,
            86400);
  // cow (a 2.x file-source option) and the flyingcircus keys are dropped.
  EXPECT_EQ(c->jobs.at("test01").source,
            (std::map<std::string, std::string>{
                {"type", "file"}, {"filename", "/srv/images/test01.source"}}));
  EXPECT_EQ(
      c->jobs.at("vm1").source,
      (std::map<std::string, std::string>{
          {"type", "ceph-rbd"}, {"pool", "rbd.hdd"}, {"image", "vm1.root"}}));
  const auto& w = c->warnings;
  ASSERT_EQ(w.size(), 4u) << ::testing::PrintToString(w);
  EXPECT_TRUE(AnyContains(w,
                          "/etc/backy.conf:7: global.telnet-addrs is "
                          "ignored: backy 2.x's telnet console is "
                          "replaced by the HTTP API"));
  EXPECT_TRUE(AnyContains(w,
                          "/etc/backy.conf:8: global.telnet-port is "
                          "ignored"));
  EXPECT_TRUE(AnyContains(w, "/etc/backy.conf:19: jobs.test01.source.cow"));
  EXPECT_TRUE(AnyContains(w, "jobs.vm1: source type 'flyingcircus'"));
  EXPECT_TRUE(AnyContains(w, "VM 'vm1'"));
}

TEST(LegacyConfigTest, KeysBackyNeverHadStayErrors) {
  // backy 2.5's own test config has this typo; 2.x never read the key.
  auto c = ParseDaemonConfig("global: {base-dir: /b, telnet_port: 1234}\n",
                             "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().Message().find(
                "/etc/backy.conf:1: unknown key 'telnet_port' in global"),
            std::string::npos)
      << c.status().Message();
  c = ParseDaemonConfig(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n"
      "  a: {schedule: s, source: {type: file, filename: /x}, vm: a}\n",
      "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().Message().find("unknown key 'vm' in jobs.a"),
            std::string::npos)
      << c.status().Message();
  // A flyingcircus source still needs its image.
  c = ParseDaemonConfig(
      "schedules: {s: {h: {interval: 1h, keep: 1}}}\njobs:\n"
      "  a: {schedule: s, source: {type: flyingcircus, vm: a, pool: rbd}}\n",
      "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().Message().find(
                "a 'flyingcircus' source needs 'pool' and 'image'"),
            std::string::npos)
      << c.status().Message();
}

TEST(LegacyConfigTest, CallbackPathAndTimeout) {
  // backy 2.x ran the callback in base-dir: a relative path is relative
  // to it; a bare name is looked up in PATH when it runs.
  auto c = ParseDaemonConfig(
      "global: {base-dir: /b, backup-completed-callback: hooks/done.sh, "
      "callback-timeout: 2m}\n",
      "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->callback, "/b/hooks/done.sh");
  EXPECT_EQ(c->callback_timeout_s, 120);
  c = ParseDaemonConfig("global: {backup-completed-callback: notify-backup}\n",
                        "/etc/backy.conf");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->callback, "notify-backup");
  c = ParseDaemonConfig("global: {callback-timeout: 2h}\n", "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().Message().find("global.callback-timeout must be at "
                                      "least 1s and at most 1h"),
            std::string::npos)
      << c.status().Message();
  c = ParseDaemonConfig("global: {backup-completed-callback: [a, b]}\n",
                        "/etc/backy.conf");
  ASSERT_FALSE(c.ok());
}

TEST(LegacyConfigTest, AFlyingCircusRepositoryConfigIsBackedUpAsCephRbd) {
  // A repository whose config still says flyingcircus (as backy 2.x wrote
  // it) is valid; it needs the image like ceph-rbd.
  EXPECT_OK(ValidateSourceSection({{"type", "flyingcircus"},
                                   {"pool", "rbd"},
                                   {"image", "vm.root"},
                                   {"vm", "vm"}}));
  store::RepositoryConfig rc;
  rc.source = {{"type", "flyingcircus"}, {"vm", "vm"}, {"pool", "rbd"}};
  auto source = MakeSource(rc, "repo/config");
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().Message(),
            "a 'flyingcircus' source needs 'pool' and 'image' (repo/config)");
}

}  // namespace
}  // namespace backy::backup::scheduler
