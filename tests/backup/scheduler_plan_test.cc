#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <map>
#include <vector>

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

// A job another host holds (its lease) is tried again later, with nothing
// recorded as run or failed; one the other host ran is no longer due.
TEST(PlannerTest, UnstartIsNeitherARunNorAFailure) {
  Planner p;
  p.Configure(ConfigWith(1, 1));
  ASSERT_EQ(p.Start(kT0).size(), 1u);
  p.Unstart("job0", kT0 + 10 * S);
  const JobState& st = p.jobs().at("job0");
  EXPECT_FALSE(st.running);
  EXPECT_EQ(st.failures, 0);
  EXPECT_EQ(st.last_result, RunResult::kNone);
  EXPECT_TRUE(p.Start(kT0 + 9 * S).empty());
  ASSERT_EQ(p.Start(kT0 + 10 * S).size(), 1u);
  // The other host's revision, read under the lease: not due until the
  // next slot of the job.
  p.SetHistory("job0", {{"often", kT0 + 10 * S}}, kT0 + 10 * S);
  const NextRun next = p.Next("job0", kT0 + 10 * S);
  EXPECT_GT(next.time_us, kT0 + 10 * S);
  p.Unstart("job0", 0);
  EXPECT_TRUE(p.Start(kT0 + 10 * S).empty());
  EXPECT_EQ(p.Start(next.time_us).size(), 1u);
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

// The daemon's loop on a fake clock: Start() every tick (the daemon's
// 500 ms timer), each run ending `run_s` later with the result `result_of`
// gives it, and Start() again at once when a run ends (a worker is free).
// What the e2e tests used to measure with a real daemon and sleep.
struct Started {
  std::string job;
  int64_t at_us;
  std::set<std::string> tags;
};

class Simulation {
 public:
  using ResultOf = std::function<RunResult(const std::string& job, int64_t)>;

  Simulation(Planner* p, int64_t now_us) : p_(p), now_(now_us) {}

  // Runs the loop until `until_us`.
  void RunUntil(int64_t until_us, int64_t run_us, const ResultOf& result_of) {
    for (; now_ <= until_us; now_ += kTick) {
      for (auto it = ends_.begin(); it != ends_.end();) {
        if (it->first > now_) {
          ++it;
          continue;
        }
        p_->Finish(it->second, it->first, result_of(it->second, it->first), "");
        StartAt(it->first, run_us);
        it = ends_.erase(it);
      }
      StartAt(now_, run_us);
    }
  }

  int64_t now() const { return now_; }
  const std::vector<Started>& started() const { return started_; }
  int max_running() const { return max_running_; }
  std::vector<int64_t> StartsOf(const std::string& job) const {
    std::vector<int64_t> out;
    for (const auto& s : started_) {
      if (s.job == job) out.push_back(s.at_us);
    }
    return out;
  }

 private:
  static constexpr int64_t kTick = kMicros / 2;

  void StartAt(int64_t t, int64_t run_us) {
    for (auto& start : p_->Start(t)) {
      started_.push_back({start.job, t, start.tags});
      ends_.emplace(t + run_us, start.job);
    }
    max_running_ = std::max(max_running_, p_->Running());
  }

  Planner* p_;
  int64_t now_;
  std::multimap<int64_t, std::string> ends_;
  std::vector<Started> started_;
  int max_running_ = 0;
};

RunResult AlwaysOk(const std::string&, int64_t) { return RunResult::kOk; }

// Jobs named vmN whose offsets in `interval_s` all differ.
std::vector<std::string> JobsWithDistinctOffsets(int n, int64_t interval_s) {
  std::vector<std::string> out;
  std::set<int64_t> offsets;
  for (int i = 0; static_cast<int>(out.size()) < n && i < 1000; ++i) {
    const std::string name = "vm" + std::to_string(i);
    if (offsets.insert(SpreadOffset(name, interval_s)).second) {
      out.push_back(name);
    }
  }
  return out;
}

DaemonConfig ConfigFor(const std::vector<std::string>& jobs,
                       const store::Schedule& s, int worker_limit,
                       int64_t backoff_base_s = 2) {
  DaemonConfig c;
  c.worker_limit = worker_limit;
  c.backoff_base_s = backoff_base_s;
  c.schedules["s"] = s;
  for (const auto& name : jobs) {
    JobConfig j;
    j.schedule_name = "s";
    j.schedule = s;
    j.source = {{"type", "file"}, {"filename", "/" + name}};
    c.jobs[name] = j;
  }
  return c;
}

store::Schedule Every(int64_t interval_s) {
  store::Schedule s;
  s.tags["often"] = {interval_s, 10};
  return s;
}

// Was scheduler_basic.sh: "later runs start at each job's own offset in the
// interval" and "never more than worker-limit (2) jobs at once".
TEST(PlannerSimulationTest, LaterRunsStartAtEachJobsOwnOffset) {
  const int64_t interval = 8;
  const auto jobs = JobsWithDistinctOffsets(4, interval);
  ASSERT_EQ(jobs.size(), 4u);
  Planner p;
  p.Configure(ConfigFor(jobs, Every(interval), 2));
  Simulation sim(&p, kT0);
  sim.RunUntil(kT0 + 10 * interval * S, S / 2, AlwaysOk);
  EXPECT_EQ(sim.max_running(), 2);
  for (const auto& job : jobs) {
    const auto starts = sim.StartsOf(job);
    ASSERT_GE(starts.size(), 9u) << job;
    const int64_t offset = SpreadOffset(job, interval);
    for (size_t i = 1; i < starts.size(); ++i) {
      // On the tick at the job's grid point (the first run was at once).
      EXPECT_EQ((starts[i] / S) % interval, offset) << job << " run " << i;
      EXPECT_EQ(starts[i] % S, 0) << job << " run " << i;
      if (i >= 2) {
        EXPECT_EQ(starts[i] - starts[i - 1], interval * S)
            << job << " run " << i;
      }
    }
  }
}

// Was scheduler_basic.sh's concurrency count, with long runs: the limit
// holds, and every job still gets its turn.
TEST(PlannerSimulationTest, NeverMoreThanTheWorkerLimit) {
  std::vector<std::string> jobs;
  for (int i = 0; i < 10; ++i) jobs.push_back("job" + std::to_string(i));
  Planner p;
  p.Configure(ConfigFor(jobs, Every(10), 3));
  Simulation sim(&p, kT0);
  sim.RunUntil(kT0 + 60 * S, 4 * S, AlwaysOk);
  EXPECT_EQ(sim.max_running(), 3);
  for (const auto& job : jobs) EXPECT_GE(sim.StartsOf(job).size(), 2u) << job;
}

// Was scheduler_backoff.sh: retries after 2, 4, 8 s (backoff-base 2s), the
// log's "retry in 8s" after the third failure, the healthy job keeps its
// schedule, and once the source is back the next retry succeeds and the
// backoff resets.
TEST(PlannerSimulationTest, AFailingJobBacksOffWhileAnotherKeepsItsSchedule) {
  Planner p;
  p.Configure(ConfigFor({"broken", "good"}, Every(4), 2));
  int64_t source_back_us = std::numeric_limits<int64_t>::max();
  auto result = [&](const std::string& job, int64_t at) {
    return job == "broken" && at < source_back_us ? RunResult::kFailed
                                                  : RunResult::kOk;
  };
  Simulation sim(&p, kT0);
  int64_t third_failure_us = 0;
  while (p.jobs().at("broken").failures < 3) {
    sim.RunUntil(sim.now(), S / 2, result);
    third_failure_us = sim.now();
    ASSERT_LT(sim.now(), kT0 + 60 * S);
  }
  const JobState& broken = p.jobs().at("broken");
  EXPECT_EQ(broken.last_result, RunResult::kFailed);
  EXPECT_EQ(MakeStatus(p, sim.now()).jobs.at("broken").state, "waiting");
  // The daemon logs "failed (3 in a row), retry in {retry_at - now}s".
  const auto starts = sim.StartsOf("broken");
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_EQ(starts[1] - starts[0], S / 2 + 2 * S);  // run, then 2 s
  EXPECT_EQ(starts[2] - starts[1], S / 2 + 4 * S);  // run, then 4 s
  EXPECT_EQ(broken.retry_at_us - (starts[2] + S / 2), 8 * S);
  EXPECT_LE(third_failure_us - (starts[2] + S / 2), S / 2);
  // The healthy job ran on every 4 s slot meanwhile.
  const auto good = sim.StartsOf("good");
  ASSERT_GE(good.size(), 2u);
  for (size_t i = 1; i < good.size(); ++i) {
    EXPECT_EQ(good[i] - good[i - 1], 4 * S);
  }
  // The source is back: the next retry (8 s later) succeeds and resets.
  source_back_us = sim.now();
  const int64_t retry_at = broken.retry_at_us;
  sim.RunUntil(retry_at, S / 2, result);
  ASSERT_EQ(sim.StartsOf("broken").size(), 4u);
  EXPECT_EQ(sim.StartsOf("broken")[3], retry_at);
  sim.RunUntil(retry_at + S, S / 2, result);
  EXPECT_EQ(p.jobs().at("broken").failures, 0);
  EXPECT_EQ(p.jobs().at("broken").last_result, RunResult::kOk);
}

// Was scheduler_catchup.sh: the first run carries every tag; a daemon down
// past the slots of both tags runs them at once on restart, in one run.
TEST(PlannerSimulationTest, MissedTagsRunAtOnceInOneRunAfterARestart) {
  store::Schedule s;
  s.tags["short"] = {5, 20};
  s.tags["long"] = {12, 20};
  Planner before;
  before.Configure(ConfigFor({"a"}, s, 1));
  auto first = before.Start(kT0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].tags, (std::set<std::string>{"long", "short"}));
  // Killed; restarted 14 s later: a new Planner with the repository's history.
  Planner after;
  after.Configure(ConfigFor({"a"}, s, 1));
  after.SetHistory("a", {{"short", kT0}, {"long", kT0}}, kT0);
  const int64_t restart = kT0 + 14 * S;
  auto catchup = after.Start(restart);
  ASSERT_EQ(catchup.size(), 1u);
  EXPECT_EQ(catchup[0].tags, (std::set<std::string>{"long", "short"}));
  after.Finish("a", restart + S, RunResult::kOk, "");
  // One run took both: the next run is at the tags' next slots, not now.
  const NextRun next = after.Next("a", restart + S);
  EXPECT_EQ(next.time_us,
            std::min(NextSlot(5, SpreadOffset("a", 5), restart),
                     NextSlot(12, SpreadOffset("a", 12), restart)));
  EXPECT_TRUE(after.Start(restart + S).empty());
}

// Was scheduler_reload.sh's "b still runs after its removal": a job dropped
// by a reload is never started again; an added one starts at once.
TEST(PlannerSimulationTest, AReloadDropsAndAddsJobs) {
  Planner p;
  p.Configure(ConfigFor({"a", "b"}, Every(3), 2));
  Simulation sim(&p, kT0);
  sim.RunUntil(kT0 + 7 * S, S / 2, AlwaysOk);
  ASSERT_GE(sim.StartsOf("b").size(), 2u);
  const size_t b_runs = sim.StartsOf("b").size();
  p.Configure(ConfigFor({"a", "c"}, Every(3), 2));
  sim.RunUntil(kT0 + 30 * S, S / 2, AlwaysOk);
  EXPECT_EQ(sim.StartsOf("b").size(), b_runs);
  const auto c = sim.StartsOf("c");
  ASSERT_GE(c.size(), 1u);
  EXPECT_LE(c[0], kT0 + 8 * S);  // the first tick after the reload
  EXPECT_EQ(MakeStatus(p, sim.now()).jobs.count("b"), 0u);
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
