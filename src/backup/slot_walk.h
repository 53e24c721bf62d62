// Slot walks: visiting, in order, the slots of a RevisionIndex that a byte
// range of its image covers, one SlotPiece per slot (the range's part of
// it). The one place where image offsets become slots and back, for the
// backup planner and RevisionExport's reads, block status and cache hints.
// Pure functions over a const index: thread-safe as the index is.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <type_traits>

#include "store/index.h"
#include "store/status.h"

namespace backy::backup {

// The part [begin, end) of a byte range that lies in slot `slot`, which
// covers [slot_start, slot_end) of the image; all image offsets.
struct SlotPiece {
  size_t slot;
  uint64_t slot_start, slot_end;
  uint64_t begin, end;

  uint64_t length() const { return end - begin; }
  // Offset of `begin` within the slot (the chunk).
  uint64_t offset_in_slot() const { return begin - slot_start; }
  // The range covers the whole slot.
  bool whole() const { return begin == slot_start && end == slot_end; }
};

// Calls fn(const SlotPiece&) for each slot [offset, offset + length)
// touches, in order. `fn` returns void, or a Status: then the walk stops at
// the first error and returns it.
// REQUIRES: offset + length <= index.image_size().
template <typename Fn>
Status ForEachSlotPiece(const store::RevisionIndex& index, uint64_t offset,
                        uint64_t length, Fn&& fn) {
  assert(offset + length <= index.image_size());
  const uint64_t cs = index.chunk_size();
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    SlotPiece p;
    p.slot = static_cast<size_t>(pos / cs);
    p.slot_start = static_cast<uint64_t>(p.slot) * cs;
    p.slot_end = p.slot_start + index.SlotLength(p.slot);
    p.begin = pos;
    p.end = std::min(end, p.slot_end);
    if constexpr (std::is_same_v<std::invoke_result_t<Fn, const SlotPiece&>,
                                 Status>) {
      Status s = fn(static_cast<const SlotPiece&>(p));
      if (!s.ok()) return s;
    } else {
      fn(static_cast<const SlotPiece&>(p));
    }
    pos = p.end;
  }
  return Status::OK();
}

}  // namespace backy::backup
