#include "nbd/mem_export.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>

namespace backy::nbd {

namespace {

bool AllZero(const uint8_t* p, size_t n) {
  // Compare against the first byte shifted by one: memcmp is vectorised.
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

MemExport::MemExport(std::vector<uint8_t> data, bool writable,
                     std::string description)
    : size_(data.size()),
      writable_(writable),
      description_(std::move(description)),
      data_(std::move(data)) {}

Status MemExport::Read(uint64_t offset, std::span<uint8_t> buf) {
  assert(offset + buf.size() <= size_);
  std::shared_lock lock(mu_);
  std::memcpy(buf.data(), data_.data() + offset, buf.size());
  return Status::OK();
}

Status MemExport::BlockStatus(uint64_t offset, uint64_t length,
                              std::vector<ExportExtent>* extents) {
  assert(length > 0 && offset + length <= size_);
  std::shared_lock lock(mu_);
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t block_end =
        std::min(end, (pos / kZeroBlock + 1) * kZeroBlock);
    const bool zero = AllZero(data_.data() + pos, block_end - pos);
    if (!extents->empty() && extents->back().end() == pos &&
        extents->back().zero == zero) {
      extents->back().length += block_end - pos;
    } else {
      extents->push_back({pos, block_end - pos, zero, zero});
    }
    pos = block_end;
  }
  return Status::OK();
}

Status MemExport::Write(uint64_t offset, std::span<const uint8_t> data) {
  assert(writable_ && offset + data.size() <= size_);
  std::unique_lock lock(mu_);
  std::memcpy(data_.data() + offset, data.data(), data.size());
  return Status::OK();
}

Status MemExport::WriteZeroes(uint64_t offset, uint64_t length) {
  assert(writable_ && offset + length <= size_);
  std::unique_lock lock(mu_);
  std::memset(data_.data() + offset, 0, length);
  return Status::OK();
}

Status MemExport::Trim(uint64_t offset, uint64_t length) {
  return WriteZeroes(offset, length);
}

std::vector<uint8_t> MemExport::Contents() const {
  std::shared_lock lock(mu_);
  return data_;
}

void StaticExportProvider::Add(std::string name, std::shared_ptr<Export> exp) {
  if (!has_default_) {
    default_name_ = name;
    has_default_ = true;
  }
  entries_.push_back({std::move(name), std::move(exp)});
}

Result<std::vector<ExportInfo>> StaticExportProvider::ListExports(
    const Client& /*client*/) {
  std::vector<ExportInfo> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) {
    out.push_back({e.name, e.exp->Description()});
  }
  return out;
}

Result<std::shared_ptr<Export>> StaticExportProvider::OpenExport(
    std::string_view name, const Client& /*client*/) {
  const std::string_view wanted = name.empty() ? default_name_ : name;
  for (const Entry& e : entries_) {
    if (e.name == wanted) return e.exp;
  }
  if (name.empty()) return Status::NotFound("no default export");
  return Status::NotFound("no such export", name);
}

}  // namespace backy::nbd
