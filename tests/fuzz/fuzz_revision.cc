// Fuzzes Revision::FromYaml (src/store/revision.cc) on the text of a .rev
// file. A revision that parses must write back (ToYaml) to text that parses
// again to the same revision.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_check.h"
#include "store/revision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto rev = backy::store::Revision::FromYaml(text, "fuzz.rev");
  if (!rev.ok()) return 0;
  const std::string yaml = rev->ToYaml();
  auto again = backy::store::Revision::FromYaml(yaml, "fuzz.rev");
  FUZZ_CHECK(again.ok(), "a revision's own YAML does not parse");
  if (again->ToYaml() != yaml) {
    std::fprintf(stderr, "first ToYaml:\n%s\nsecond ToYaml:\n%s\n",
                 yaml.c_str(), again->ToYaml().c_str());
  }
  FUZZ_CHECK(again->ToYaml() == yaml, "YAML round trip differs");
  return 0;
}
