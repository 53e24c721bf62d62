#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backup/scheduler/metrics.h"
#include "backup/scheduler/plan.h"
#include "backup/scheduler/status.h"
#include "backup/scheduler/status_json.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

constexpr int64_t S = kMicros;
constexpr int64_t kT0 = 1767571200LL * S;  // 2026-01-05 00:00:00 UTC

StatusDoc TwoJobs() {
  StatusDoc doc;
  doc.running = 1;
  doc.queued = 2;
  JobStatus& a = doc.jobs["a"];
  a.last_result = "ok";
  a.last_duration_s = 12.5;
  a.sla = "ok";
  a.failures_total = 3;
  a.revisions = 7;
  a.newest_bytes_read = 1048576;
  a.newest_bytes_written = 4096;
  a.repository_bytes = 123456789;
  a.newest_revision_s = 1767571200;
  JobStatus& b = doc.jobs["b\"x"];  // a label value that needs escaping
  b.last_result = "none";
  b.sla = "late";
  return doc;
}

// The lines of `text` that start with `prefix`, sorted (the serializer
// writes a family's samples in no particular order).
std::vector<std::string> Lines(const std::string& text,
                               const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(MetricsTextTest, EveryFigurePerJobAndTheDaemonTotals) {
  const std::string t = MetricsText(TwoJobs());
  using V = std::vector<std::string>;
  EXPECT_EQ(Lines(t, "backy_jobs_running"), V{"backy_jobs_running 1"});
  EXPECT_EQ(Lines(t, "backy_jobs_queued"), V{"backy_jobs_queued 2"});
  EXPECT_EQ(Lines(t, "backy_last_success_timestamp_seconds{"),
            V{"backy_last_success_timestamp_seconds{job=\"a\"} 1767571200"});
  EXPECT_EQ(Lines(t, "backy_last_duration_seconds{"),
            V{"backy_last_duration_seconds{job=\"a\"} 12.5"});
  EXPECT_EQ(Lines(t, "backy_last_bytes_read{"),
            V{"backy_last_bytes_read{job=\"a\"} 1048576"});
  EXPECT_EQ(Lines(t, "backy_last_bytes_written{"),
            V{"backy_last_bytes_written{job=\"a\"} 4096"});
  EXPECT_EQ(
      Lines(t, "backy_revisions{"),
      (V{"backy_revisions{job=\"a\"} 7", "backy_revisions{job=\"b\\\"x\"} 0"}));
  EXPECT_EQ(Lines(t, "backy_sla_ok{"),
            (V{"backy_sla_ok{job=\"a\"} 1", "backy_sla_ok{job=\"b\\\"x\"} 0"}));
  EXPECT_EQ(Lines(t, "backy_failures_total{"),
            (V{"backy_failures_total{job=\"a\"} 3",
               "backy_failures_total{job=\"b\\\"x\"} 0"}));
  EXPECT_EQ(Lines(t, "backy_repository_bytes{"),
            (V{"backy_repository_bytes{job=\"a\"} 123456789",
               "backy_repository_bytes{job=\"b\\\"x\"} 0"}));
  EXPECT_EQ(Lines(t, "# TYPE backy_failures_total "),
            V{"# TYPE backy_failures_total counter"});
  EXPECT_EQ(Lines(t, "# TYPE backy_revisions "),
            V{"# TYPE backy_revisions gauge"});
  EXPECT_EQ(Lines(t, "# HELP ").size(), 10u);
}

TEST(MetricsTextTest, MadeFromThePlannersState) {
  DaemonConfig c;
  c.worker_limit = 1;
  store::Schedule s;
  s.tags["often"] = {10, 3};
  c.schedules["fast"] = s;
  for (const char* name : {"a", "b", "c"}) {
    JobConfig j;
    j.schedule_name = "fast";
    j.schedule = s;
    j.source = {{"type", "file"}, {"filename", "/x"}};
    c.jobs[name] = j;
  }
  Planner p;
  p.Configure(c);
  p.SetFigures("a", {5, 100, 50, 8192});
  ASSERT_EQ(p.Start(kT0).size(), 1u);  // a runs, b and c wait
  EXPECT_EQ(p.Queued(kT0), 2);
  p.Finish("a", kT0 + 2 * S, RunResult::kFailed, "boom");
  EXPECT_EQ(p.jobs().at("a").failures_total, 1);
  const StatusDoc doc = MakeStatus(p, kT0 + 2 * S);
  EXPECT_EQ(doc.queued, 2);
  const JobStatus& a = doc.jobs.at("a");
  EXPECT_EQ(a.failures_total, 1);
  EXPECT_EQ(a.revisions, 5);
  EXPECT_EQ(a.newest_bytes_read, 100);
  EXPECT_EQ(a.newest_bytes_written, 50);
  EXPECT_EQ(a.repository_bytes, 8192);
  // The status file carries the same figures.
  const std::string yaml = doc.ToYaml();
  for (const char* line :
       {"    failures-total: 1\n", "    revisions: 5\n",
        "    newest-bytes-read: 100\n", "    newest-bytes-written: 50\n",
        "    repository-bytes: 8192\n", "queued: 2\n"}) {
    EXPECT_NE(yaml.find(line), std::string::npos) << line << yaml;
  }
  const std::string t = MetricsText(doc);
  EXPECT_NE(t.find("backy_failures_total{job=\"a\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("backy_jobs_queued 2\n"), std::string::npos);
  EXPECT_NE(t.find("backy_last_duration_seconds{job=\"a\"} 2\n"),
            std::string::npos)
      << t;
}

TEST(MetricsFileTest, WrittenNextToTheStatusFileOwnerOnly) {
  DaemonConfig c;
  c.status_file = "/srv/backy/status";
  EXPECT_EQ(c.MetricsFile(), "/srv/backy/backy.prom");
  c.status_file = "status";
  EXPECT_EQ(c.MetricsFile(), "./backy.prom");
  const auto dir = std::filesystem::temp_directory_path() /
                   ("backy-metrics-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_OK(WriteMetricsFile((dir / "backy.prom").string(), TwoJobs()));
  std::ifstream in(dir / "backy.prom");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), MetricsText(TwoJobs()));
  const auto perms = std::filesystem::status(dir / "backy.prom").permissions();
  EXPECT_EQ(
      perms & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto bytes = DiskBytes(dir.string());
  ASSERT_OK(bytes.status());
  EXPECT_GT(*bytes, 0u);
  EXPECT_FALSE(DiskBytes((dir / "missing").string()).ok());
  std::filesystem::remove_all(dir);
}

TEST(PerfDataTest, GuidelineSyntax) {
  EXPECT_EQ(FormatPerfDatum({"late", 2, "", "", "0", 0, 5}), "late=2;;0;0;5");
  EXPECT_EQ(FormatPerfDatum({"vm1 age", 63, "s", "", "5400", 0, {}}),
            "'vm1 age'=63s;;5400;0");
  EXPECT_EQ(FormatPerfDatum({"d", 0.25, "s", "", "", {}, {}}), "d=0.25s");
  // Undetermined: "U", without a unit.
  EXPECT_EQ(FormatPerfDatum({"vm1 age", {}, "s", "", "60", 0, {}}),
            "'vm1 age'=U;;60;0");
  EXPECT_EQ(FormatPerfDatum({"it's=x", 1, "", "", "", {}, {}}), "'it''s_x'=1");
}

TEST(PerfDataTest, LongOutputCarriesTheSecondPerfdataPart) {
  EXPECT_EQ(FormatPluginOutput("OK: fine", {{"a", 1, "", "", "", {}, {}}}, {},
                               {{"b", 2, "", "", "", {}, {}}}),
            "OK: fine | a=1 b=2\n");
  EXPECT_EQ(
      FormatPluginOutput(
          "WARNING: x|y", {{"a", 1, "", "", "", {}, {}}}, {"first", "last"},
          {{"b", 2, "", "", "", {}, {}}, {"c", 3, "", "", "", {}, {}}}),
      "WARNING: x/y | a=1\nfirst\nlast | b=2\nc=3\n");
  EXPECT_EQ(FormatPluginOutput("OK", {}, {"only"}, {}), "OK\nonly\n");
}

TEST(YamlToJsonTest, TypesAsAYaml11ReaderSeesThem) {
  auto j = YamlTextToJsonLine(
      "a: 1\nb: -2\nc: 1.5\nd: '3'\ne: true\nf: no\ng: ~\nh: \"\"\n"
      "i: 2026-01-05T00:00:00Z\nj: [x, 1.0e+20]\nk: {z: 1, y: null}\n"
      "l: 18446744073709551615\nm: 1e5\nn: 012\n");
  ASSERT_OK(j.status());
  EXPECT_EQ(*j,
            "{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":\"3\",\"e\":true,\"f\":false,"
            "\"g\":null,\"h\":\"\",\"i\":\"2026-01-05T00:00:00Z\","
            "\"j\":[\"x\",1e+20],\"k\":{\"z\":1,\"y\":null},"
            "\"l\":18446744073709551615,\"m\":\"1e5\",\"n\":\"012\"}\n");
  EXPECT_FALSE(YamlTextToJsonLine("a: [1, 2\n").ok());
}

}  // namespace
}  // namespace backy::backup::scheduler
