// Fuzzes ParseDaemonConfig (src/backup/scheduler/config.cc) on the text of
// a scheduler config file: any text is parsed or refused with an error
// naming the file, never a crash, an exception or undefined behaviour.
#include <cstdint>
#include <string>

#include "backup/scheduler/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = backy::backup::scheduler::ParseDaemonConfig(text, "fuzz.conf");
  if (!config.ok()) {
    FUZZ_CHECK(
        config.status().ToString().find("fuzz.conf") != std::string::npos,
        "config error does not name the file");
  }
  return 0;
}
