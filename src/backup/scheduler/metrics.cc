#include "backup/scheduler/metrics.h"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/stat.h>

#include <filesystem>

#include "store/fs_util.h"

namespace backy::backup::scheduler {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Registry;

Family<Gauge>& GaugeFamily(Registry& registry, const char* name,
                           const char* help) {
  return BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

std::string MetricsText(const StatusDoc& doc) {
  Registry registry;
  auto& last_success = GaugeFamily(
      registry, "backy_last_success_timestamp_seconds",
      "Time of the job's newest revision (its last successful backup)");
  auto& last_duration =
      GaugeFamily(registry, "backy_last_duration_seconds",
                  "Duration of the job's last run, whatever its result");
  auto& bytes_read = GaugeFamily(registry, "backy_last_bytes_read",
                                 "Bytes the newest revision read from the "
                                 "source");
  auto& bytes_written =
      GaugeFamily(registry, "backy_last_bytes_written",
                  "Bytes the newest revision wrote to new chunks");
  auto& revisions = GaugeFamily(registry, "backy_revisions",
                                "Revisions in the job's repository");
  auto& sla_ok = GaugeFamily(
      registry, "backy_sla_ok",
      "1 when the newest revision is within the SLA (1.5 x the smallest "
      "interval), else 0");
  auto& failures = BuildCounter()
                       .Name("backy_failures_total")
                       .Help(
                           "Failed runs of the job since the scheduler "
                           "started")
                       .Register(registry);
  auto& repo_bytes =
      GaugeFamily(registry, "backy_repository_bytes",
                  "Bytes allocated on disk to the job's repository");
  auto& last_copy = GaugeFamily(
      registry, "backy_last_copy_success_timestamp_seconds",
      "End of the job's last successful copy to its copy-to (since the "
      "scheduler started)");
  auto& copy_failures = BuildCounter()
                            .Name("backy_copy_failures_total")
                            .Help(
                                "Failed copies of the job to its copy-to "
                                "since the scheduler started")
                            .Register(registry);
  GaugeFamily(registry, "backy_jobs_running", "Jobs running now")
      .Add({})
      .Set(doc.running);
  GaugeFamily(registry, "backy_jobs_queued",
              "Jobs due now that wait for a free worker")
      .Add({})
      .Set(doc.queued);
  for (const auto& [name, j] : doc.jobs) {
    const prometheus::Labels labels = {{"job", name}};
    if (j.newest_revision_s > 0) {
      last_success.Add(labels).Set(static_cast<double>(j.newest_revision_s));
      bytes_read.Add(labels).Set(static_cast<double>(j.newest_bytes_read));
      bytes_written.Add(labels).Set(
          static_cast<double>(j.newest_bytes_written));
    }
    if (j.last_result != "none")
      last_duration.Add(labels).Set(j.last_duration_s);
    revisions.Add(labels).Set(static_cast<double>(j.revisions));
    sla_ok.Add(labels).Set(j.sla == "ok" ? 1 : 0);
    failures.Add(labels).Increment(static_cast<double>(j.failures_total));
    repo_bytes.Add(labels).Set(static_cast<double>(j.repository_bytes));
    if (j.last_copy_success_s > 0) {
      last_copy.Add(labels).Set(static_cast<double>(j.last_copy_success_s));
    }
    if (!j.copy_to.empty()) {
      copy_failures.Add(labels).Increment(
          static_cast<double>(j.copy_failures_total));
    }
  }
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

Status WriteMetricsFile(const std::string& path, const StatusDoc& doc) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return store::WriteFileAtomic(path, MetricsText(doc), dir);
}

Result<uint64_t> DiskBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    // A file removed meanwhile (a purge) just counts no more.
  }
  if (ec) return Status::FromErrno(ec.value(), "disk usage", dir);
  return total;
}

std::string FormatPerfDatum(const PerfDatum& d) {
  bool plain = !d.label.empty();
  std::string label;
  for (char c : d.label) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                      c == '-';
    plain = plain && word;
    if (c == '=') {
      label += '_';
    } else {
      label += c;
      if (c == '\'') label += c;
    }
  }
  if (!plain) label = "'" + label + "'";
  auto number = [](const std::optional<double>& v) {
    return v ? fmt::format("{}", *v) : std::string();
  };
  std::vector<std::string> fields = {d.value ? number(d.value) + d.uom : "U",
                                     d.warn, d.crit, number(d.min),
                                     number(d.max)};
  while (fields.size() > 1 && fields.back().empty()) fields.pop_back();
  std::string out = label + "=" + fields[0];
  for (size_t i = 1; i < fields.size(); ++i) out += ";" + fields[i];
  return out;
}

std::string FormatPluginOutput(const std::string& summary,
                               const std::vector<PerfDatum>& perf,
                               const std::vector<std::string>& long_lines,
                               const std::vector<PerfDatum>& long_perf) {
  auto text = [](std::string t) {
    for (char& c : t) {
      if (c == '|' || c == '\n') c = c == '|' ? '/' : ' ';
    }
    return t;
  };
  std::vector<PerfDatum> first = perf;
  if (long_lines.empty()) {
    first.insert(first.end(), long_perf.begin(), long_perf.end());
  }
  std::string out = text(summary);
  for (size_t i = 0; i < first.size(); ++i) {
    out += (i == 0 ? " | " : " ") + FormatPerfDatum(first[i]);
  }
  out += "\n";
  for (size_t i = 0; i < long_lines.size(); ++i) {
    out += text(long_lines[i]);
    if (i + 1 == long_lines.size() && !long_perf.empty()) {
      out += " | " + FormatPerfDatum(long_perf[0]);
      for (size_t j = 1; j < long_perf.size(); ++j) {
        out += "\n" + FormatPerfDatum(long_perf[j]);
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace backy::backup::scheduler
