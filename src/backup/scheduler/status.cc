#include "backup/scheduler/status.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "backup/scheduler/status_json.h"
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

// Emits one field of a status document into a YAML map.
struct YamlField {
  YAML::Emitter& e;
  void operator()(const char* key, const std::string& v) const {
    e << YAML::Key << key << YAML::Value << v;
  }
  void operator()(const char* key, const std::set<std::string>& tags) const {
    e << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& t : tags) e << t;
    e << YAML::EndSeq;
  }
  void operator()(const char* key, int64_t v) const {
    e << YAML::Key << key << YAML::Value << v;
  }
  void operator()(const char* key, Seconds1 v) const {
    e << YAML::Key << key << YAML::Value << fmt::format("{:.1f}", v.value);
  }
};

// Sets one field of a status document in a JSON object.
struct JsonField {
  nlohmann::ordered_json& o;
  template <typename T>
  void operator()(const char* key, const T& v) const {
    o[key] = v;
  }
  void operator()(const char* key, Seconds1 v) const {
    // One decimal, as a number: the value is already truncated to tenths.
    o[key] = static_cast<int64_t>(v.value * 10) / 10.0;
  }
};

}  // namespace

nlohmann::ordered_json JobStatusJson(const JobStatus& job) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  VisitFields(job, JsonField{o});
  return o;
}

std::string DumpJsonLine(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

StatusDoc MakeStatus(const Planner& planner, int64_t now_us) {
  StatusDoc doc;
  doc.time = Time(now_us);
  doc.pid = static_cast<int>(::getpid());
  doc.worker_limit = planner.config().worker_limit;
  doc.running = planner.Running();
  doc.queued = planner.Queued(now_us);
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
    js.failures_total = st.failures_total;
    js.revisions = st.figures.revisions;
    js.newest_bytes_read = static_cast<int64_t>(st.figures.newest_bytes_read);
    js.newest_bytes_written =
        static_cast<int64_t>(st.figures.newest_bytes_written);
    js.repository_bytes = static_cast<int64_t>(st.figures.disk_bytes);
    js.newest_revision_s = st.newest_us ? *st.newest_us / kMicros : 0;
    js.copy_to = st.config.copy_to;
    js.last_copy_result = RunResultName(st.last_copy_result);
    js.last_copy_time = Time(st.last_copy_success_us);
    js.last_copy_message = st.last_copy_message;
    js.copy_failures_total = st.copy_failures_total;
    js.last_copy_success_s = st.last_copy_success_us / kMicros;
  }
  return doc;
}

std::string StatusDoc::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  VisitFields(*this, YamlField{e});
  e << YAML::Key << "jobs" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, j] : jobs) {
    e << YAML::Key << name << YAML::Value << YAML::BeginMap;
    VisitFields(j, YamlField{e});
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string StatusDoc::ToJson() const {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  VisitFields(*this, JsonField{o});
  nlohmann::ordered_json& js = o["jobs"] = nlohmann::ordered_json::object();
  for (const auto& [name, j] : jobs) js[name] = JobStatusJson(j);
  return DumpJsonLine(o);
}

Status WriteStatusFile(const std::string& path, const StatusDoc& doc) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  // Owner-only (the status names every job and source): WriteFileAtomic
  // creates its temporary file 0600 with O_EXCL|O_NOFOLLOW.
  return store::WriteFileAtomic(path, doc.ToYaml(), dir);
}

}  // namespace backy::backup::scheduler
