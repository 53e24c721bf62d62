#include "backup/scheduler/api_routes.h"

#include <spdlog/spdlog.h>

#include "backup/scheduler/metrics.h"
#include "backup/scheduler/status.h"
#include "backup/scheduler/status_json.h"
#include "store/duration.h"
#include "store/repository.h"

namespace backy::backup::scheduler {
namespace {

using Json = nlohmann::ordered_json;

ApiResponse Answer(int status, const Json& body) {
  return {status, DumpJsonLine(body)};
}

// GET /v1/jobs: per job its config and the state fields of the status.
ApiResponse Jobs(const RouteContext& ctx) {
  const StatusDoc doc = MakeStatus(*ctx.planner, ctx.now_us);
  Json jobs = Json::array();
  for (const auto& [name, js] : doc.jobs) {
    const JobConfig& jc = ctx.planner->jobs().at(name).config;
    Json tags = Json::object();
    for (const auto& [tag, e] : jc.schedule.tags) {
      tags[tag] = Json{{"interval", store::FormatDuration(e.interval_seconds)},
                       {"keep", e.keep}};
    }
    Json source = Json::object();
    for (const auto& [k, v] : jc.source) source[k] = v;
    const Json status = JobStatusJson(js);
    Json job = {{"name", name},
                {"schedule", js.schedule},
                {"tags", std::move(tags)},
                {"source", std::move(source)}};
    for (const char* key : {"state", "last-time", "last-result", "next-time",
                            "next-tags", "sla"}) {
      job[key] = status.at(key);
    }
    jobs.push_back(std::move(job));
  }
  return Answer(200, Json{{"jobs", std::move(jobs)}});
}

// POST /v1/jobs/JOB/run.
ApiResponse RunJob(const std::string& job, const RouteContext& ctx) {
  auto it = ctx.planner->jobs().find(job);
  if (it == ctx.planner->jobs().end() || it->second.removed) {
    return ApiError(404, "no job '" + job + "'");
  }
  if (ctx.stopping) return ApiError(503, "the scheduler is stopping");
  if (it->second.running) return ApiError(409, "job '" + job + "' is running");
  ctx.planner->Request(job);
  spdlog::info("job {}: run requested over the API", job);
  if (ctx.on_run_requested) ctx.on_run_requested();
  const bool queued =
      ctx.planner->Running() >= ctx.planner->config().worker_limit;
  return Answer(202, Json{{"job", job}, {"queued", queued}});
}

}  // namespace

ApiResponse RouteApiRequest(const std::string& method, const std::string& path,
                            const RouteContext& ctx) {
  if (path == "/v1/status") {
    if (method != "GET") return ApiError(405, "use GET");
    return {200, MakeStatus(*ctx.planner, ctx.now_us).ToJson()};
  }
  if (path == "/metrics") {
    if (method != "GET") return ApiError(405, "use GET");
    return {200, MetricsText(MakeStatus(*ctx.planner, ctx.now_us)),
            kMetricsContentType};
  }
  if (path == "/v1/jobs") {
    if (method != "GET") return ApiError(405, "use GET");
    return Jobs(ctx);
  }
  const std::string prefix = "/v1/jobs/", suffix = "/run";
  if (path.starts_with(prefix) && path.ends_with(suffix) &&
      path.size() > prefix.size() + suffix.size()) {
    if (method != "POST") return ApiError(405, "use POST");
    return RunJob(
        path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()),
        ctx);
  }
  return ApiError(404, "no such path " + path);
}

}  // namespace backy::backup::scheduler
