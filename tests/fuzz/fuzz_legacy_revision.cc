// Fuzzes the readers of a backy 2.x revision (src/store/legacy_repository.h):
// the input is a .rev file's text, a NUL byte, then a JSON mapping's text.
// A .rev that parses must survive being written in our form and read back
// (same id, time, parent, tags, trust); a mapping that parses must give an
// index whose slot count fits its image size.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "store/index.h"
#include "store/legacy_repository.h"
#include "store/revision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string rev_text(input.substr(0, split));
  const std::string_view mapping_text = split == std::string_view::npos
                                            ? std::string_view()
                                            : input.substr(split + 1);

  bool complete = false;
  auto rev =
      backy::store::Revision::FromLegacyYaml(rev_text, "fuzz.rev", &complete);
  if (rev.ok()) {
    FUZZ_CHECK(rev->legacy, "a 2.x revision not marked legacy");
    rev->size = 1;
    rev->chunk_size = backy::store::kLegacyChunkSize;
    auto again = backy::store::Revision::FromYaml(rev->ToYaml(), "fuzz.rev");
    FUZZ_CHECK(again.ok(), "a 2.x revision does not survive our YAML");
    FUZZ_CHECK(again->id == rev->id && again->parent == rev->parent &&
                   again->timestamp_us == rev->timestamp_us &&
                   again->tags == rev->tags && again->trust == rev->trust,
               "a 2.x revision changed in our YAML");
  }

  auto index = backy::store::ParseLegacyMapping(mapping_text, "fuzz");
  if (index.ok()) {
    FUZZ_CHECK(index->chunk_size() == backy::store::kLegacyChunkSize,
               "a 2.x index not of 4 MiB slots");
    FUZZ_CHECK(
        index->slot_count() ==
            backy::store::SlotsFor(index->image_size(), index->chunk_size()),
        "slot count does not fit the image size");
  }
  return 0;
}
