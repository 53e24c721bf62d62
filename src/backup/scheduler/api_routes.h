// The scheduler's HTTP routes: which path answers what. http_api.{h,cc} is
// the server (listening, authentication, limits); this file maps an
// authenticated request to its answer:
//   GET  /v1/status         the status document (as in the status file)
//   GET  /v1/jobs           every job: config (schedule, tags, source) and
//                           state
//   POST /v1/jobs/JOB/run   run JOB as soon as a worker is free (202)
//   GET  /metrics           the status as Prometheus metrics (metrics.h)
// Anything else is 404, a known path with another method 405. Runs on the
// io_context's thread; touches only the Planner it is given.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "backup/scheduler/http_api.h"
#include "backup/scheduler/plan.h"

namespace backy::backup::scheduler {

// What the routes see of the daemon.
struct RouteContext {
  Planner* planner = nullptr;
  int64_t now_us = 0;
  bool stopping = false;  // the scheduler is shutting down: no new runs
  // Called after a run was requested: start what the Planner says now
  // (the daemon posts this, so the answer goes out first).
  std::function<void()> on_run_requested;
};

// The answer to an authenticated `method` `path` request (or one for a
// public path). JSON bodies, one line each, except /metrics; errors are
// {"error": "..."}.
ApiResponse RouteApiRequest(const std::string& method, const std::string& path,
                            const RouteContext& ctx);

}  // namespace backy::backup::scheduler
