#include "backup/revision_export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <filesystem>

#include "backup/restore.h"
#include "backup/slot_walk.h"
#include "store/chunk_format.h"
#include "store/filename.h"
#include "store/spec.h"
#include "store/test_point.h"

namespace backy::backup {

namespace {

// Chunks kept open: enough for an 8 GiB working set (about 7 KiB of memory
// each), and at most a quarter of the descriptors we may open, leaving room
// for connections.
size_t OpenChunkLimit() {
  struct rlimit rl;
  uint64_t soft = 1024;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    soft = rl.rlim_cur;
  }
  return static_cast<size_t>(std::clamp<uint64_t>(soft / 4, 16, 2048));
}

}  // namespace

std::string DescribeRevision(const store::Revision& r) {
  std::string date = store::FormatTimestamp(r.timestamp_us).substr(0, 19);
  date[10] = ' ';
  return fmt::format("{} UTC, tags {}, {}", date, fmt::join(r.tags, ","),
                     store::TrustName(r.trust));
}

RevisionExport::RevisionExport(std::shared_ptr<store::Repository> repo,
                               store::Revision revision,
                               store::RevisionIndex index,
                               std::shared_ptr<BlockCache> cache,
                               std::shared_ptr<ChunkReaderCache> readers,
                               store::RevisionPin pin,
                               std::shared_ptr<BlockFile> block_file)
    : repo_(std::move(repo)),
      revision_(std::move(revision)),
      index_(std::move(index)),
      cache_(std::move(cache)),
      readers_(std::move(readers)),
      pin_(std::move(pin)),
      block_file_(std::move(block_file)) {}

std::string RevisionExport::Description() const {
  return "revision " + revision_.id + ", " + DescribeRevision(revision_);
}

Result<ChunkReaderCache::Reader> RevisionExport::SlotReader(size_t slot,
                                                            bool nowait) {
  const Digest& d = index_.slot(slot);
  if (nowait) {
    // Opening a chunk reads its file: that is a worker's job.
    if (auto r = readers_->Peek(d)) return r;
    return Status::WouldBlock("chunk not open");
  }
  return readers_->Get(d, [&] { return repo_->ChunksOf(revision_).Open(d); });
}

Status RevisionExport::SlotFailure(size_t slot, const Status& s) const {
  if (!s.IsWouldBlock()) {
    spdlog::error("nbd: revision {}: slot {}: chunk {}: {}", revision_.id, slot,
                  index_.slot(slot).Hex(), s.ToString());
  }
  return s;
}

Status RevisionExport::ReadSlot(size_t slot, uint64_t offset,
                                std::span<uint8_t> out, bool nowait,
                                std::vector<nbd::FileExtent>* files) {
  const Digest& d = index_.slot(slot);
  if (d.IsZero()) {
    std::memset(out.data(), 0, out.size());
    return Status::OK();
  }
  auto fail = [&](const Status& s) { return SlotFailure(slot, s); };
  auto opened = SlotReader(slot, nowait);
  if (!opened.ok()) return fail(opened.status());
  store::ChunkReader& reader = **opened;
  auto read = [&](uint64_t at, std::span<uint8_t> to) {
    return nowait ? reader.ReadNoWait(at, to) : reader.Read(at, to);
  };
  // Cache entries are the chunk's own blocks, the unit it decodes and
  // checks: smaller would decode a compressed block several times.
  const uint32_t bs = reader.BlockSize();
  const uint64_t slot_len = reader.PlainSize();
  const uint64_t end = offset + out.size();
  if (end > slot_len) {
    return fail(Status::Corruption("chunk is shorter than its slot (" +
                                   std::to_string(slot_len) + " bytes)"));
  }
  uint64_t pos = offset;
  while (pos < end) {
    const uint32_t b = static_cast<uint32_t>(pos / bs);
    const uint64_t block_start = static_cast<uint64_t>(b) * bs;
    const uint64_t block_end = std::min<uint64_t>(block_start + bs, slot_len);
    if (reader.IsRawBlock(b)) {
      // Raw blocks are not cached: the page cache holds them already, and
      // reading one again costs a pread and a hash, less than the lookups
      // and evictions of a cache that a random reader mostly misses
      // (measured: 15 % of the server's time at 4 KiB random reads).
      uint64_t run_end = std::min(end, block_end);
      while (run_end < end &&
             reader.IsRawBlock(static_cast<uint32_t>(run_end / bs))) {
        run_end = std::min<uint64_t>(end, run_end + bs);
      }
      if (files) {
        // Checked here, sent from the chunk file by the server.
        auto at = reader.CheckRawRange(pos, run_end - pos, nowait);
        if (at.ok()) {
          files->push_back({slot * index_.chunk_size() + pos, run_end - pos,
                            reader.FileDescriptor(), *at, *opened});
          pos = run_end;
          continue;
        }
        if (!at.status().IsNotSupported()) return fail(at.status());
      }
      Status s = read(pos, out.subspan(pos - offset, run_end - pos));
      if (!s.ok()) return fail(s);
      pos = run_end;
      continue;
    }
    const uint32_t block_len = static_cast<uint32_t>(block_end - block_start);
    if (auto hit =
            cache_->Get(d, static_cast<uint32_t>(block_start), block_len)) {
      const uint64_t to = std::min(end, block_end);
      std::memcpy(out.data() + (pos - offset),
                  hit->data() + (pos - block_start), to - pos);
      pos = to;
      continue;
    }
    const BlockFile::Key file_key{d, static_cast<uint32_t>(block_start),
                                  block_len};
    if (block_file_) {
      // Decoded before, and kept in the page cache: a pread and a check.
      const uint64_t to = std::min(end, block_end);
      auto got =
          block_file_->Read(file_key, static_cast<uint32_t>(pos - block_start),
                            out.subspan(pos - offset, to - pos), nowait);
      if (!got.ok()) return got.status();  // WouldBlock: to a worker
      if (*got) {
        pos = to;
        continue;
      }
    }
    if (pos == block_start && block_end <= end) {
      // Whole blocks: decode straight into the caller's buffer, together
      // with the following whole blocks that are not cached either.
      uint64_t run_end = block_end;
      for (uint32_t n = b + 1; run_end < end; ++n) {
        const uint64_t next_end =
            std::min<uint64_t>(static_cast<uint64_t>(n + 1) * bs, slot_len);
        if (next_end > end ||
            cache_->Get(d, static_cast<uint32_t>(uint64_t{n} * bs),
                        static_cast<uint32_t>(next_end - uint64_t{n} * bs))) {
          break;
        }
        run_end = next_end;
      }
      Status s = read(pos, out.subspan(pos - offset, run_end - pos));
      if (!s.ok()) return fail(s);
      if (block_file_) {
        // Keep them for the next reader (a second copy, a VM's reads).
        for (uint64_t b0 = pos; b0 < run_end; b0 += bs) {
          const uint32_t len =
              static_cast<uint32_t>(std::min<uint64_t>(bs, run_end - b0));
          block_file_->Put({d, static_cast<uint32_t>(b0), len},
                           out.subspan(b0 - offset, len));
        }
      }
      pos = run_end;
      continue;
    }
    // Part of a block: decode all of it into the cache, for the neighbours
    // a random reader is likely to ask for next.
    BlockCache::Block block;
    if (nowait) {
      auto fresh = cache_->NewBlock(block_len);
      Status s = read(block_start, {fresh->bytes.get(), fresh->size});
      if (!s.ok()) return fail(s);
      cache_->Put(d, static_cast<uint32_t>(block_start), fresh);
      block = std::move(fresh);
    } else {
      // Once, however many readers want it now (GetOrFill).
      auto filled =
          cache_->GetOrFill(d, static_cast<uint32_t>(block_start), block_len,
                            [&](CachedBlock& b) {
                              return read(block_start, {b.bytes.get(), b.size});
                            });
      if (!filled.ok()) return fail(filled.status());
      block = std::move(*filled);
    }
    if (block_file_) block_file_->Put(file_key, {block->data(), block->size});
    const uint64_t to = std::min(end, block_end);
    std::memcpy(out.data() + (pos - offset),
                block->data() + (pos - block_start), to - pos);
    pos = to;
  }
  return Status::OK();
}

Status RevisionExport::ReadRange(uint64_t offset, std::span<uint8_t> buf,
                                 bool nowait,
                                 std::vector<nbd::FileExtent>* files) {
  // The server validated the range (nbd/export.h).
  assert(!buf.empty() && offset + buf.size() <= index_.image_size());
  return ForEachSlotPiece(index_, offset, buf.size(), [&](const SlotPiece& p) {
    return ReadSlot(p.slot, p.offset_in_slot(),
                    buf.subspan(p.begin - offset, p.length()), nowait, files);
  });
}

bool RevisionExport::ReadAsync(uint64_t offset, std::span<uint8_t> buf,
                               std::function<void(Status)> done) {
  // The server validated the range (nbd/export.h).
  assert(!buf.empty() && offset + buf.size() <= index_.image_size());
  // One block of one chunk, what 4 KiB random reads are: ReadSlot()'s plan
  // for larger reads is a worker's job.
  const uint64_t chunk_size = index_.chunk_size();
  const size_t slot = static_cast<size_t>(offset / chunk_size);
  const uint64_t pos = offset - slot * chunk_size;
  const Digest& d = index_.slot(slot);
  if (d.IsZero()) return false;  // ReadNoWait() answers these
  // Opening a chunk reads it, synchronously: a worker's job too.
  ChunkReaderCache::Reader reader = readers_->Peek(d);
  if (!reader || !reader->HasAsyncReads()) return false;
  const uint32_t bs = reader->BlockSize();
  const uint64_t block_start = pos / bs * bs;
  const uint64_t block_end =
      std::min<uint64_t>(block_start + bs, reader->PlainSize());
  if (pos + buf.size() > block_end) return false;
  const uint32_t block_len = static_cast<uint32_t>(block_end - block_start);
  const BlockFile::Key file_key{d, static_cast<uint32_t>(block_start),
                                block_len};
  if (block_file_ && !reader->IsRawBlock(block_start / bs)) {
    auto got = block_file_->Read(
        file_key, static_cast<uint32_t>(pos - block_start), buf, true);
    if (!got.ok()) return false;  // WouldBlock: a worker reads the file
    if (*got) {
      done(Status::OK());
      return true;
    }
  }
  if (reader->IsRawBlock(block_start / bs) ||
      (pos == block_start && pos + buf.size() == block_end)) {
    // As in ReadSlot(): raw blocks and whole blocks are not kept in memory.
    reader->ReadAsync(pos, buf,
                      [this, slot, reader, done = std::move(done)](Status s) {
                        done(s.ok() ? s : SlotFailure(slot, s));
                      });
    return true;
  }
  // Part of a compressed block: decode all of it into the cache, as
  // ReadSlot() does. Two misses of one block at once both fetch it (there
  // is no GetOrFill without a waiting thread); the second Put() wins.
  std::shared_ptr<CachedBlock> fresh = cache_->NewBlock(block_len);
  std::span<uint8_t> into{fresh->bytes.get(), fresh->size};
  reader->ReadAsync(
      block_start, into,
      [this, slot, reader, fresh, file_key, from = pos - block_start, buf,
       done = std::move(done)](Status s) {
        if (!s.ok()) {
          done(SlotFailure(slot, s));
          return;
        }
        cache_->Put(file_key.digest, file_key.offset, fresh);
        if (block_file_)
          block_file_->Put(file_key, {fresh->data(), fresh->size});
        std::memcpy(buf.data(), fresh->data() + from, buf.size());
        done(Status::OK());
      });
  return true;
}

Status RevisionExport::BlockStatus(uint64_t offset, uint64_t length,
                                   std::vector<nbd::ExportExtent>* extents) {
  // The server validated the range (nbd/export.h).
  assert(length > 0 && offset + length <= index_.image_size());
  // Runs of data slots and of zero slots, each one extent.
  return ForEachSlotPiece(index_, offset, length, [&](const SlotPiece& p) {
    const bool zero = index_.IsZero(p.slot);
    if (!extents->empty() && extents->back().end() == p.begin &&
        extents->back().zero == zero) {
      extents->back().length += p.length();
    } else {
      extents->push_back({p.begin, p.length(), zero, zero});
    }
  });
}

Status RevisionExport::Cache(uint64_t offset, uint64_t length) {
  // A hint: bring the stored bytes into the page cache. Decoding, and the
  // hash check, happen when the data is read.
  assert(offset + length <= index_.image_size());
  return ForEachSlotPiece(index_, offset, length, [&](const SlotPiece& p) {
    if (index_.IsZero(p.slot)) return Status::OK();
    auto reader = SlotReader(p.slot, /*nowait=*/false);
    if (!reader.ok()) return reader.status();
    (*reader)->Prefetch(p.offset_in_slot(), p.length());
    return Status::OK();
  });
}

Result<std::unique_ptr<RepositoryExports>> RepositoryExports::Open(
    const std::string& backupdir, uint64_t cache_bytes,
    std::shared_ptr<BlockFile> block_file,
    const store::RepositoryOptions& options) {
  std::unique_ptr<RepositoryExports> p(new RepositoryExports());
  p->cache_ = std::make_shared<BlockCache>(cache_bytes);
  p->block_file_ = std::move(block_file);
  p->readers_ = std::make_shared<ChunkReaderCache>(OpenChunkLimit());
  auto add = [&](const std::string& job, const std::string& dir) -> Status {
    auto repo = store::Repository::Open(dir, options);
    if (!repo.ok()) return repo.status();
    store::RepositoryLock lock;
    if ((*repo)->legacy()) {
      auto l = (*repo)->LockReader();
      if (!l.ok()) return l.status();
      lock = std::move(*l);
    }
    std::shared_ptr<store::Repository> shared(std::move(*repo));
    auto cache = std::make_unique<store::RevisionCache>(*shared);
    p->repos_[job] = Repo{std::move(shared), std::move(lock), std::move(cache)};
    return Status::OK();
  };
  std::error_code ec;
  if (store::RepositoryLocation::IsRados(backupdir) ||
      std::filesystem::exists(store::ConfigFileName(backupdir), ec)) {
    Status s = add("", backupdir);
    if (!s.ok()) return s;
    return p;
  }
  p->single_ = false;
  for (const auto& e : std::filesystem::directory_iterator(backupdir, ec)) {
    if (!e.is_directory() ||
        !std::filesystem::exists(store::ConfigFileName(e.path().string()))) {
      continue;
    }
    Status s = add(e.path().filename().string(), e.path().string());
    if (!s.ok()) {
      spdlog::warn("nbd-server: skipping {}: {}", e.path().string(),
                   s.ToString());
    }
  }
  // -b naming a file is a missing repository (exit 1), as for the other
  // commands, not the invalid argument ENOTDIR would make it.
  if (ec == std::errc::not_a_directory) {
    return Status::NotFound("not a backy repository (not a directory)",
                            backupdir);
  }
  if (ec) return Status::FromErrno(ec.value(), "list directory", backupdir);
  if (p->repos_.empty()) {
    return Status::NotFound(
        "neither a repository nor a directory of repositories", backupdir);
  }
  return p;
}

Result<std::vector<nbd::ExportInfo>> RepositoryExports::ListExports(
    const nbd::Client& /*client*/) {
  std::vector<nbd::ExportInfo> out;
  for (auto& [job, r] : repos_) {
    auto list = r.revisions->Get();  // damaged revisions are skipped
    if (!list.ok()) {
      // One repository that cannot be listed hides only its own exports.
      if (single_) return list.status();
      spdlog::warn("nbd-server: cannot list {}: {}", r.repo->location(),
                   list.status().Message());
      continue;
    }
    const std::vector<store::Revision>& revs = **list;
    // Newest first, like SPEC numbers.
    for (size_t i = revs.size(); i-- > 0;) {
      const auto& rev = revs[i];
      std::string desc = DescribeRevision(rev) + ", number " +
                         std::to_string(revs.size() - 1 - i);
      out.push_back({single_ ? rev.id : job + "/" + rev.id, desc});
    }
  }
  return out;
}

Status RepositoryExports::UnknownJob(std::string_view name) {
  const std::string_view job = name.substr(0, name.find('/'));
  return Status::NotFound("no such job '" + std::string(job) + "'",
                          std::string(name));
}

Result<std::shared_ptr<nbd::Export>> RepositoryExports::OpenExport(
    std::string_view name, const nbd::Client& /*client*/) {
  std::string job, spec(name);
  if (!single_) {
    auto slash = name.find('/');
    if (slash == std::string_view::npos) {
      return Status::NotFound("export names are JOB/SPEC here",
                              std::string(name));
    }
    job = std::string(name.substr(0, slash));
    spec = std::string(name.substr(slash + 1));
  }
  if (spec.empty()) spec = "last";
  auto it = repos_.find(job);
  if (it == repos_.end()) {
    return UnknownJob(name);
  }
  std::lock_guard<std::mutex> l(mu_);
  auto exp = OpenRevision(job, it->second, spec, name);
  if (!exp.ok()) return exp.status();
  return std::shared_ptr<nbd::Export>(std::move(*exp));
}

Result<std::shared_ptr<RevisionExport>> RepositoryExports::OpenRevision(
    const std::string& job, Repo& r, const std::string& spec,
    std::string_view name) {
  std::erase_if(by_name_, [](const auto& e) { return e.second.expired(); });
  std::erase_if(by_revision_, [](const auto& e) { return e.second.expired(); });
  const std::string name_key = job + "/" + spec;
  if (auto held = by_name_[name_key].lock()) return held;
  auto list = r.revisions->Get();
  if (!list.ok()) return list.status();
  const std::vector<store::Revision>& revs = **list;
  auto pos = store::ResolveSpec(revs, spec);
  if (!pos.ok()) return pos.status();
  const store::Revision& rev = revs[*pos];
  TestPoint("export-resolved");
  const std::string revision_key = job + "/" + rev.id;
  // What a name's holders share is a handle of its own onto the
  // revision's export: "last" is held while connections opened by "last"
  // are open, not while some other name of the same revision is.
  auto handle = [&](std::shared_ptr<RevisionExport> exp) {
    // The deleter lets go of the export when the last holder does: the
    // deleter itself lives as long as by_name_'s weak_ptr does.
    std::shared_ptr<RevisionExport> h(
        exp.get(), [keep = exp](RevisionExport*) mutable { keep.reset(); });
    by_name_[name_key] = h;
    return h;
  };
  if (auto held = by_revision_[revision_key].lock()) return handle(held);
  auto pin = r.repo->PinRevision(rev, "nbd-server");
  if (!pin.ok()) return pin.status();
  auto index = pin->LoadIndex();
  if (!index.ok()) {
    // forget/expire remove the metadata first, then the index.
    if (RevisionRemoved(*r.repo, rev)) {
      return Status::NotFound(
          "revision was removed (forget or expire) before it could be read",
          rev.id);
    }
    return index.status();
  }
  auto exp =
      std::make_shared<RevisionExport>(r.repo, rev, std::move(*index), cache_,
                                       readers_, std::move(*pin), block_file_);
  if (!single_) exp->SetCanonicalName(revision_key);
  spdlog::debug("nbd-server: export '{}' is revision {}", name, rev.id);
  by_revision_[revision_key] = exp;
  return handle(std::move(exp));
}

}  // namespace backy::backup
