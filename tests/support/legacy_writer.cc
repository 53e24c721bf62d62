// backy-test-legacy-writer: adds one revision to a backy 2.x repository as
// the Python backy 2.4.3 / 2.5.3 `backup` wrote it (tests/support/
// legacy_repo_writer.h), for the e2e tests and the benchmark.
//
//   backy-test-legacy-writer --version 2.4|2.5 --dir DIR --image IMG
//       --uuid ID [--parent ID|--no-parent] [--tags a,b]
//       [--trust trusted|distrusted|verified]
//       [--timestamp '2026-12-01 19:37:34.453883+00:00'] [--duration 0.25]
//       [--source PATH] [--incomplete]
//   backy-test-legacy-writer --decode CHUNKFILE
//       (writes the chunk's checked plain bytes to stdout)
//
// A new DIR gets the config of a file source (2.4 flat, 2.5 with a
// schedule); for another source (ceph-rbd) write DIR/config first, as 2.x
// would have, and feed the writer an export of the image: an existing
// config is kept.
//
// Exit 0 on success; otherwise one line on stderr and exit 1 (2 for usage).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "legacy_repo_writer.h"
#include "store/legacy_chunk.h"

namespace {

int Usage(const char* msg) {
  fprintf(stderr,
          "backy-test-legacy-writer: %s\n"
          "usage: backy-test-legacy-writer --version 2.4|2.5 --dir DIR "
          "--image IMG --uuid ID [--parent ID|--no-parent] [--tags a,b] "
          "[--trust T] [--timestamp TS] [--duration SECS] [--source PATH] "
          "[--incomplete]\n",
          msg);
  return 2;
}

// Decodes one 2.x chunk file (its hash from its name) to stdout.
int Decode(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fprintf(stderr, "backy-test-legacy-writer: cannot open %s\n", path.c_str());
    return 1;
  }
  const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
  std::string hash = std::filesystem::path(path).filename().string();
  hash = hash.substr(0, hash.find('.'));
  std::vector<uint8_t> plain;
  backy::Status s = backy::store::DecodeLegacyChunk(file, hash, path, &plain);
  if (!s.ok()) {
    fprintf(stderr, "backy-test-legacy-writer: %s\n", s.ToString().c_str());
    return 1;
  }
  return fwrite(plain.data(), 1, plain.size(), stdout) == plain.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--decode")
    return Decode(argv[2]);
  backy::testing::LegacyRevisionSpec spec;
  bool have_version = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--incomplete") {
      spec.incomplete = true;
      continue;
    }
    if (a == "--no-parent") {
      spec.parent = "";
      continue;
    }
    if (i + 1 >= argc) return Usage("an option lacks its value");
    const std::string v = argv[++i];
    if (a == "--version") {
      if (v == "2.4") {
        spec.version = 24;
      } else if (v == "2.5") {
        spec.version = 25;
      } else {
        return Usage("--version is 2.4 or 2.5");
      }
      have_version = true;
    } else if (a == "--dir") {
      spec.dir = v;
    } else if (a == "--image") {
      spec.image = v;
    } else if (a == "--uuid") {
      spec.uuid = v;
    } else if (a == "--parent") {
      spec.parent = v;
    } else if (a == "--tags") {
      size_t start = 0;
      while (start <= v.size() && !v.empty()) {
        size_t comma = v.find(',', start);
        if (comma == std::string::npos) comma = v.size();
        spec.tags.push_back(v.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (a == "--trust") {
      spec.trust = v;
    } else if (a == "--timestamp") {
      spec.timestamp = v;
    } else if (a == "--duration") {
      spec.duration = v;
    } else if (a == "--source") {
      spec.source = v;
    } else {
      return Usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (!have_version || spec.dir.empty() || spec.image.empty() ||
      spec.uuid.empty()) {
    return Usage("--version, --dir, --image and --uuid are needed");
  }
  backy::Status s = backy::testing::WriteLegacyRevision(spec);
  if (!s.ok()) {
    fprintf(stderr, "backy-test-legacy-writer: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
