#include "backup/logging.h"

#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

#include "store/filename.h"
#include "store/repository.h"

namespace backy::backup {
namespace {

constexpr const char* kFilePattern = "%Y-%m-%d %H:%M:%S.%e [%P] %l %v";

// open(2) of a log file: appended to, never through a symlink, never a
// FIFO or device (O_NONBLOCK so that opening a FIFO cannot hang), created
// owner-only and made so when it is ours and open to others.
Result<int> OpenLogFd(const std::string& path) {
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                            O_NONBLOCK | O_NOCTTY,
                        0600);
  if (fd < 0) {
    const int err = errno;
    return Status::IOError(
        "cannot open log file " + path + ": " +
        (err == ELOOP ? "it is a symlink (refused)" : std::strerror(err)));
  }
  struct stat st;
  std::string why;
  if (::fstat(fd, &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (st.st_uid == ::geteuid() && (st.st_mode & 0077) != 0 &&
             ::fchmod(fd, 0600) != 0) {
    why = std::string("chmod: ") + std::strerror(errno);
  }
  if (!why.empty()) {
    ::close(fd);
    return Status::IOError("cannot open log file " + path + ": " + why);
  }
  ::fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
  return fd;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A log file known by its path: each line one write(2) with O_APPEND, so
// lines of several processes appending to one file (a job's log) do not
// mix; Reopen() swaps in a descriptor of the file now at the path.
class FileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static Result<std::shared_ptr<FileSink>> Open(const std::string& path) {
    auto fd = OpenLogFd(path);
    if (!fd.ok()) return fd.status();
    auto sink = std::shared_ptr<FileSink>(new FileSink(path, *fd));
    sink->set_pattern(kFilePattern);
    return sink;
  }
  ~FileSink() override { ::close(fd_); }

  const std::string& path() const { return path_; }

  Status Reopen() {
    auto fd = OpenLogFd(path_);
    if (!fd.ok()) return fd.status();
    std::lock_guard<std::mutex> lock(mutex_);
    ::close(fd_);
    fd_ = *fd;
    return Status::OK();
  }

  // The file this sink writes to; false when fstat fails.
  bool Identity(dev_t* dev, ino_t* ino) {
    std::lock_guard<std::mutex> lock(mutex_);
    struct stat st;
    if (::fstat(fd_, &st) != 0) return false;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return true;
  }
  bool Is(dev_t dev, ino_t ino) {
    dev_t d;
    ino_t i;
    return Identity(&d, &i) && d == dev && i == ino;
  }

  // Whether a line could not be written, and why (errno).
  bool failed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failed_;
  }
  int last_errno() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errno_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (!WriteAll(fd_, buf.data(), buf.size())) {
      failed_ = true;
      errno_ = errno;
    }
  }
  void flush_() override {}

 private:
  FileSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  int fd_;
  bool failed_ = false;
  int errno_ = 0;
};

// The syslog priority of a line for the journal ("<3>" error, "<4>"
// warning, "<6>" info, "<7>" debug), which journald strips and keeps as the
// line's priority.
class JournalPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char* p = "<6>";
    switch (msg.level) {
      case spdlog::level::critical:
        p = "<2>";
        break;
      case spdlog::level::err:
        p = "<3>";
        break;
      case spdlog::level::warn:
        p = "<4>";
        break;
      case spdlog::level::debug:
      case spdlog::level::trace:
        p = "<7>";
        break;
      default:
        break;
    }
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriorityFlag>();
  }
};

// Every FileSink of the default logger, by the path it was opened with
// (for ReopenLogFiles and LogToRepository). Guarded by g_mu.
std::mutex g_mu;
std::vector<std::shared_ptr<FileSink>> g_files;

std::shared_ptr<FileSink> FindFileSink(const spdlog::sink_ptr& sink) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (const auto& f : g_files) {
    if (f == sink) return f;
  }
  return nullptr;
}

spdlog::sink_ptr MakeConsole(bool verbose) {
  // Colours only on a terminal (spdlog's automatic mode), and never with a
  // non-empty NO_COLOR (no-color.org).
  const char* no_color = std::getenv("NO_COLOR");
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      no_color != nullptr && *no_color != '\0' ? spdlog::color_mode::never
                                               : spdlog::color_mode::automatic);
  console->set_pattern(verbose ? "%H:%M:%S.%e %^%l%$ %v" : "%^%v%$");
  return console;
}

// LogToRepository, with the repository log `path` ("": none).
void LogCommandResult(const std::string& path, const std::string& line,
                      bool on_stderr) {
  auto repo_log = path.empty() ? Result<std::shared_ptr<FileSink>>(nullptr)
                               : FileSink::Open(path);
  dev_t dev = 0;
  ino_t ino = 0;
  const bool known =
      repo_log.ok() && *repo_log && (*repo_log)->Identity(&dev, &ino);
  std::vector<spdlog::sink_ptr> sinks;
  bool through_l = false;  // -l names the repository log: write it once
  for (const auto& s : spdlog::default_logger()->sinks()) {
    auto f = FindFileSink(s);
    if (!f && !on_stderr) continue;  // stderr
    if (f && known && f->Is(dev, ino)) through_l = true;
    sinks.push_back(s);
  }
  if (repo_log.ok() && *repo_log && !through_l) sinks.push_back(*repo_log);
  spdlog::logger logger("repository", sinks.begin(), sinks.end());
  logger.set_level(spdlog::level::trace);
  logger.info(line);
  if (!repo_log.ok()) {
    std::fprintf(stderr, "backy: warning: %s\n",
                 repo_log.status().Message().c_str());
  } else if (*repo_log && (*repo_log)->failed()) {
    std::fprintf(stderr, "backy: warning: cannot write the log %s: %s\n",
                 path.c_str(), std::strerror((*repo_log)->last_errno()));
  }
}

}  // namespace

std::string RepositoryLogName(const std::string& dir) {
  return store::RepositoryLogFileName(dir);
}

void SetupLogging(bool verbose, const std::string& logfile) {
  const auto level = verbose ? spdlog::level::debug : spdlog::level::info;
  std::vector<spdlog::sink_ptr> sinks;
  auto console = MakeConsole(verbose);
  console->set_level(level);
  sinks.push_back(console);
  std::vector<std::shared_ptr<FileSink>> files;
  if (!logfile.empty()) {
    auto file = FileSink::Open(logfile);
    if (file.ok()) {
      (*file)->set_level(level);
      sinks.push_back(*file);
      files.push_back(*file);
    } else {
      std::fprintf(stderr, "backy: %s\n", file.status().Message().c_str());
    }
  }
  auto logger =
      std::make_shared<spdlog::logger>("backy", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  std::lock_guard<std::mutex> lock(g_mu);
  g_files = std::move(files);
}

std::string ChooseDaemonLog(const std::string& cli_logfile,
                            const std::string& config_log_file,
                            const std::string& default_log_file, bool journal) {
  if (!cli_logfile.empty()) return cli_logfile;
  if (config_log_file == "-") return "";
  if (!config_log_file.empty() && config_log_file != default_log_file) {
    return config_log_file;
  }
  return journal ? "" : default_log_file;
}

bool MatchesJournalStream(const char* journal_stream, uint64_t dev,
                          uint64_t ino) {
  if (journal_stream == nullptr) return false;
  const std::string_view v(journal_stream);
  const size_t colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  uint64_t d = 0, i = 0;
  const char* end = v.data() + v.size();
  auto r1 = std::from_chars(v.data(), v.data() + colon, d);
  auto r2 = std::from_chars(v.data() + colon + 1, end, i);
  if (colon == 0 || r1.ec != std::errc() || r1.ptr != v.data() + colon ||
      colon + 1 == v.size() || r2.ec != std::errc() || r2.ptr != end) {
    return false;
  }
  return d == dev && i == ino;
}

bool StderrIsJournal() {
  struct stat st;
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return MatchesJournalStream(std::getenv("JOURNAL_STREAM"), st.st_dev,
                              st.st_ino);
}

Status UseOnlyDaemonLog(const std::string& file,
                        spdlog::level::level_enum level, bool journal) {
  auto logger = spdlog::default_logger();
  std::shared_ptr<FileSink> keep;
  if (!file.empty()) {
    for (const auto& s : logger->sinks()) {
      auto f = FindFileSink(s);
      if (f && f->path() == file) keep = f;
    }
    if (!keep) {
      auto opened = FileSink::Open(file);
      if (!opened.ok()) return opened.status();
      keep = *opened;
    }
    keep->set_level(level);
    logger->sinks().assign({keep});
  } else if (journal) {
    // journald stamps the time; the priority prefix keeps the level.
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPriorityFlag>('*').set_pattern("%*%v");
    console->set_formatter(std::move(formatter));
    console->set_level(level);
    logger->sinks().assign({console});
  } else {
    auto console = MakeConsole(level <= spdlog::level::debug);
    console->set_level(level);
    logger->sinks().assign({console});
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_files.clear();
  if (keep) g_files.push_back(keep);
  return Status::OK();
}

Status ReopenLogFiles() {
  std::vector<std::shared_ptr<FileSink>> files;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    files = g_files;
  }
  Status first;
  for (const auto& f : files) {
    Status s = f->Reopen();
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status AppendToLog(const std::string& path, spdlog::level::level_enum level,
                   const std::string& text) {
  auto file = FileSink::Open(path);
  if (!file.ok()) return file.status();
  // A logger of its own: the line goes to this file only.
  spdlog::logger logger("log", *file);
  logger.set_level(spdlog::level::trace);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos || pos == 0) {
      logger.log(level, std::string_view(text).substr(pos, end - pos));
    }
    pos = end + 1;
  }
  if ((*file)->failed()) {
    return Status::IOError("cannot write the log " + path + ": " +
                           std::strerror((*file)->last_errno()));
  }
  return Status::OK();
}

void LogToRepository(const std::string& dir, const std::string& line,
                     bool on_stderr) {
  LogCommandResult(RepositoryLogName(dir), line, on_stderr);
}

void LogToRepository(const store::Repository& repo, const std::string& line,
                     bool on_stderr) {
  LogCommandResult(repo.LogFile(), line, on_stderr);
}

}  // namespace backy::backup
