// FakeSource: a scripted in-memory Source for tests of backups and of the
// Source contract (tests/sources/source_conformance_test.cc).
//
// `image` is what the next Begin() snapshots; diffs compare that snapshot
// with a base snapshot in 4 MiB steps, like RBD's whole-object diff. Set
// `diff_capable` false to act like a file, `missing` to make Begin() fail
// with NotFound, `fail_reads` to make every Read() fail. Read() is safe for
// concurrent use; everything else (and the public fields) is not.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "sources/source.h"
#include "store/digest.h"
#include "store/extent.h"
#include "store/status.h"

namespace backy::sources {

class FakeSource final : public Source {
 public:
  // Granularity of full listings (data only where a block is non-zero) and
  // of diffs.
  static constexpr uint64_t kFullBlock = uint64_t{1} << 20;
  static constexpr uint64_t kDiffBlock = uint64_t{4} << 20;

  std::vector<uint8_t> image;
  bool diff_capable = true;
  bool missing = false;
  VerifyMode mode = VerifyMode::kFull;
  std::map<std::string, std::vector<uint8_t>> snapshots;
  std::vector<uint8_t> current;
  std::atomic<uint64_t> read{0};
  bool fail_reads = false;
  bool committed = false, aborted = false;

  std::string Name() const override { return "fake"; }
  Status Begin(const std::string& id) override {
    if (missing) return Status::NotFound("image does not exist", Name());
    current = image;
    snapshots[id] = current;
    committed = aborted = false;
    read = 0;
    return Status::OK();
  }
  uint64_t Size() const override { return current.size(); }
  bool CanDiffFrom(const std::string& base) override {
    return diff_capable && snapshots.count(base);
  }
  Status Extents(const std::string& base, ExtentList* out) override {
    out->clear();
    if (base.empty()) {
      // Report data only where non-zero blocks are (sparse file).
      for (uint64_t off = 0; off < current.size(); off += kFullBlock) {
        uint64_t len = std::min<uint64_t>(kFullBlock, current.size() - off);
        if (!IsAllZero({current.data() + off, len})) {
          out->push_back({off, len, Extent::Kind::kData});
        }
      }
      return Status::OK();
    }
    const auto& old = snapshots.at(base);
    for (uint64_t off = 0; off < current.size(); off += kDiffBlock) {
      uint64_t len = std::min<uint64_t>(kDiffBlock, current.size() - off);
      bool same = off + len <= old.size() &&
                  std::equal(current.begin() + off, current.begin() + off + len,
                             old.begin() + off);
      if (same) continue;
      bool zero = IsAllZero({current.data() + off, len});
      out->push_back(
          {off, len, zero ? Extent::Kind::kZero : Extent::Kind::kData});
    }
    return Status::OK();
  }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    if (fail_reads) return Status::IOError("injected read error", "fake");
    for (size_t i = 0; i < buf.size(); ++i) {
      buf[i] = offset + i < current.size() ? current[offset + i] : 0;
    }
    read += buf.size();
    return Status::OK();
  }
  Status Commit(const std::string&) override {
    committed = true;
    return Status::OK();
  }
  void Abort() override { aborted = true; }
  Status CheckUnchanged() override { return Status::OK(); }
  VerifyMode verify_mode() const override { return mode; }
  uint64_t bytes_read() const override { return read; }
};

}  // namespace backy::sources
