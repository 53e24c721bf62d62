#include "store/revision_pin.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <utility>

#include "store/filename.h"
#include "store/legacy_repository.h"
#include "store/repository.h"

namespace backy::store {

namespace {

// A pin file holds two short YAML scalars; anything longer is not ours.
constexpr size_t kMaxPinFileSize = 4096;

std::string NewToken() {
  std::random_device rd;  // the kernel's random numbers
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  while (token.size() < kPinTokenLength) {
    uint32_t v = rd();
    for (int i = 0; i < 8 && token.size() < kPinTokenLength; ++i, v >>= 4) {
      token += kHex[v & 0xf];
    }
  }
  return token;
}

std::string PinNote(const std::string& revision_id, std::string_view holder) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "revision" << YAML::Value << revision_id;
  e << YAML::Key << "holder" << YAML::Value << std::string(holder);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

// Best effort: the note only names the pin in messages.
void ReadPinNote(int fd, std::string* revision_id, std::string* holder) {
  char buf[kMaxPinFileSize];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return;
  try {
    YAML::Node node = YAML::Load(std::string(buf, static_cast<size_t>(n)));
    if (!node.IsMap()) return;
    *revision_id = node["revision"].as<std::string>("");
    *holder = node["holder"].as<std::string>("");
  } catch (const YAML::Exception&) {
    // Damaged note: the pin still counts, by its lock and its index link.
  }
}

std::string Describe(const PinScan::Live& pin) {
  return "revision " + (pin.revision_id.empty() ? "?" : pin.revision_id) +
         ", held by " + (pin.holder.empty() ? "?" : pin.holder);
}

bool IsReadOnlyError(int err) {
  return err == EROFS || err == EACCES || err == EPERM;
}

// Opens DIR/pins/ without following a symlink.
Result<UniqueFd> OpenPinsDir(const std::string& pins) {
  UniqueFd fd(
      ::open(pins.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Status::Corruption("not a directory (a symlink or a file)", pins);
    }
    return Status::FromErrno(errno, "open directory", pins);
  }
  return fd;
}

// lstat of `name` in `dirfd`: its type, or 0 when it is gone.
mode_t TypeAt(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return st.st_mode & S_IFMT;
}

}  // namespace

RevisionPin::RevisionPin(RevisionPin&& o) noexcept
    : dir_(std::move(o.dir_)),
      revision_id_(std::exchange(o.revision_id_, {})),
      legacy_(o.legacy_),
      pin_path_(std::exchange(o.pin_path_, {})),
      link_path_(std::exchange(o.link_path_, {})),
      pin_fd_(std::move(o.pin_fd_)),
      lock_(std::move(o.lock_)),
      keeper_(std::move(o.keeper_)) {}

RevisionPin& RevisionPin::operator=(RevisionPin&& o) noexcept {
  if (this != &o) {
    Release();
    dir_ = std::move(o.dir_);
    revision_id_ = std::exchange(o.revision_id_, {});
    legacy_ = o.legacy_;
    pin_path_ = std::exchange(o.pin_path_, {});
    link_path_ = std::exchange(o.link_path_, {});
    pin_fd_ = std::move(o.pin_fd_);
    lock_ = std::move(o.lock_);
    keeper_ = std::move(o.keeper_);
  }
  return *this;
}

void RevisionPin::Release() {
  if (pin_fd_.get() >= 0) {
    // Unlock first: a purge that then finds the index link gone knows the
    // pin was let go (and is not a live pin it cannot account for).
    // LOCK_UN also frees the lock when a forked child shares the file.
    ::flock(pin_fd_.get(), LOCK_UN);
    pin_fd_ = UniqueFd();
    ::unlink(link_path_.c_str());
    ::unlink(pin_path_.c_str());
  }
  lock_ = FileLock();
  keeper_.reset();
  revision_id_.clear();
  pin_path_.clear();
  link_path_.clear();
}

Result<RevisionPin> RevisionPin::Create(const std::string& dir,
                                        const Revision& revision,
                                        std::string_view holder) {
  RevisionPin pin;
  pin.dir_ = dir;
  pin.legacy_ = revision.legacy;
  if (revision.legacy) {
    auto lock = FileLock::AcquireWaiting(
        LegacyPurgeLockFileName(dir), FileLock::Mode::kShared, [&] {
          spdlog::info(
              "waiting for a backy 2.x purge of {} to finish ({} is locked)",
              dir, LegacyPurgeLockFileName(dir));
        });
    if (!lock.ok()) return lock.status();
    pin.lock_ = std::move(*lock);
    pin.revision_id_ = revision.id;
    return pin;
  }
  auto purge = FileLock::AcquireWaiting(
      PurgeLockFileName(dir), FileLock::Mode::kShared,
      [&] { spdlog::info("waiting for a purge of {} to finish", dir); });
  if (!purge.ok()) return purge.status();
  const std::string index = IndexFileName(dir, revision.id);
  // Forget removes the metadata first: an index missing while the
  // metadata is there is damage, not a forget.
  auto removed = [&] {
    struct stat rst;
    if (::lstat(RevisionFileName(dir, revision.id).c_str(), &rst) == 0) {
      return Status::Corruption(
          "index of revision " + revision.id + " is missing", index);
    }
    return Status::NotFound(
        "revision was removed (forget or expire) before it could be read",
        revision.id);
  };
  struct stat st;
  if (::lstat(index.c_str(), &st) != 0) {
    if (errno == ENOENT) return removed();
    return Status::FromErrno(errno, "stat", index);
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::Corruption("index is not a regular file", index);
  }
  // A repository we may not write (a read-only mount, another user's):
  // no pin file, and purge.lock stays shared while we read, as before
  // pins existed. Nobody can purge such a repository meanwhile either.
  auto read_only = [&](int err) -> Result<RevisionPin> {
    spdlog::debug("cannot pin in {} ({}); holding {} shared instead",
                  PinsDirName(dir), std::strerror(err), PurgeLockFileName(dir));
    pin.lock_ = std::move(*purge);
    pin.revision_id_ = revision.id;
    return std::move(pin);
  };
  const std::string pins = PinsDirName(dir);
  if (::mkdir(pins.c_str(), kPrivateDirMode) != 0 && errno != EEXIST) {
    if (IsReadOnlyError(errno)) return read_only(errno);
    return Status::FromErrno(errno, "create directory", pins);
  }
  auto dirfd = OpenPinsDir(pins);
  if (!dirfd.ok()) return dirfd.status();
  std::string token;
  for (int attempt = 0;; ++attempt) {
    token = NewToken();
    const std::string name = PinFileBaseName(token, PinFileType::kPin);
    UniqueFd fd(::openat(dirfd->get(), name.c_str(),
                         O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         kPrivateFileMode));
    if (fd.get() >= 0) {
      pin.pin_fd_ = std::move(fd);
      break;
    }
    if (errno == EEXIST && attempt < 3) continue;
    if (IsReadOnlyError(errno)) return read_only(errno);
    return Status::FromErrno(errno, "create pin", pins + "/" + name);
  }
  // From here on, an error return releases `pin`, removing what exists.
  pin.pin_path_ = pins + "/" + PinFileBaseName(token, PinFileType::kPin);
  const std::string link_name = PinFileBaseName(token, PinFileType::kIndex);
  pin.link_path_ = pins + "/" + link_name;
  if (::flock(pin.pin_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    return Status::FromErrno(errno, "lock", pin.pin_path_);
  }
  const std::string note = PinNote(revision.id, holder);
  // Only for purge's messages: a pin without its note still works.
  (void)PWriteAll(
      pin.pin_fd_.get(),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(note.data()),
                               note.size()),
      0, pin.pin_path_);
  // No AT_SYMLINK_FOLLOW: the link is to the file itself, never to what a
  // symlink planted since the lstat above names.
  if (::linkat(AT_FDCWD, index.c_str(), dirfd->get(), link_name.c_str(), 0) !=
      0) {
    if (errno == ENOENT) return removed();
    return Status::FromErrno(errno, "link the index into " + pins, index);
  }
  if (TypeAt(dirfd->get(), link_name) != S_IFREG) {
    return Status::Corruption("index is not a regular file", index);
  }
  pin.revision_id_ = revision.id;
  return pin;
}

Result<RevisionIndex> RevisionPin::LoadIndex() const {
  assert(held());
  if (keeper_) return keeper_->LoadIndex();
  if (legacy_) return LoadLegacyIndex(dir_, revision_id_);
  // Errors name the revision's index: the pin's link is the same file.
  const std::string name = IndexFileName(dir_, revision_id_);
  const std::string& path = pin_fd_.get() >= 0 ? link_path_ : name;
  UniqueFd fd(
      ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return Status::Corruption(
          "index of revision " + revision_id_ + " is missing", name);
    }
    return Status::FromErrno(errno, "open", name);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno(errno, "stat", name);
  if (!S_ISREG(st.st_mode)) {
    return Status::Corruption("index is not a regular file", name);
  }
  return ReadIndexFile(fd.get(), static_cast<uint64_t>(st.st_size), name);
}

Result<PinScan> ScanPins(const std::string& dir) {
  PinScan scan;
  const std::string pins = PinsDirName(dir);
  struct stat st;
  if (::lstat(pins.c_str(), &st) != 0) {
    if (errno == ENOENT) return scan;  // nothing was ever pinned
    return Status::FromErrno(errno, "stat", pins);
  }
  auto dirfd = OpenPinsDir(pins);
  if (!dirfd.ok()) return dirfd.status();
  auto names = ListDirectory(dirfd->get(), pins);
  if (!names.ok()) return names.status();
  std::set<std::string> pin_tokens, index_tokens;
  auto ignore = [&](const std::string& name, const char* why) {
    spdlog::warn("ignoring {}/{}: {}", pins, name, why);
    ++scan.ignored;
  };
  for (const auto& name : *names) {
    auto file = ParsePinFileName(name);
    if (!file) {
      ignore(name, "not a pin backy made");
      continue;
    }
    (file->type == PinFileType::kPin ? pin_tokens : index_tokens)
        .insert(file->token);
  }
  for (const auto& token : pin_tokens) {
    const std::string name = PinFileBaseName(token, PinFileType::kPin);
    const std::string path = pins + "/" + name;
    const mode_t type = TypeAt(dirfd->get(), name);
    if (type == 0) continue;  // let go meanwhile
    if (type != S_IFREG) {
      ignore(name, "not a regular file");
      continue;
    }
    UniqueFd fd(::openat(dirfd->get(), name.c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno(
          errno, "cannot tell whether this pin is held: open", path);
    }
    struct stat pst;
    if (::fstat(fd.get(), &pst) != 0 || !S_ISREG(pst.st_mode)) {
      ignore(name, "not a regular file");
      continue;
    }
    auto stale = [&] {
      scan.stale.push_back(token);
      index_tokens.erase(token);
    };
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      stale();  // its reader is gone
      continue;
    }
    if (errno != EWOULDBLOCK) return Status::FromErrno(errno, "lock", path);
    PinScan::Live live;
    live.token = token;
    ReadPinNote(fd.get(), &live.revision_id, &live.holder);
    const std::string link_name = PinFileBaseName(token, PinFileType::kIndex);
    const std::string link_path = pins + "/" + link_name;
    UniqueFd index(::openat(dirfd->get(), link_name.c_str(),
                            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    const int err = index.get() < 0 ? errno : 0;
    // A reader unlocks before it unlinks: a link gone with the lock free
    // is a pin let go just now.
    if (err == ENOENT && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      stale();
      continue;
    }
    if (err) {
      return Status::Corruption("cannot purge: a live pin (" + Describe(live) +
                                    ") has no usable index link (" +
                                    std::strerror(err) +
                                    "), so the chunks it needs are unknown",
                                link_path);
    }
    struct stat ist;
    if (::fstat(index.get(), &ist) != 0) {
      return Status::FromErrno(errno, "stat", link_path);
    }
    if (!S_ISREG(ist.st_mode)) {
      return Status::Corruption("cannot purge: the index link of a live pin (" +
                                    Describe(live) + ") is not a regular file",
                                link_path);
    }
    live.index = std::move(index);
    live.index_size = static_cast<uint64_t>(ist.st_size);
    index_tokens.erase(token);
    scan.live.push_back(std::move(live));
  }
  // Index links without a pin file: no reader can hold them.
  for (const auto& token : index_tokens) {
    const std::string name = PinFileBaseName(token, PinFileType::kIndex);
    const mode_t type = TypeAt(dirfd->get(), name);
    if (type == S_IFREG || type == S_IFLNK) {
      scan.stale.push_back(token);
    } else if (type != 0) {
      ignore(name, "not a regular file");
    }
  }
  return scan;
}

Status RemoveStalePins(const std::string& dir,
                       const std::vector<std::string>& tokens) {
  if (tokens.empty()) return Status::OK();
  const std::string pins = PinsDirName(dir);
  auto dirfd = OpenPinsDir(pins);
  if (!dirfd.ok()) return dirfd.status();
  for (const auto& token : tokens) {
    // The link first: a pin file without one is still stale next time.
    for (PinFileType t : {PinFileType::kIndex, PinFileType::kPin}) {
      const std::string name = PinFileBaseName(token, t);
      const mode_t type = TypeAt(dirfd->get(), name);
      // Gone, or not ours (a pin file is only ever a regular file).
      if (type != S_IFREG && (type != S_IFLNK || t == PinFileType::kPin)) {
        continue;
      }
      if (::unlinkat(dirfd->get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return Status::FromErrno(errno, "remove stale pin", pins + "/" + name);
      }
    }
  }
  return Status::OK();
}

}  // namespace backy::store
