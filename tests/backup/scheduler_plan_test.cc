#include <gtest/gtest.h>

#include "backup/scheduler/plan.h"
#include "backup/scheduler/status.h"
#include "test_util.h"

namespace backy::backup::scheduler {
namespace {

constexpr int64_t S = kMicros;
constexpr int64_t kHour = 3600, kDay = 86400;
// A fixed test clock: 2026-01-05 00:00:00 UTC (a multiple of 1 week + offset).
constexpr int64_t kT0 = 1767571200LL * S;

store::Schedule Default() {
  store::Schedule s;
  s.tags["hourly"] = {kHour, 24};
  s.tags["daily"] = {kDay, 14};
  s.tags["weekly"] = {7 * kDay, 8};
  return s;
}

TEST(SpreadTest, OffsetIsDeterministicAndWithinTheInterval) {
  EXPECT_EQ(SpreadOffset("vm1", kHour), SpreadOffset("vm1", kHour));
  for (int i = 0; i < 100; ++i) {
    const int64_t o = SpreadOffset("vm" + std::to_string(i), kHour);
    EXPECT_GE(o, 0);
    EXPECT_LT(o, kHour);
  }
}

TEST(SpreadTest, HundredJobsDoNotStartTogether) {
  std::set<int64_t> minutes;
  for (int i = 0; i < 100; ++i) {
    minutes.insert(SpreadOffset("vm" + std::to_string(i), kHour) / 60);
  }
  // 100 jobs over 60 minutes: nearly every minute has a start.
  EXPECT_GE(minutes.size(), 45u);
}

TEST(SpreadTest, DailySlotsAreHourlySlots) {
  const int64_t h = SpreadOffset("vm7", kHour);
  const int64_t d = SpreadOffset("vm7", kDay);
  EXPECT_EQ(d % kHour, h);
}

TEST(NextSlotTest, IsStrictlyAfter) {
  EXPECT_EQ(NextSlot(10, 3, 0), 3 * S);
  EXPECT_EQ(NextSlot(10, 3, 3 * S), 13 * S);
  EXPECT_EQ(NextSlot(10, 3, 3 * S - 1), 3 * S);
  EXPECT_EQ(NextSlot(10, 3, 12 * S), 13 * S);
}

TEST(PlanTest, NeverRunTagsAreDueAtOnce) {
  auto run = PlanNextRun("vm1", Default(), {}, kT0);
  EXPECT_LE(run.time_us, kT0);
  EXPECT_EQ(run.tags, (std::set<std::string>{"daily", "hourly", "weekly"}));
}

TEST(PlanTest, NextRunIsTheNextSlotOfTheJob) {
  const int64_t off = SpreadOffset("vm1", kHour);
  // All tags just ran at the job's slot.
  const int64_t slot = NextSlot(kHour, off, kT0);
  std::map<std::string, int64_t> last = {
      {"hourly", slot + S}, {"daily", slot + S}, {"weekly", slot + S}};
  auto run = PlanNextRun("vm1", Default(), last, slot + 10 * S);
  EXPECT_EQ(run.time_us, slot + kHour * S);
  EXPECT_EQ(run.tags, (std::set<std::string>{"hourly"}));
}

TEST(PlanTest, ARunCarriesEveryTagDueAtThatMoment) {
  // The daily slot of the job; the hourly tag ran an hour before.
  const int64_t dslot = NextSlot(kDay, SpreadOffset("vm3", kDay), kT0);
  std::map<std::string, int64_t> last = {{"hourly", dslot - kHour * S + S},
                                         {"daily", dslot - kDay * S + S},
                                         {"weekly", dslot}};
  auto run = PlanNextRun("vm3", Default(), last, dslot - 60 * S);
  EXPECT_EQ(run.time_us, dslot);
  EXPECT_EQ(run.tags, (std::set<std::string>{"daily", "hourly"}));
}

TEST(PlanTest, MissedTagsAreDueNow) {
  // The daemon was down for 3 days: every tag older than its interval is
  // due at once, in one run.
  std::map<std::string, int64_t> last = {{"hourly", kT0 - 3 * kDay * S},
                                         {"daily", kT0 - 3 * kDay * S},
                                         {"weekly", kT0 - kHour * S}};
  auto run = PlanNextRun("vm1", Default(), last, kT0);
  EXPECT_LT(run.time_us, kT0);  // overdue: start now
  EXPECT_EQ(run.tags, (std::set<std::string>{"daily", "hourly"}));
}

TEST(BackoffTest, DoublesFromTheBaseUpToTheCap) {
  EXPECT_EQ(BackoffSeconds(1, 120, 6 * kHour), 120);
  EXPECT_EQ(BackoffSeconds(2, 120, 6 * kHour), 240);
  EXPECT_EQ(BackoffSeconds(3, 120, 6 * kHour), 480);
  EXPECT_EQ(BackoffSeconds(8, 120, 6 * kHour), 15360);
  EXPECT_EQ(BackoffSeconds(9, 120, 6 * kHour), 6 * kHour);
  EXPECT_EQ(BackoffSeconds(200, 120, 6 * kHour), 6 * kHour);
  EXPECT_EQ(BackoffSeconds(0, 120, 6 * kHour), 0);
}

TEST(SlaTest, LateAfterOneAndAHalfSmallestIntervals) {
  auto sched = Default();
  EXPECT_FALSE(SlaOf(sched, std::nullopt, kT0).late);  // never ran: not late
  EXPECT_FALSE(SlaOf(sched, kT0 - 5400 * S, kT0).late);
  auto late = SlaOf(sched, kT0 - 5401 * S, kT0);
  EXPECT_TRUE(late.late);
  EXPECT_EQ(late.limit_s, 5400);
  EXPECT_EQ(late.age_s, 5401);
}

DaemonConfig ConfigWith(int jobs, int worker_limit) {
  DaemonConfig c;
  c.worker_limit = worker_limit;
  c.backoff_base_s = 120;
  store::Schedule s;
  s.tags["often"] = {10, 3};
  c.schedules["fast"] = s;
  for (int i = 0; i < jobs; ++i) {
    JobConfig j;
    j.schedule_name = "fast";
    j.schedule = s;
    j.source = {{"type", "file"}, {"filename", "/x"}};
    c.jobs["job" + std::to_string(i)] = j;
  }
  return c;
}

TEST(PlannerTest, RespectsTheWorkerLimit) {
  Planner p;
  p.Configure(ConfigWith(5, 2));
  auto first = p.Start(kT0);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_TRUE(p.Start(kT0 + S).empty());
  p.Finish(first[0].job, kT0 + 2 * S, RunResult::kOk, "");
  auto second = p.Start(kT0 + 2 * S);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].job, first[0].job);
  EXPECT_EQ(p.Running(), 2);
}

TEST(PlannerTest, AFailedJobBacksOffExponentially) {
  Planner p;
  p.Configure(ConfigWith(1, 1));
  int64_t now = kT0;
  int64_t expect_wait = 120;
  for (int i = 1; i <= 4; ++i) {
    auto s = p.Start(now);
    ASSERT_EQ(s.size(), 1u) << "attempt " << i;
    p.Finish("job0", now, RunResult::kFailed, "boom");
    EXPECT_EQ(p.jobs().at("job0").failures, i);
    EXPECT_TRUE(p.Start(now + (expect_wait - 1) * S).empty());
    now += expect_wait * S;
    expect_wait *= 2;
  }
  // Success resets the backoff.
  ASSERT_EQ(p.Start(now).size(), 1u);
  p.Finish("job0", now + S, RunResult::kOk, "");
  EXPECT_EQ(p.jobs().at("job0").failures, 0);
  EXPECT_EQ(p.jobs().at("job0").retry_at_us, 0);
}

TEST(PlannerTest, WarningCountsAsSuccess) {
  Planner p;
  p.Configure(ConfigWith(1, 1));
  ASSERT_EQ(p.Start(kT0).size(), 1u);
  p.Finish("job0", kT0 + S, RunResult::kWarning, "expire: unknown command");
  EXPECT_EQ(p.jobs().at("job0").failures, 0);
  auto next = p.Next("job0", kT0 + 2 * S);
  EXPECT_GT(next.time_us, kT0 + S);
  EXPECT_LE(next.time_us, kT0 + 11 * S);
}

TEST(PlannerTest, RemovedRunningJobFinishesThenGoes) {
  Planner p;
  p.Configure(ConfigWith(2, 2));
  ASSERT_EQ(p.Start(kT0).size(), 2u);
  p.Configure(ConfigWith(1, 2));  // job1 removed while running
  EXPECT_TRUE(p.jobs().at("job1").removed);
  EXPECT_TRUE(p.jobs().at("job1").running);
  EXPECT_FALSE(p.Request("job1"));
  p.Finish("job1", kT0 + S, RunResult::kOk, "");
  EXPECT_EQ(p.jobs().count("job1"), 0u);
  // Re-adding a job keeps nothing odd: it runs at once (no history).
  p.Configure(ConfigWith(3, 3));
  auto s = p.Start(kT0 + 2 * S);
  EXPECT_EQ(s.size(), 2u);  // job1 and job2; job0 still running
}

TEST(PlannerTest, RequestedRunStartsFirstWithTheNextTags) {
  Planner p;
  p.Configure(ConfigWith(2, 1));
  p.SetHistory("job0", {{"often", kT0}}, kT0);
  p.SetHistory("job1", {{"often", kT0}}, kT0);
  EXPECT_TRUE(p.Start(kT0 + S).empty());
  EXPECT_TRUE(p.Request("job1"));
  EXPECT_FALSE(p.Request("nope"));
  auto s = p.Start(kT0 + S);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].job, "job1");
  EXPECT_EQ(s[0].tags, (std::set<std::string>{"often"}));
}

TEST(StatusDocTest, YamlAndJsonCarryTheSameFields) {
  Planner p;
  p.Configure(ConfigWith(1, 1));
  ASSERT_EQ(p.Start(kT0).size(), 1u);
  p.Finish("job0", kT0 + 3 * S, RunResult::kFailed, "backup: \"x\" gone");
  auto doc = MakeStatus(p, kT0 + 4 * S);
  const auto& j = doc.jobs.at("job0");
  EXPECT_EQ(j.last_result, "failed");
  EXPECT_EQ(j.state, "waiting");
  EXPECT_EQ(j.failures, 1);
  EXPECT_EQ(j.last_duration_s, 3.0);
  const std::string yaml = doc.ToYaml();
  const std::string json = doc.ToJson();
  EXPECT_NE(yaml.find("last-result: failed"), std::string::npos) << yaml;
  EXPECT_NE(json.find("\"last-result\":\"failed\""), std::string::npos) << json;
  EXPECT_NE(json.find(R"("last-message":"backup: \"x\" gone")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"next-time\":\"" + j.next_time + "\""),
            std::string::npos);
}

}  // namespace
}  // namespace backy::backup::scheduler
