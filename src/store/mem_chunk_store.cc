#include "store/mem_chunk_store.h"

#include <cstring>

namespace backy::store {

MemChunkStore::MemChunkStore(CompressionOptions compression)
    : encoder_(compression) {}

std::string MemChunkStore::ChunkName(const Digest& digest) const {
  return "mem:" + digest.Hex();
}

Result<PutResult> MemChunkStore::Put(const Digest& digest,
                                     std::span<const uint8_t> plain,
                                     bool rewrite) {
  std::lock_guard<std::mutex> l(mu_);
  const bool existed = chunks_.count(digest) > 0;
  if (existed && !rewrite) return PutResult{};
  std::vector<uint8_t> encoded;
  encoder_.Encode(digest, plain, &encoded);
  uint64_t n = encoded.size();
  chunks_[digest] = std::move(encoded);
  PutResult result;
  result.created = !existed;
  result.replaced = existed;
  result.stored_bytes = n;
  return result;
}

Result<bool> MemChunkStore::Contains(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  return chunks_.count(digest) > 0;
}

Result<std::vector<uint8_t>> MemChunkStore::Encoded(
    const Digest& digest) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = chunks_.find(digest);
  if (it == chunks_.end()) {
    return Status::NotFound("chunk " + digest.Hex() + " is missing",
                            ChunkName(digest));
  }
  return it->second;  // a copy: decoding happens outside the lock
}

Status MemChunkStore::Get(const Digest& digest, std::vector<uint8_t>* out) {
  auto encoded = Encoded(digest);
  if (!encoded.ok()) return encoded.status();
  return DecodeChunk(*encoded, digest, out, ChunkName(digest));
}

Status MemChunkStore::Read(const Digest& digest, uint64_t offset,
                           std::span<uint8_t> out) {
  auto encoded = Encoded(digest);
  if (!encoded.ok()) return encoded.status();
  const std::vector<uint8_t>& copy = *encoded;
  const std::string name = ChunkName(digest);
  auto layout = ParseChunkLayout(copy, name);
  if (!layout.ok()) return layout.status();
  if (copy.size() != layout->file_size) {
    return Status::Corruption("chunk has wrong size", name);
  }
  return DecodeRange(*layout, 0, copy, offset, out, name);
}

Result<uint64_t> MemChunkStore::PlainSize(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = chunks_.find(digest);
  if (it == chunks_.end()) {
    return Status::NotFound("chunk missing", ChunkName(digest));
  }
  auto h = ParseChunkHeader(it->second, ChunkName(digest));
  if (!h.ok()) return h.status();
  return static_cast<uint64_t>(h->plain_size);
}

Result<uint64_t> MemChunkStore::StoredSize(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = chunks_.find(digest);
  if (it == chunks_.end()) {
    return Status::NotFound("chunk missing", ChunkName(digest));
  }
  return static_cast<uint64_t>(it->second.size());
}

Status MemChunkStore::Remove(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  if (!chunks_.erase(digest)) {
    return Status::NotFound("chunk missing", ChunkName(digest));
  }
  return Status::OK();
}

Status MemChunkStore::Quarantine(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = chunks_.find(digest);
  if (it == chunks_.end()) {
    return Status::NotFound("chunk missing", ChunkName(digest));
  }
  quarantine_[digest] = std::move(it->second);
  chunks_.erase(it);
  return Status::OK();
}

Status MemChunkStore::List(const std::function<void(const Digest&)>& fn) {
  std::vector<Digest> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [d, _] : chunks_) all.push_back(d);
  }
  for (const auto& d : all) fn(d);
  return Status::OK();
}

std::vector<uint8_t>* MemChunkStore::MutableEncoded(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  return &chunks_.at(digest);
}

size_t MemChunkStore::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return chunks_.size();
}

size_t MemChunkStore::quarantined() const {
  std::lock_guard<std::mutex> l(mu_);
  return quarantine_.size();
}

}  // namespace backy::store
