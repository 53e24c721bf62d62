// Writes the binary seed inputs of the fuzz targets (corpus/*/) with the
// real encoders: valid indexes and chunks with right checksums, and NBD
// option and request streams. Run by hand after a format change:
//   make -C build fuzz_make_seeds && build/tests/fuzz/fuzz_make_seeds
//   tests/fuzz/corpus
// The text seeds (revisions, configs) are checked in as written.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nbd/wire.h"
#include "store/chunk_format.h"
#include "store/digest.h"
#include "store/index.h"
#include "store/legacy_chunk.h"
#include "store/revision.h"

namespace {

namespace st = backy::store;
namespace nbd = backy::nbd;

std::string g_dir;

void Write(const std::string& target, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  const std::string path = g_dir + "/" + target + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed, bool compressible) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    v[i] = compressible ? static_cast<uint8_t>("backy "[i % 6])
                        : static_cast<uint8_t>(x >> 24);
  }
  return v;
}

void Indexes() {
  Write("index", "empty", st::RevisionIndex(0, st::kDefaultChunkSize).Encode());
  st::RevisionIndex one(1000, st::kDefaultChunkSize);
  one.set_slot(0, backy::Digest::Of(Pattern(1000, 1, false)));
  Write("index", "one_short_slot", one.Encode());
  st::RevisionIndex three(3 * 4096 - 100, 4096);
  three.set_slot(0, backy::Digest::Of(Pattern(4096, 2, false)));
  three.set_slot(2, backy::Digest::Of(Pattern(3996, 3, false)));  // slot 1 zero
  Write("index", "three_slots_4k", three.Encode());
}

void Chunks() {
  st::ChunkEncoder enc(st::CompressionOptions{});
  st::ChunkEncoder raw(st::CompressionOptions{false, 3});
  std::vector<uint8_t> out;
  auto chunk = [&](st::ChunkEncoder& e, const std::string& name,
                   const std::vector<uint8_t>& plain) {
    e.Encode(backy::Digest::Of(plain), plain, &out);
    Write("chunk", name, out);
  };
  chunk(enc, "empty", {});
  chunk(raw, "raw_small", Pattern(100, 4, false));
  chunk(raw, "raw_2_blocks", Pattern(st::kChunkBlockSize + 10, 5, false));
  chunk(enc, "zstd_small", Pattern(3000, 6, true));
  chunk(enc, "zstd_2_blocks",
        Pattern(st::kCompressedBlockSize + 5000, 7, true));
}

void Revisions() {
  st::Revision r;
  r.id = "N7mAeVRpDm2kMNagvf4CZX";
  r.timestamp_us = 1795311002123456;
  r.parent = "QnWqLq8eF4yPQnYPAgwC7M";
  r.tags = {"daily", "hourly"};
  r.trust = st::Trust::kVerified;
  r.size = 10737418240;
  r.chunk_size = st::kDefaultChunkSize;
  r.source = "file:/images/vm1.raw";
  r.stats.bytes_read = 4194304;
  r.stats.chunks_new = 1;
  r.stats.chunks_zero = 2559;
  r.stats.duration = 1.25;
  r.verification.method = "readback";
  r.verification.chunks_checked = 1;
  r.verification.chunks_total = 1;
  r.verification.fraction = 1;
  r.verification.coverage = 1;
  r.verification.complete = true;
  const std::string y = r.ToYaml();
  Write("revision", "full.rev", std::vector<uint8_t>(y.begin(), y.end()));

  // backy 2.x chunk files (src/store/legacy_chunk.h): text and zeros.
  for (const auto& [name, repeat] :
       std::vector<std::pair<std::string, int>>{{"text", 200}, {"short", 1}}) {
    std::string text;
    for (int i = 0; i < repeat; ++i)
      text += "hello, 2.x line " + std::to_string(i) + "\n";
    std::vector<uint8_t> plain(text.begin(), text.end());
    plain.resize(plain.size() + 4096, 0);
    std::vector<uint8_t> file;
    if (!st::EncodeLegacyChunk(plain, &file).ok()) return;
    Write("legacy_chunk", name, file);
  }
}

void AddU16(std::vector<uint8_t>* v, uint16_t x) {
  uint8_t b[2];
  nbd::PutU16(b, x);
  v->insert(v->end(), b, b + 2);
}
void AddU32(std::vector<uint8_t>* v, uint32_t x) {
  uint8_t b[4];
  nbd::PutU32(b, x);
  v->insert(v->end(), b, b + 4);
}
void AddU64(std::vector<uint8_t>* v, uint64_t x) {
  uint8_t b[8];
  nbd::PutU64(b, x);
  v->insert(v->end(), b, b + 8);
}
void AddString(std::vector<uint8_t>* v, const std::string& s) {
  AddU32(v, static_cast<uint32_t>(s.size()));
  v->insert(v->end(), s.begin(), s.end());
}
void AddOption(std::vector<uint8_t>* v, uint32_t option,
               const std::vector<uint8_t>& data) {
  AddU64(v, nbd::kOptMagic);
  AddU32(v, option);
  AddU32(v, static_cast<uint32_t>(data.size()));
  v->insert(v->end(), data.begin(), data.end());
}

void NbdOptions() {
  const uint32_t flags =
      nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes;
  std::vector<uint8_t> info;
  AddString(&info, "vm1");
  AddU16(&info, 2);
  AddU16(&info, nbd::kInfoName);
  AddU16(&info, nbd::kInfoBlockSize);
  std::vector<uint8_t> meta;
  AddString(&meta, "vm1");
  AddU32(&meta, 2);
  AddString(&meta, "base:allocation");
  AddString(&meta, "base:");

  std::vector<uint8_t> s;  // what libnbd sends: structured, meta, go
  AddU32(&s, flags);
  AddOption(&s, nbd::kOptStructuredReply, {});
  AddOption(&s, nbd::kOptListMetaContext, meta);
  AddOption(&s, nbd::kOptSetMetaContext, meta);
  AddOption(&s, nbd::kOptInfo, info);
  AddOption(&s, nbd::kOptGo, info);
  Write("nbd_option", "structured_meta_go", s);

  s.clear();  // nbdinfo --list
  AddU32(&s, flags);
  AddOption(&s, nbd::kOptList, {});
  AddOption(&s, nbd::kOptStartTls, {});
  AddOption(&s, 0x1234, {1, 2, 3});
  AddOption(&s, nbd::kOptAbort, {});
  Write("nbd_option", "list_abort", s);

  s.clear();  // the old way: NBD_OPT_EXPORT_NAME
  AddU32(&s, nbd::kClientFlagFixedNewstyle);
  std::vector<uint8_t> name = {'v', 'm', '1'};
  AddOption(&s, nbd::kOptExportName, name);
  Write("nbd_option", "export_name", s);
}

void AddRequest(std::vector<uint8_t>* v, uint16_t flags, uint16_t type,
                uint64_t handle, uint64_t offset, uint32_t length) {
  AddU32(v, nbd::kRequestMagic);
  AddU16(v, flags);
  AddU16(v, type);
  AddU64(v, handle);
  AddU64(v, offset);
  AddU32(v, length);
}

void NbdRequests() {
  // Context: 1 MiB export, writable, structured, base:allocation.
  std::vector<uint8_t> s;
  AddU64(&s, 1 << 20);
  AddU16(&s, nbd::kTransHasFlags | nbd::kTransSendFlush | nbd::kTransSendFua);
  s.push_back(3);
  s.push_back(0);
  AddRequest(&s, 0, nbd::kCmdRead, 1, 0, 4096);
  AddRequest(&s, nbd::kCmdFlagDf, nbd::kCmdRead, 2, 4096, 4096);
  AddRequest(&s, nbd::kCmdFlagFua, nbd::kCmdWrite, 3, 8192, 16);
  s.insert(s.end(), 16, 0xab);
  AddRequest(&s, nbd::kCmdFlagNoHole, nbd::kCmdWriteZeroes, 4, 0, 512);
  AddRequest(&s, 0, nbd::kCmdTrim, 5, 512, 512);
  AddRequest(&s, nbd::kCmdFlagReqOne, nbd::kCmdBlockStatus, 6, 0, 1 << 20);
  AddRequest(&s, 0, nbd::kCmdCache, 7, 0, 65536);
  AddRequest(&s, 0, nbd::kCmdFlush, 8, 0, 0);
  AddRequest(&s, 0, nbd::kCmdRead, 9, (1 << 20) - 1, 2);  // beyond the end
  AddRequest(&s, 0, nbd::kCmdDisc, 10, 0, 0);
  Write("nbd_request", "all_commands", s);

  s.clear();  // read-only, simple replies
  AddU64(&s, 10737418240);
  AddU16(&s, nbd::kTransHasFlags | nbd::kTransReadOnly);
  s.push_back(0);
  s.push_back(0);
  AddRequest(&s, 0, nbd::kCmdRead, 1, 10737418240 - 4096, 4096);
  AddRequest(&s, 0, nbd::kCmdWrite, 2, 0, 8);
  s.insert(s.end(), 8, 0xcd);
  AddRequest(&s, 0, nbd::kCmdRead, 3, 0, nbd::kMaxBlockSize + 1);
  AddRequest(&s, 0, 99, 4, 0, 1);
  Write("nbd_request", "read_only", s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  g_dir = argv[1];
  Indexes();
  Chunks();
  Revisions();
  NbdOptions();
  NbdRequests();
  return 0;
}
