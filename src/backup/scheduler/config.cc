// yaml-cpp exceptions are converted to Status here and nowhere else.
#include "backup/scheduler/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <climits>
#include <filesystem>
#include <set>

#include "backup/source_factory.h"
#include "store/duration.h"
#include "store/fs_util.h"
#include "store/revision.h"

namespace backy::backup::scheduler {
namespace {

// backy 2.x's telnet console: accepted, ignored, with a warning.
constexpr const char* kTelnetKeys[] = {"telnet-addrs", "telnet-port"};

class Parser {
 public:
  Parser(std::string path, std::string state_dir)
      : path_(std::move(path)), state_dir_(std::move(state_dir)) {}

  // "PATH:LINE: what", LINE the node's (for errors and warnings).
  std::string Where(const YAML::Node& at, const std::string& what) const {
    const int line = at.IsDefined() ? at.Mark().line + 1 : 0;
    return path_ + ":" + std::to_string(line > 0 ? line : 1) + ": " + what;
  }

  Status Error(const YAML::Node& at, const std::string& what) const {
    return Status::InvalidArgument(Where(at, what));
  }

  // Rejects keys of `map` that are not in `known` (a typo must not be
  // silently ignored).
  Status KnownKeys(const YAML::Node& map, const std::string& section,
                   std::initializer_list<const char*> known) const {
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      bool found = false;
      for (const char* k : known) found = found || key == k;
      if (!found) {
        return Error(kv.first, "unknown key '" + key + "' in " + section);
      }
    }
    return Status::OK();
  }

  Result<std::string> Str(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return Error(n, what + " must be a string");
    return n.as<std::string>();
  }

  // A whole number in [min, max]; anything else (a fraction, "1e3", "0x10",
  // a value beyond int64) is an error naming the allowed range.
  Result<int64_t> Int(const YAML::Node& n, const std::string& what, int64_t min,
                      int64_t max) const {
    const std::string range =
        " from " + std::to_string(min) + " to " + std::to_string(max);
    if (!n.IsScalar()) return Error(n, what + " must be a number" + range);
    const std::string& t = n.Scalar();
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc() && end == t.data() + t.size() &&
         (v < min || v > max))) {
      return Error(n, what + " must be at least " + std::to_string(min) +
                          " and at most " + std::to_string(max) + ", got " +
                          Quote(t));
    }
    if (ec != std::errc() || end != t.data() + t.size()) {
      return Error(n, what + " must be a number" + range + ", got " + Quote(t));
    }
    return v;
  }

  // true or false, nothing else (not YAML 1.1's yes/no/on/off: a config
  // read by both backy and other tools must mean the same to each).
  Result<bool> Bool(const YAML::Node& n, const std::string& what) const {
    if (n.IsScalar() && n.Scalar() == "true") return true;
    if (n.IsScalar() && n.Scalar() == "false") return false;
    return Error(n, what + " must be true or false" +
                        (n.IsScalar() ? ", got " + Quote(n.Scalar()) : ""));
  }

  // A duration ("30s", "5m", "1h", "1d", "1w") or plain seconds, in
  // [min_s, max_s] seconds.
  Result<int64_t> Duration(const YAML::Node& n, const std::string& what,
                           int64_t min_s, int64_t max_s) const {
    const std::string range = " from " + store::FormatDuration(min_s) + " to " +
                              store::FormatDuration(max_s);
    if (!n.IsScalar()) {
      return Error(n, what + " must be a duration like 1h," + range);
    }
    const std::string& t = n.Scalar();
    const auto d = store::SplitDuration(t);
    if (!d) {
      return Error(n, what + ": bad duration " + Quote(t) +
                          " (use e.g. 90s, 15m, 1h, 1d, 1w)," + range);
    }
    const int64_t v = d->number, mul = d->unit_seconds;
    if (d->too_large || v < min_s / mul || v > max_s / mul || v * mul < min_s ||
        v * mul > max_s) {
      return Error(n, what + " must be at least " +
                          store::FormatDuration(min_s) + " and at most " +
                          store::FormatDuration(max_s) + ", got " + Quote(t));
    }
    return v * mul;
  }

  // For messages: the value as written, cut short and without control
  // characters.
  static std::string Quote(const std::string& t) {
    std::string out = "'";
    for (size_t i = 0; i < t.size() && i < 40; ++i) {
      const unsigned char c = static_cast<unsigned char>(t[i]);
      out += (c < 0x20 || c == 0x7f) ? '?' : t[i];
    }
    if (t.size() > 40) out += "...";
    return out + "'";
  }

  Status Global(const YAML::Node& g, DaemonConfig* c) const {
    if (!g.IsMap()) return Error(g, "'global' must be a mapping");
    Status s = KnownKeys(
        g, "global",
        {"base-dir", "worker-limit", "status-file", "status-interval",
         "log-file", "backoff-base", "backoff-max", "backup-completed-callback",
         "callback-timeout", "copy-to", "copy-schedule", "state-dir",
         "ceph-conf", "client-id", kTelnetKeys[0], kTelnetKeys[1]});
    if (!s.ok()) return s;
    for (const char* key : kTelnetKeys) {
      if (!g[key]) continue;
      c->warnings.push_back(Where(
          g[key], std::string("global.") + key +
                      " is ignored: backy 2.x's telnet console is replaced "
                      "by the HTTP API (api.listen; backy jobs, backy run)"));
    }
    if (g["backup-completed-callback"]) {
      auto v = Str(g["backup-completed-callback"],
                   "global.backup-completed-callback");
      if (!v.ok()) return v.status();
      c->callback = *v;
    }
    if (g["callback-timeout"]) {
      auto v = Duration(g["callback-timeout"], "global.callback-timeout", 1,
                        kMaxCallbackTimeout);
      if (!v.ok()) return v.status();
      c->callback_timeout_s = *v;
    }
    if (g["base-dir"]) {
      auto v = Str(g["base-dir"], "global.base-dir");
      if (!v.ok()) return v.status();
      if (store::RepositoryLocation::IsRados(*v)) {
        auto l = store::RepositoryLocation::Parse(*v + "/x");
        if (!l.ok() || v->ends_with("/")) {
          return Error(g["base-dir"],
                       "global.base-dir must be an absolute path or "
                       "rados:POOL[/NAMESPACE], got " +
                           Quote(*v));
        }
        c->base_dir = *v;
      } else {
        if (v->empty() || (*v)[0] != '/') {
          return Error(g["base-dir"],
                       "global.base-dir must be an absolute path");
        }
        c->base_dir = *v;
        while (c->base_dir.size() > 1 && c->base_dir.back() == '/') {
          c->base_dir.pop_back();
        }
      }
    }
    if (g["state-dir"]) {
      auto v = Str(g["state-dir"], "global.state-dir");
      if (!v.ok()) return v.status();
      if (v->empty() || (*v)[0] != '/') {
        return Error(g["state-dir"],
                     "global.state-dir must be an absolute path");
      }
      c->state_dir = *v;
      while (c->state_dir.size() > 1 && c->state_dir.back() == '/') {
        c->state_dir.pop_back();
      }
    }
    if (g["ceph-conf"]) {
      auto v = Str(g["ceph-conf"], "global.ceph-conf");
      if (!v.ok()) return v.status();
      c->rados.conf_path = *v;
    }
    if (g["client-id"]) {
      auto v = Str(g["client-id"], "global.client-id");
      if (!v.ok()) return v.status();
      c->rados.client_id = *v;
    }
    if (g["worker-limit"]) {
      auto v =
          Int(g["worker-limit"], "global.worker-limit", 1, kMaxWorkerLimit);
      if (!v.ok()) return v.status();
      c->worker_limit = static_cast<int>(*v);
    }
    if (g["status-file"]) {
      auto v = Str(g["status-file"], "global.status-file");
      if (!v.ok()) return v.status();
      c->status_file = *v;
    }
    if (g["status-interval"]) {
      auto v = Duration(g["status-interval"], "global.status-interval", 1,
                        kMaxStatusInterval);
      if (!v.ok()) return v.status();
      c->status_interval_s = *v;
    }
    if (g["log-file"]) {
      auto v = Str(g["log-file"], "global.log-file");
      if (!v.ok()) return v.status();
      c->log_file = *v;
    }
    if (g["backoff-base"]) {
      auto v =
          Duration(g["backoff-base"], "global.backoff-base", 1, kMaxBackoff);
      if (!v.ok()) return v.status();
      c->backoff_base_s = *v;
    }
    if (g["backoff-max"]) {
      auto v = Duration(g["backoff-max"], "global.backoff-max", 1, kMaxBackoff);
      if (!v.ok()) return v.status();
      c->backoff_max_s = *v;
    }
    if (g["copy-to"]) {
      auto v = CopyLocation(g["copy-to"], "global.copy-to", /*base=*/true);
      if (!v.ok()) return v.status();
      c->copy_to = *v;
      global_copy_line_ = g["copy-to"].Mark().line + 1;
    }
    if (g["copy-schedule"]) {
      auto v = CopyScheduleOf(g["copy-schedule"], "global.copy-schedule");
      if (!v.ok()) return v.status();
      c->copy_schedule = *v;
    }
    return Status::OK();
  }

  // A copy-to value: for a base (global.copy-to) an absolute directory or
  // rados:POOL[/NS], for a job an absolute directory or
  // rados:POOL[/NS]/NAME; "false" or "none" for no copy (""). A directory
  // comes back lexically normal, without a trailing '/'.
  Result<std::string> CopyLocation(const YAML::Node& n, const std::string& what,
                                   bool base) const {
    const std::string expected =
        base ? "an absolute directory or rados:POOL[/NAMESPACE]"
             : "an absolute directory or rados:POOL[/NAMESPACE]/NAME";
    if (!n.IsScalar()) return Error(n, what + " must be " + expected);
    const std::string& v = n.Scalar();
    if (v == "false" || v == "none") return std::string();
    if (store::RepositoryLocation::IsRados(v)) {
      auto l = store::RepositoryLocation::Parse(base ? v + "/x" : v);
      if (!l.ok() || (base && v.ends_with("/"))) {
        return Error(n, what + " must be " + expected + ", got " + Quote(v));
      }
      return v;
    }
    if (v.empty() || v[0] != '/') {
      return Error(n, what + " must be " + expected + " (or false/none), got " +
                          Quote(v));
    }
    std::string path = std::filesystem::path(v).lexically_normal().string();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
  }

  // A copy-schedule: TAG: {keep: N} for the tags it changes, and
  // min-keep: N.
  Result<CopySchedule> CopyScheduleOf(const YAML::Node& n,
                                      const std::string& what) const {
    if (!n.IsMap() || n.size() == 0) {
      return Error(n, what + " must map tags to {keep: N} (and min-keep: N)");
    }
    CopySchedule cs;
    for (const auto& t : n) {
      const auto tag = t.first.as<std::string>();
      const std::string where = what + "." + tag;
      if (tag == "min-keep") {
        auto v = Int(t.second, where, 0, kMaxKeep);
        if (!v.ok()) return v.status();
        cs.min_keep = static_cast<uint32_t>(*v);
        continue;
      }
      if (tag.starts_with("manual:") || !store::ValidateTag(tag).ok()) {
        return Error(t.first, "bad tag name '" + tag +
                                  "' (no whitespace, ',' or '/'; 'manual:' "
                                  "tags never expire)");
      }
      if (!t.second.IsMap() || !t.second["keep"]) {
        return Error(t.first, where + " must be {keep: N}");
      }
      if (t.second["interval"]) {
        return Error(t.second["interval"],
                     where +
                         ": only 'keep' (the target has no runs of its "
                         "own: its revisions come from the job's)");
      }
      Status s = KnownKeys(t.second, where, {"keep"});
      if (!s.ok()) return s;
      auto keep = Int(t.second["keep"], where + ".keep", 0, kMaxKeep);
      if (!keep.ok()) return keep.status();
      cs.keep[tag] = static_cast<uint32_t>(*keep);
    }
    return cs;
  }

  // The job's copy-to and copy-schedule, or global.copy-to's BASE/JOB.
  Status JobCopy(const YAML::Node& j, const std::string& name,
                 const std::string& where, const DaemonConfig& c,
                 JobConfig* job) const {
    job->copy_to = c.copy_to.empty() ? "" : CopyTargetUnder(c.copy_to, name);
    copy_lines_[name] = global_copy_line_;
    if (j["copy-to"]) {
      auto v = CopyLocation(j["copy-to"], where + ".copy-to", /*base=*/false);
      if (!v.ok()) return v.status();
      job->copy_to = *v;
      copy_lines_[name] = j["copy-to"].Mark().line + 1;
    }
    CopySchedule copy = c.copy_schedule;
    if (j["copy-schedule"]) {
      if (job->copy_to.empty()) {
        return Error(j["copy-schedule"],
                     where +
                         ".copy-schedule without a copy-to (the job's "
                         "or global.copy-to) does nothing");
      }
      auto v = CopyScheduleOf(j["copy-schedule"], where + ".copy-schedule");
      if (!v.ok()) return v.status();
      for (const auto& [tag, keep] : v->keep) {
        if (!job->schedule.tags.count(tag)) {
          return Error(j["copy-schedule"][tag],
                       where + ".copy-schedule: tag '" + tag +
                           "' is not in schedule '" + job->schedule_name + "'");
        }
      }
      copy = *v;
    }
    if (!job->copy_to.empty()) {
      job->copy_schedule = TargetSchedule(job->schedule, copy);
    }
    return Status::OK();
  }

  Status Api(const YAML::Node& a, DaemonConfig* c) const {
    if (!a.IsMap()) return Error(a, "'api' must be a mapping");
    Status s = KnownKeys(a, "api",
                         {"listen", "token", "token-file", "metrics-public"});
    if (!s.ok()) return s;
    if (a["listen"]) {
      auto v = Str(a["listen"], "api.listen");
      if (!v.ok()) return v.status();
      const std::string& l = *v;
      if (l.starts_with("unix:")) {
        if (l.size() <= 5) return Error(a["listen"], "api.listen: empty path");
      } else if (l.rfind(':') == std::string::npos ||
                 l.rfind(':') + 1 == l.size()) {
        return Error(
            a["listen"],
            "api.listen must be HOST:PORT or unix:PATH, got '" + l + "'");
      }
      c->api.listen = l;
    }
    if (a["token"]) {
      auto v = Str(a["token"], "api.token");
      if (!v.ok()) return v.status();
      c->api.token = *v;
    }
    if (a["token-file"]) {
      auto v = Str(a["token-file"], "api.token-file");
      if (!v.ok()) return v.status();
      c->api.token_file = *v;
    }
    if (a["metrics-public"]) {
      auto v = Bool(a["metrics-public"], "api.metrics-public");
      if (!v.ok()) return v.status();
      c->api.metrics_public = *v;
    }
    if (!c->api.token.empty() && !c->api.token_file.empty()) {
      return Error(a, "api: set either 'token' or 'token-file', not both");
    }
    return Status::OK();
  }

  Status Schedules(const YAML::Node& ss, DaemonConfig* c) const {
    if (!ss.IsMap()) return Error(ss, "'schedules' must be a mapping");
    for (const auto& kv : ss) {
      const auto name = kv.first.as<std::string>();
      const YAML::Node& tags = kv.second;
      if (!tags.IsMap() || tags.size() == 0) {
        return Error(kv.first, "schedule '" + name +
                                   "' must map tags to {interval, keep}");
      }
      store::Schedule sched;
      for (const auto& t : tags) {
        const auto tag = t.first.as<std::string>();
        const std::string where = "schedules." + name + "." + tag;
        if (tag == "min-keep" && t.second.IsScalar()) {
          auto v = Int(t.second, where, 0, kMaxKeep);
          if (!v.ok()) return v.status();
          sched.min_keep = static_cast<uint32_t>(*v);
          continue;
        }
        if (tag.starts_with("manual:") || !store::ValidateTag(tag).ok()) {
          return Error(t.first, "bad tag name '" + tag +
                                    "' (no whitespace, ',' or '/'; 'manual:' "
                                    "tags are never scheduled)");
        }
        if (!t.second.IsMap()) {
          return Error(t.first, where + " must be {interval: ..., keep: N}");
        }
        Status s = KnownKeys(t.second, where, {"interval", "keep"});
        if (!s.ok()) return s;
        if (!t.second["interval"] || !t.second["keep"]) {
          return Error(t.first, where + " needs 'interval' and 'keep'");
        }
        auto interval = Duration(t.second["interval"], where + ".interval", 1,
                                 kMaxInterval);
        if (!interval.ok()) return interval.status();
        auto keep = Int(t.second["keep"], where + ".keep", 0, kMaxKeep);
        if (!keep.ok()) return keep.status();
        sched.tags[tag] = {*interval, static_cast<uint32_t>(*keep)};
      }
      if (sched.tags.empty()) {
        return Error(kv.first, "schedule '" + name + "' has no tags");
      }
      c->schedules[name] = sched;
    }
    return Status::OK();
  }

  Status Jobs(const YAML::Node& js, const std::string& config_dir,
              DaemonConfig* c) const {
    if (!js.IsMap()) return Error(js, "'jobs' must be a mapping");
    for (const auto& kv : js) {
      const auto name = kv.first.as<std::string>();
      if (!IsJobNameSpelling(name)) {
        return Error(kv.first, "bad job name " + Quote(name) +
                                   " (letters, digits, '.', '_', '-', not "
                                   "first '.' or '-'; it names the "
                                   "repository directory)");
      }
      if (name.size() > NAME_MAX) {
        return Error(kv.first, "job name " + Quote(name) + " is longer than " +
                                   std::to_string(NAME_MAX) + " bytes");
      }
      for (const char* reserved : kReservedJobNames) {
        if (name == reserved) {
          return Error(kv.first, "job name '" + name +
                                     "' is reserved: the scheduler keeps its "
                                     "own file " +
                                     reserved + " in base-dir");
        }
      }
      job_lines_[name] = kv.first.Mark().line + 1;
      const YAML::Node& j = kv.second;
      const std::string where = "jobs." + name;
      if (!j.IsMap()) return Error(kv.first, where + " must be a mapping");
      Status s = KnownKeys(j, where,
                           {"schedule", "source", "copy-to", "copy-schedule"});
      if (!s.ok()) return s;
      JobConfig job;
      if (!j["schedule"]) return Error(kv.first, where + " needs 'schedule'");
      auto sched = Str(j["schedule"], where + ".schedule");
      if (!sched.ok()) return sched.status();
      auto it = c->schedules.find(*sched);
      if (it == c->schedules.end()) {
        return Error(j["schedule"],
                     where + ": unknown schedule '" + *sched + "'");
      }
      job.schedule_name = *sched;
      job.schedule = it->second;
      const YAML::Node& src = j["source"];
      if (!src) return Error(kv.first, where + " needs 'source'");
      if (!src.IsMap()) return Error(src, where + ".source must be a mapping");
      for (const auto& p : src) {
        const auto key = p.first.as<std::string>();
        // backy 2.x wrote `consul_acl_token: null` for a VM without one.
        if (p.second.IsNull()) continue;
        if (!p.second.IsScalar()) {
          return Error(p.second,
                       where + ".source." + key + " must be a string");
        }
        job.source[key] = p.second.as<std::string>();
      }
      Status valid = ValidateSourceSection(job.source);
      if (!valid.ok()) return Error(src, where + ": " + valid.Message());
      Legacy2xSource(src, where, &job.source, c);
      if (job.source.at("type") == "file") {
        std::filesystem::path f(job.source["filename"]);
        if (f.is_relative()) {
          job.source["filename"] =
              (std::filesystem::path(config_dir) / f).lexically_normal();
        }
      }
      s = JobCopy(j, name, where, *c, &job);
      if (!s.ok()) return s;
      c->jobs[name] = std::move(job);
    }
    return Status::OK();
  }

  // The keys of a backy 2.x source section that mean nothing here: a
  // `flyingcircus` source is the ceph-rbd image it names (without the
  // freeze through Consul; its token, a secret, is dropped), a file
  // source's `cow` has no equivalent. Each adds one warning.
  void Legacy2xSource(const YAML::Node& src, const std::string& where,
                      std::map<std::string, std::string>* source,
                      DaemonConfig* c) const {
    if (source->at("type") == kFlyingCircusType) {
      const std::string vm =
          source->count("vm") ? " of VM " + Quote(source->at("vm")) : "";
      c->warnings.push_back(Where(
          src, where +
                   ": source type 'flyingcircus' is backed up as ceph-rbd " +
                   source->at("pool") + "/" + source->at("image") +
                   " without the Consul-driven filesystem freeze" + vm +
                   " (the snapshot is crash-consistent)"));
      (*source)["type"] = "ceph-rbd";
      source->erase("vm");
      source->erase("consul_acl_token");
    }
    if (source->at("type") == "file" && source->count("cow")) {
      c->warnings.push_back(Where(
          src["cow"], where + ".source.cow (backy 2.x's copy-on-write "
                              "image files) has no effect here; ignored"));
      source->erase("cow");
    }
  }

  Result<DaemonConfig> Parse(const std::string& text) const {
    DaemonConfig c;
    c.path = path_;
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      return Status::InvalidArgument(
          path_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    try {
      if (!root.IsMap()) {
        return Status::InvalidArgument(path_ +
                                       ":1: expected a mapping with "
                                       "global, api, schedules, jobs");
      }
      Status s = KnownKeys(root, "the top level",
                           {"global", "api", "schedules", "jobs"});
      if (!s.ok()) return s;
      if (root["global"]) {
        s = Global(root["global"], &c);
        if (!s.ok()) return s;
      }
      if (root["api"]) {
        s = Api(root["api"], &c);
        if (!s.ok()) return s;
      }
      if (root["schedules"]) {
        s = Schedules(root["schedules"], &c);
        if (!s.ok()) return s;
      }
      if (root["jobs"]) {
        const auto dir =
            std::filesystem::absolute(path_).parent_path().string();
        s = Jobs(root["jobs"], dir, &c);
        if (!s.ok()) return s;
      }
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument(
          path_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!state_dir_.empty()) c.state_dir = state_dir_;
    if (!c.RadosBase()) {
      if (!c.state_dir.empty() && c.state_dir != c.base_dir) {
        return Status::InvalidArgument(path_ +
                                       ":1: global.state-dir (or --state-dir) "
                                       "is for a rados: base-dir (a directory "
                                       "base-dir is its own state-dir)");
      }
      c.state_dir = c.base_dir;
    } else if (c.state_dir.empty()) {
      c.state_dir = kDefaultStateDir;
    }
    // backy 2.x ran the callback from base-dir (here: the state-dir).
    if (!c.callback.empty() && c.callback[0] != '/' &&
        c.callback.find('/') != std::string::npos) {
      c.callback = (std::filesystem::path(c.state_dir) / c.callback)
                       .lexically_normal()
                       .string();
    }
    if (c.status_file.empty()) c.status_file = c.state_dir + "/status";
    if (c.log_file.empty()) c.log_file = c.DefaultLogFile();
    if (c.api.listen.empty())
      c.api.listen = "unix:" + c.state_dir + "/api.sock";
    Status s = Collisions(c);
    if (!s.ok()) return s;
    s = CopyCollisions(c);
    if (!s.ok()) return s;
    return c;
  }

  // The scheduler's own files, for collision checks.
  static std::vector<std::pair<std::string, std::string>> OwnFiles(
      const DaemonConfig& c) {
    std::vector<std::pair<std::string, std::string>> own = {
        {"the status file (global.status-file)", c.status_file},
        {"the metrics file (next to global.status-file)", c.MetricsFile()},
        {"the lock", c.LockFile()}};
    if (c.log_file != "-")
      own.push_back({"the log (global.log-file)", c.log_file});
    if (c.api.listen.starts_with("unix:")) {
      own.push_back({"the API socket (api.listen)", c.api.listen.substr(5)});
    }
    return own;
  }

  // `a` is `b` or lies under it (lexically: a symlink is not followed).
  static bool Within(const std::filesystem::path& a,
                     const std::filesystem::path& b) {
    const auto rel = a.lexically_relative(b);
    return a == b || (!rel.empty() && *rel.begin() != "..");
  }

  // A copy target must be no job's repository, lie in none and hold none
  // (a copy into the source, or an expire of the target, would then eat
  // the source), hold none of the scheduler's files, and be no other job's
  // target.
  Status CopyCollisions(const DaemonConfig& c) const {
    namespace fs = std::filesystem;
    const auto own = OwnFiles(c);
    std::map<std::string, std::string> rados_targets;  // location -> job
    for (const auto& entry : c.jobs) {
      // Named, not a structured binding: clang (the fuzz build) refuses
      // to capture those in the lambda below.
      const std::string& name = entry.first;
      const auto& job = entry.second;
      if (job.copy_to.empty()) continue;
      auto it = copy_lines_.find(name);
      const int line = it == copy_lines_.end() ? 1 : it->second;
      auto refuse = [&](const std::string& why) {
        return Status::InvalidArgument(path_ + ":" + std::to_string(line) +
                                       ": copy-to of job '" + name + "' (" +
                                       job.copy_to + ") " + why);
      };
      if (store::RepositoryLocation::IsRados(job.copy_to)) {
        if (job.copy_to == c.JobDir(name))
          return refuse("is its own repository");
        auto [other, fresh] = rados_targets.emplace(job.copy_to, name);
        if (!fresh)
          return refuse("is the target of job '" + other->second + "' too");
        continue;
      }
      const fs::path target = fs::path(job.copy_to);
      for (const auto& [other, other_job] : c.jobs) {
        const fs::path dir = fs::path(c.JobDir(other)).lexically_normal();
        const std::string whose = other == name
                                      ? "its own repository"
                                      : "the repository of job '" + other + "'";
        if (target == dir) return refuse("is " + whose);
        if (Within(target, dir)) return refuse("is inside " + whose);
        if (Within(dir, target)) return refuse("holds " + whose);
        if (other == name || other_job.copy_to.empty() ||
            store::RepositoryLocation::IsRados(other_job.copy_to)) {
          continue;
        }
        const fs::path theirs = fs::path(other_job.copy_to);
        if (Within(target, theirs) || Within(theirs, target)) {
          return refuse("overlaps the copy-to of job '" + other + "' (" +
                        other_job.copy_to + ")");
        }
      }
      for (const auto& [what, file] : own) {
        const fs::path f = fs::path(file).lexically_normal();
        if (Within(f, target) || Within(target, f)) {
          return refuse("collides with " + what + " " + f.string());
        }
      }
    }
    return Status::OK();
  }

  // A job's repository directory must not be, nor contain, a file the
  // scheduler itself writes.
  Status Collisions(const DaemonConfig& c) const {
    namespace fs = std::filesystem;
    const auto own = OwnFiles(c);
    if (c.state_dir.size() + 1 + NAME_MAX + 64 > PATH_MAX) {
      return Status::InvalidArgument(path_ + ":1: global.base-dir is too long");
    }
    for (const auto& [name, job] : c.jobs) {
      const fs::path dir = fs::path(c.JobStateDir(name)).lexically_normal();
      for (const auto& [what, file] : own) {
        const fs::path f = fs::path(file).lexically_normal();
        const auto rel = f.lexically_relative(dir);
        if (f == dir || (!rel.empty() && *rel.begin() != "..")) {
          auto it = job_lines_.find(name);
          const int line = it == job_lines_.end() ? 1 : it->second;
          return Status::InvalidArgument(path_ + ":" + std::to_string(line) +
                                         ": job '" + name + "' collides with " +
                                         what + " " + f.string() +
                                         ": rename the job or move the file");
        }
      }
    }
    return Status::OK();
  }

 private:
  std::string path_;
  std::string state_dir_;  // --state-dir, overriding global.state-dir
  mutable std::map<std::string, int> job_lines_;  // job name -> line
  // job name -> the line of the copy-to that names its target
  mutable std::map<std::string, int> copy_lines_;
  mutable int global_copy_line_ = 1;
};

}  // namespace

std::string DaemonConfig::MetricsFile() const {
  std::filesystem::path dir = std::filesystem::path(status_file).parent_path();
  if (dir.empty()) dir = ".";
  return (dir / "backy.prom").string();
}

std::vector<std::string> DaemonConfig::GlobalArgs() const {
  std::vector<std::string> args;
  if (!RadosBase()) return args;
  if (!rados.conf_path.empty())
    args.insert(args.end(), {"--ceph-conf", rados.conf_path});
  if (!rados.client_id.empty())
    args.insert(args.end(), {"--client-id", rados.client_id});
  return args;
}

std::string CopyTargetUnder(const std::string& base, const std::string& job) {
  return base.ends_with("/") ? base + job : base + "/" + job;
}

store::Schedule TargetSchedule(const store::Schedule& schedule,
                               const CopySchedule& copy) {
  store::Schedule target = schedule;
  for (const auto& [tag, keep] : copy.keep) {
    auto it = target.tags.find(tag);
    if (it != target.tags.end()) it->second.keep = keep;
  }
  if (copy.min_keep) target.min_keep = *copy.min_keep;
  return target;
}

bool IsJobNameSpelling(std::string_view name) {
  return !name.empty() && name[0] != '.' && name[0] != '-' &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyz"
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

Result<DaemonConfig> ParseDaemonConfig(const std::string& text,
                                       const std::string& path,
                                       const std::string& state_dir) {
  return Parser(path, state_dir).Parse(text);
}

Result<DaemonConfig> LoadDaemonConfig(const std::string& path,
                                      const std::string& state_dir) {
  std::string text;
  Status s = store::ReadWholeFile(path, &text);
  if (!s.ok()) return s.WithContext("reading the config");
  auto c = ParseDaemonConfig(text, path, state_dir);
  if (!c.ok()) return c;
  if (!c->api.token_file.empty()) {
    std::string token;
    s = store::ReadWholeFile(c->api.token_file, &token);
    if (!s.ok()) return s.WithContext("reading api.token-file");
    const auto end = token.find_first_of("\r\n");
    if (end != std::string::npos) token.resize(end);
    if (token.empty()) {
      return Status::InvalidArgument("api.token-file is empty",
                                     c->api.token_file);
    }
    c->api.token = token;
  }
  return c;
}

}  // namespace backy::backup::scheduler
