#include "backup/scheduler/status.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>

#include "store/fs_util.h"
#include "store/revision.h"

namespace backy::backup::scheduler {
namespace {

std::string Time(int64_t us) {
  return us == 0
             ? ""
             : store::FormatTimestamp(us / kMicros * kMicros).substr(0, 19) +
                   "Z";
}

std::string JsonTags(const std::set<std::string>& tags) {
  std::string out = "[";
  for (const auto& t : tags) {
    if (out.size() > 1) out += ",";
    out += JsonQuote(t);
  }
  return out + "]";
}

}  // namespace

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

StatusDoc MakeStatus(const Planner& planner, int64_t now_us) {
  StatusDoc doc;
  doc.time = Time(now_us);
  doc.pid = static_cast<int>(::getpid());
  doc.worker_limit = planner.config().worker_limit;
  doc.running = planner.Running();
  for (const auto& [name, st] : planner.jobs()) {
    if (st.removed) continue;
    JobStatus& js = doc.jobs[name];
    js.schedule = st.config.schedule_name;
    js.state =
        st.running ? "running" : (st.retry_at_us > now_us ? "waiting" : "idle");
    js.last_time = Time(st.last_time_us);
    js.last_tags = st.last_tags;
    js.last_duration_s = static_cast<int64_t>(st.last_duration_s * 10) / 10.0;
    js.last_result = RunResultName(st.last_result);
    js.last_message = st.last_message;
    js.failures = st.failures;
    if (st.running) {
      js.next_time = Time(st.started_us);
      js.next_tags = st.running_tags;
    } else {
      NextRun n = planner.Next(name, now_us);
      js.next_time = Time(std::max(n.time_us, now_us));
      js.next_tags = n.tags;
    }
    js.newest_revision = st.newest_us ? Time(*st.newest_us) : "";
    Sla sla = SlaOf(st.config.schedule, st.newest_us, now_us);
    js.sla = sla.late ? "late" : "ok";
    js.sla_age_s = sla.age_s;
    js.sla_limit_s = sla.limit_s;
  }
  return doc;
}

std::string StatusDoc::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "time" << YAML::Value << time;
  e << YAML::Key << "pid" << YAML::Value << pid;
  e << YAML::Key << "worker-limit" << YAML::Value << worker_limit;
  e << YAML::Key << "running" << YAML::Value << running;
  e << YAML::Key << "jobs" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, j] : jobs) {
    e << YAML::Key << name << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "schedule" << YAML::Value << j.schedule;
    e << YAML::Key << "state" << YAML::Value << j.state;
    e << YAML::Key << "last-time" << YAML::Value << j.last_time;
    e << YAML::Key << "last-tags" << YAML::Value << YAML::Flow
      << YAML::BeginSeq;
    for (const auto& t : j.last_tags) e << t;
    e << YAML::EndSeq;
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.1f", j.last_duration_s);
    e << YAML::Key << "last-duration" << YAML::Value << dur;
    e << YAML::Key << "last-result" << YAML::Value << j.last_result;
    e << YAML::Key << "last-message" << YAML::Value << j.last_message;
    e << YAML::Key << "failures" << YAML::Value << j.failures;
    e << YAML::Key << "next-time" << YAML::Value << j.next_time;
    e << YAML::Key << "next-tags" << YAML::Value << YAML::Flow
      << YAML::BeginSeq;
    for (const auto& t : j.next_tags) e << t;
    e << YAML::EndSeq;
    e << YAML::Key << "newest-revision" << YAML::Value << j.newest_revision;
    e << YAML::Key << "sla" << YAML::Value << j.sla;
    e << YAML::Key << "sla-age" << YAML::Value << j.sla_age_s;
    e << YAML::Key << "sla-limit" << YAML::Value << j.sla_limit_s;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string StatusDoc::ToJson() const {
  std::string o = "{";
  o += "\"time\":" + JsonQuote(time);
  o += ",\"pid\":" + std::to_string(pid);
  o += ",\"worker-limit\":" + std::to_string(worker_limit);
  o += ",\"running\":" + std::to_string(running);
  o += ",\"jobs\":{";
  bool first = true;
  for (const auto& [name, j] : jobs) {
    if (!first) o += ",";
    first = false;
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.1f", j.last_duration_s);
    o += JsonQuote(name) + ":{";
    o += "\"schedule\":" + JsonQuote(j.schedule);
    o += ",\"state\":" + JsonQuote(j.state);
    o += ",\"last-time\":" + JsonQuote(j.last_time);
    o += ",\"last-tags\":" + JsonTags(j.last_tags);
    o += ",\"last-duration\":" + std::string(dur);
    o += ",\"last-result\":" + JsonQuote(j.last_result);
    o += ",\"last-message\":" + JsonQuote(j.last_message);
    o += ",\"failures\":" + std::to_string(j.failures);
    o += ",\"next-time\":" + JsonQuote(j.next_time);
    o += ",\"next-tags\":" + JsonTags(j.next_tags);
    o += ",\"newest-revision\":" + JsonQuote(j.newest_revision);
    o += ",\"sla\":" + JsonQuote(j.sla);
    o += ",\"sla-age\":" + std::to_string(j.sla_age_s);
    o += ",\"sla-limit\":" + std::to_string(j.sla_limit_s);
    o += "}";
  }
  o += "}}\n";
  return o;
}

Status WriteStatusFile(const std::string& path, const StatusDoc& doc) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  // Owner-only (the status names every job and source): WriteFileAtomic
  // creates its temporary file 0600 with O_EXCL|O_NOFOLLOW.
  return store::WriteFileAtomic(path, doc.ToYaml(), dir);
}

}  // namespace backy::backup::scheduler
