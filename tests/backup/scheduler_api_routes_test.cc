#include <gtest/gtest.h>

#include "backup/scheduler/api_routes.h"
#include "backup/scheduler/metrics.h"
#include "backup/scheduler/status.h"
#include "backup/scheduler/supervisor.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

constexpr int64_t S = kMicros;
constexpr int64_t kT0 = 1767571200LL * S;  // 2026-01-05 00:00:00 UTC

DaemonConfig TwoJobs(int worker_limit) {
  DaemonConfig c;
  c.worker_limit = worker_limit;
  store::Schedule s;
  s.tags["often"] = {10, 3};
  c.schedules["fast"] = s;
  for (const char* name : {"a", "b"}) {
    JobConfig j;
    j.schedule_name = "fast";
    j.schedule = s;
    j.source = {{"type", "file"}, {"filename", "/img/\"q\"\t.raw"}};
    c.jobs[name] = j;
  }
  return c;
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  ApiRoutesTest() { planner_.Configure(TwoJobs(1)); }

  ApiResponse Call(const std::string& method, const std::string& path) {
    RouteContext ctx{&planner_, kT0, stopping_, [this] { ++kicks_; }};
    return RouteApiRequest(method, path, ctx);
  }

  Planner planner_;
  bool stopping_ = false;
  int kicks_ = 0;
};

TEST_F(ApiRoutesTest, UnknownPathsAndMethods) {
  auto r = Call("GET", "/v1/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"error\":\"no such path /v1/nope\"}\n");
  EXPECT_EQ(Call("POST", "/v1/status").body, "{\"error\":\"use GET\"}\n");
  EXPECT_EQ(Call("DELETE", "/v1/jobs").status, 405);
  r = Call("GET", "/v1/jobs/a/run");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, "{\"error\":\"use POST\"}\n");
  // "/v1/jobs//run" names no job: not a run route.
  EXPECT_EQ(Call("POST", "/v1/jobs//run").status, 404);
  EXPECT_EQ(kicks_, 0);
}

TEST_F(ApiRoutesTest, RunAJob) {
  auto r = Call("POST", "/v1/jobs/a\"x/run");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"error\":\"no job 'a\\\"x'\"}\n");
  r = Call("POST", "/v1/jobs/a/run");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "{\"job\":\"a\",\"queued\":false}\n");
  EXPECT_EQ(kicks_, 1);
  EXPECT_TRUE(planner_.jobs().at("a").run_requested);
  // a runs; with worker-limit 1 a request for b is queued.
  ASSERT_EQ(planner_.Start(kT0).size(), 1u);
  r = Call("POST", "/v1/jobs/a/run");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, "{\"error\":\"job 'a' is running\"}\n");
  EXPECT_EQ(Call("POST", "/v1/jobs/b/run").body,
            "{\"job\":\"b\",\"queued\":true}\n");
  stopping_ = true;
  r = Call("POST", "/v1/jobs/b/run");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"error\":\"the scheduler is stopping\"}\n");
}

TEST_F(ApiRoutesTest, JobsListsConfigAndState) {
  auto r = Call("GET", "/v1/jobs");
  ASSERT_EQ(r.status, 200);
  // The exact bytes `backy jobs` and the e2e tests read (keys, order,
  // formats, escapes).
  const std::string a =
      "{\"name\":\"a\",\"schedule\":\"fast\",\"tags\":{\"often\":{"
      "\"interval\":\"10s\",\"keep\":3}},\"source\":{\"filename\":\"/img/"
      "\\\"q\\\"\\t.raw\",\"type\":\"file\"},\"state\":\"idle\",\"last-time\":"
      "\"\",\"last-result\":\"none\",\"next-time\":\"2026-01-05T00:00:00Z\","
      "\"next-tags\":[\"often\"],\"sla\":\"ok\"}";
  EXPECT_EQ(r.body.substr(0, 10 + a.size()), "{\"jobs\":[" + a + ",") << r.body;
  EXPECT_TRUE(r.body.ends_with("]}\n")) << r.body;
}

TEST_F(ApiRoutesTest, StatusIsTheStatusDocument) {
  auto r = Call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, MakeStatus(planner_, kT0).ToJson());
  // Both jobs are due and wait for the one worker: queued.
  EXPECT_NE(r.body.find("\"worker-limit\":1,\"running\":0,\"queued\":2,"
                        "\"jobs\":{\"a\":{"
                        "\"schedule\":\"fast\",\"state\":\"idle\""),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\"last-duration\":0.0,"), std::string::npos) << r.body;
}

TEST(ErrorLineTest, TheLastBackyLineWithoutItsPrefix) {
  EXPECT_EQ(ErrorLine("debug\nbacky: backup: no such file (x)\n\n"),
            "backup: no such file (x)");
  EXPECT_EQ(ErrorLine("backy: first\nsome trailing noise\n"), "first");
  EXPECT_EQ(ErrorLine("only noise\nlast noise"), "last noise");
  EXPECT_EQ(ErrorLine(""), "");
}

TEST_F(ApiRoutesTest, MetricsAreTheStatusInPrometheusText) {
  auto r = Call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, MetricsText(MakeStatus(planner_, kT0)));
  EXPECT_NE(r.body.find("backy_sla_ok{job=\"b\"} 1\n"), std::string::npos)
      << r.body;
  r = Call("POST", "/metrics");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.content_type, "application/json");
}

}  // namespace
}  // namespace backy::backup::scheduler
