#include "backup/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace backy::backup {
namespace {

Result<spdlog::sink_ptr> MakeFileSink(const std::string& path,
                                      spdlog::level::level_enum level) {
  try {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
    file->set_pattern("%Y-%m-%d %H:%M:%S.%e [%P] %l %v");
    file->set_level(level);
    return spdlog::sink_ptr(std::move(file));
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError("cannot open log file " + path + ": " + e.what());
  }
}

}  // namespace

void SetupLogging(bool verbose, const std::string& logfile) {
  const auto level = verbose ? spdlog::level::debug : spdlog::level::info;
  std::vector<spdlog::sink_ptr> sinks;
  // Colours only on a terminal (spdlog's automatic mode), and never with a
  // non-empty NO_COLOR (no-color.org).
  const char* no_color = std::getenv("NO_COLOR");
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      no_color != nullptr && *no_color != '\0' ? spdlog::color_mode::never
                                               : spdlog::color_mode::automatic);
  console->set_pattern(verbose ? "%H:%M:%S.%e %^%l%$ %v" : "%^%v%$");
  console->set_level(level);
  sinks.push_back(console);
  if (!logfile.empty()) {
    auto file = MakeFileSink(logfile, level);
    if (file.ok()) {
      sinks.push_back(*file);
    } else {
      std::fprintf(stderr, "backy: %s\n", file.status().Message().c_str());
    }
  }
  auto logger =
      std::make_shared<spdlog::logger>("backy", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

Status AddLogFile(const std::string& path, spdlog::level::level_enum level) {
  auto file = MakeFileSink(path, level);
  if (!file.ok()) return file.status();
  spdlog::default_logger()->sinks().push_back(*file);
  return Status::OK();
}

}  // namespace backy::backup
