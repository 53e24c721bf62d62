// Test points: named places in the code (TestPoint("index")) where a test
// can act — a unit test through a callback it registers (SetTestPoint), an
// end-to-end test through the environment: BACKY_TEST_HOOK="POINT:kill"
// kills the process with SIGKILL at POINT, "POINT:sleep=N" sleeps N
// seconds there. The one test-hook mechanism of backy; without a hook a
// test point costs an atomic load. Thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace backy {

// Marks the test point `name`: runs the callback registered for it, if
// any, else the BACKY_TEST_HOOK action naming it, else nothing. Runs on
// the calling thread.
void TestPoint(std::string_view name);

// Registers `fn` to run at test point `name`, replacing any callback for
// it; an empty `fn` removes it. For unit tests.
void SetTestPoint(std::string_view name, std::function<void()> fn);

// Registers a callback for the lifetime of the object.
class ScopedTestPoint {
 public:
  ScopedTestPoint(std::string_view name, std::function<void()> fn)
      : name_(name) {
    SetTestPoint(name_, std::move(fn));
  }
  ~ScopedTestPoint() { SetTestPoint(name_, {}); }
  ScopedTestPoint(const ScopedTestPoint&) = delete;
  ScopedTestPoint& operator=(const ScopedTestPoint&) = delete;

 private:
  std::string name_;
};

}  // namespace backy
