// In-memory implementations of Export and ExportProvider.
//
// MemExport serves a byte buffer it owns; all-zero blocks of kZeroBlock
// bytes are reported as holes by BlockStatus(). It is the reference
// implementation used by tests and by CowExport's tests. StaticExportProvider
// serves a fixed list of named exports (tests, and a CLI serving one image).
// Thread-safety: both classes are safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/export.h"

namespace backy::nbd {

class MemExport : public Export {
 public:
  // Granularity at which all-zero data is reported as a hole.
  static constexpr uint64_t kZeroBlock = 4096;

  // Serves `data`; writable only if `writable`.
  MemExport(std::vector<uint8_t> data, bool writable,
            std::string description = {});

  uint64_t Size() const override { return size_; }
  std::string Description() const override { return description_; }
  bool IsReadOnly() const override { return !writable_; }
  bool CanMultiConn() const override { return true; }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override;
  Status BlockStatus(uint64_t offset, uint64_t length,
                     std::vector<ExportExtent>* extents) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;
  Status WriteZeroes(uint64_t offset, uint64_t length) override;
  Status Trim(uint64_t offset, uint64_t length) override;

  // A copy of the current content (tests).
  std::vector<uint8_t> Contents() const;

 private:
  const uint64_t size_;
  const bool writable_;
  const std::string description_;
  mutable std::shared_mutex mu_;
  std::vector<uint8_t> data_;  // guarded by mu_
};

// Serves a fixed set of exports, looked up by exact name. The empty name
// opens `default_name` (by default the first export added).
class StaticExportProvider : public ExportProvider {
 public:
  StaticExportProvider() = default;

  // Adds an export. Not thread-safe: call before serving.
  void Add(std::string name, std::shared_ptr<Export> exp);
  // Chooses the export opened by the empty name. Not thread-safe.
  void SetDefault(std::string name) { default_name_ = std::move(name); }

  // Every client sees every export.
  Result<std::vector<ExportInfo>> ListExports(const Client& client) override;
  Result<std::shared_ptr<Export>> OpenExport(std::string_view name,
                                             const Client& client) override;

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<Export> exp;
  };
  std::vector<Entry> entries_;
  std::string default_name_;
  bool has_default_ = false;
};

}  // namespace backy::nbd
