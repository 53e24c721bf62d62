#include "backup/scheduler/plan.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace backy::backup::scheduler {

uint64_t JobHash(std::string_view job) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : job) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t SpreadOffset(std::string_view job, int64_t interval_s) {
  if (interval_s <= 0) return 0;
  return static_cast<int64_t>(JobHash(job) % static_cast<uint64_t>(interval_s));
}

int64_t NextSlot(int64_t interval_s, int64_t offset_s, int64_t after_us) {
  const int64_t interval_us = interval_s * kMicros;
  const int64_t offset_us = offset_s * kMicros;
  // Floor division, correct for times before the offset too.
  int64_t k = (after_us - offset_us) / interval_us;
  if (k * interval_us + offset_us > after_us) --k;
  return (k + 1) * interval_us + offset_us;
}

int64_t TagDue(std::string_view job, int64_t interval_s,
               std::optional<int64_t> last_us, int64_t now_us) {
  (void)now_us;
  // Never run: due since forever, so it sorts before merely overdue jobs.
  if (!last_us) return 0;
  return NextSlot(interval_s, SpreadOffset(job, interval_s), *last_us);
}

NextRun PlanNextRun(std::string_view job, const store::Schedule& schedule,
                    const std::map<std::string, int64_t>& last_by_tag,
                    int64_t now_us, int64_t not_before_us) {
  std::map<std::string, int64_t> due;
  int64_t first = std::numeric_limits<int64_t>::max();
  for (const auto& [tag, entry] : schedule.tags) {
    auto it = last_by_tag.find(tag);
    std::optional<int64_t> last;
    if (it != last_by_tag.end()) last = it->second;
    const int64_t d = TagDue(job, entry.interval_seconds, last, now_us);
    due[tag] = d;
    first = std::min(first, d);
  }
  NextRun run;
  if (due.empty()) return run;
  // A missed run is due now; a backoff delays it further.
  run.time_us = std::max({first, not_before_us});
  // An overdue run starting now carries every tag due by now.
  const int64_t at = std::max(run.time_us, now_us);
  for (const auto& [tag, d] : due) {
    if (d <= at) run.tags.insert(tag);
  }
  return run;
}

int64_t BackoffSeconds(int failures, int64_t base_s, int64_t max_s) {
  if (failures <= 0) return 0;
  int64_t s = base_s;
  for (int i = 1; i < failures && s < max_s; ++i) s *= 2;
  return std::min(s, max_s);
}

Sla SlaOf(const store::Schedule& schedule, std::optional<int64_t> newest_us,
          int64_t now_us) {
  Sla sla;
  int64_t smallest = 0;
  for (const auto& [tag, entry] : schedule.tags) {
    if (smallest == 0 || entry.interval_seconds < smallest) {
      smallest = entry.interval_seconds;
    }
  }
  sla.limit_s = smallest * 3 / 2;
  if (!newest_us || smallest == 0) return sla;
  sla.age_s = std::max<int64_t>(0, (now_us - *newest_us) / kMicros);
  sla.late = sla.age_s > sla.limit_s;
  return sla;
}

std::string RunResultName(RunResult r) {
  switch (r) {
    case RunResult::kNone:
      return "none";
    case RunResult::kOk:
      return "ok";
    case RunResult::kWarning:
      return "warning";
    case RunResult::kFailed:
      return "failed";
    case RunResult::kInterrupted:
      return "interrupted";
  }
  return "none";
}

void Planner::Configure(const DaemonConfig& config) {
  config_ = config;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (config.jobs.count(it->first)) {
      ++it;
    } else if (it->second.running) {
      it->second.removed = true;
      ++it;
    } else {
      it = jobs_.erase(it);
    }
  }
  for (const auto& [name, job] : config.jobs) {
    JobState& st = jobs_[name];
    st.config = job;
    st.removed = false;
  }
}

void Planner::SetHistory(const std::string& job,
                         std::map<std::string, int64_t> last_by_tag,
                         std::optional<int64_t> newest_us) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  it->second.last_by_tag = std::move(last_by_tag);
  it->second.newest_us = newest_us;
}

NextRun Planner::Next(const std::string& job, int64_t now_us) const {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return {};
  const JobState& st = it->second;
  return PlanNextRun(job, st.config.schedule, st.last_by_tag, now_us,
                     st.retry_at_us);
}

void Planner::SetFigures(const std::string& job,
                         const RepositoryFigures& figures) {
  auto it = jobs_.find(job);
  if (it != jobs_.end()) it->second.figures = figures;
}

int Planner::Queued(int64_t now_us) const {
  int n = 0;
  for (const auto& [name, st] : jobs_) n += Candidate(name, st, now_us) ? 1 : 0;
  return n;
}

std::optional<Planner::StartCandidate> Planner::Candidate(
    const std::string& name, const JobState& st, int64_t now_us) const {
  if (st.running || st.removed || now_us < st.claim_retry_us) {
    return std::nullopt;
  }
  if (st.run_requested) {
    // Due tags now, else the next run's tags; ignores the backoff.
    NextRun n = PlanNextRun(name, st.config.schedule, st.last_by_tag, now_us);
    return StartCandidate{0, now_us, std::move(n.tags)};
  }
  NextRun n = Next(name, now_us);
  if (n.tags.empty() || n.time_us > now_us) return std::nullopt;
  return StartCandidate{1, n.time_us, std::move(n.tags)};
}

int Planner::Running() const {
  int n = 0;
  for (const auto& [name, st] : jobs_) n += st.running ? 1 : 0;
  return n;
}

bool Planner::Request(const std::string& job) {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.removed) return false;
  it->second.run_requested = true;
  return true;
}

std::vector<RunStart> Planner::Start(int64_t now_us) {
  // (requested first, due time, name)
  std::vector<std::tuple<int, int64_t, std::string, std::set<std::string>>>
      candidates;
  for (const auto& [name, st] : jobs_) {
    auto c = Candidate(name, st, now_us);
    if (c) candidates.emplace_back(c->priority, c->due_us, name, c->tags);
  }
  std::sort(candidates.begin(), candidates.end());
  std::vector<RunStart> out;
  int running = Running();
  for (auto& [prio, due, name, tags] : candidates) {
    if (running >= config_.worker_limit) break;
    JobState& st = jobs_[name];
    st.running = true;
    st.run_requested = false;
    st.started_us = now_us;
    st.running_tags = tags;
    ++running;
    out.push_back({name, tags, prio == 0});
  }
  return out;
}

void Planner::Finish(const std::string& job, int64_t now_us, RunResult result,
                     const std::string& message) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  JobState& st = it->second;
  st.running = false;
  st.last_time_us = st.started_us;
  st.last_duration_s = static_cast<double>(now_us - st.started_us) / kMicros;
  st.last_tags = st.running_tags;
  st.last_result = result;
  st.last_message = message;
  if (result == RunResult::kOk || result == RunResult::kWarning) {
    st.failures = 0;
    st.retry_at_us = 0;
    for (const auto& t : st.running_tags) st.last_by_tag[t] = st.started_us;
    st.newest_us = st.started_us;
  } else if (result == RunResult::kFailed) {
    ++st.failures;
    ++st.failures_total;
    st.retry_at_us =
        now_us + BackoffSeconds(st.failures, config_.backoff_base_s,
                                config_.backoff_max_s) *
                     kMicros;
  }
  st.running_tags.clear();
  if (st.removed) jobs_.erase(it);
}

void Planner::Unstart(const std::string& job, int64_t retry_us) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  JobState& st = it->second;
  st.running = false;
  st.running_tags.clear();
  st.claim_retry_us = retry_us;
  if (st.removed) jobs_.erase(it);
}

void Planner::FinishCopy(const std::string& job, int64_t now_us, bool ok,
                         const std::string& message) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  JobState& st = it->second;
  st.last_copy_result = ok ? RunResult::kOk : RunResult::kFailed;
  st.last_copy_message = ok ? "" : message;
  if (ok) {
    st.last_copy_success_us = now_us;
  } else {
    ++st.copy_failures_total;
  }
}

}  // namespace backy::backup::scheduler
