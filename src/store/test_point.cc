#include "store/test_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace backy {

namespace {

std::mutex g_mu;
// Registered callbacks, GUARDED_BY(g_mu); shared so one can run unlocked.
std::map<std::string, std::shared_ptr<std::function<void()>>, std::less<>>*
    g_points = nullptr;
std::atomic<bool> g_any{false};  // g_points is not empty

// The BACKY_TEST_HOOK action for `name`: "kill", "sleep=N" or "".
std::string_view EnvAction(std::string_view name) {
  static const char* hook = std::getenv("BACKY_TEST_HOOK");
  if (!hook) return {};
  std::string_view h(hook);
  if (!h.starts_with(name) || h.size() <= name.size() ||
      h[name.size()] != ':') {
    return {};
  }
  return h.substr(name.size() + 1);
}

}  // namespace

void TestPoint(std::string_view name) {
  if (g_any.load(std::memory_order_acquire)) {
    std::shared_ptr<std::function<void()>> fn;
    {
      std::lock_guard<std::mutex> l(g_mu);
      auto it = g_points->find(name);
      if (it != g_points->end()) fn = it->second;
    }
    if (fn) {
      (*fn)();
      return;
    }
  }
  std::string_view action = EnvAction(name);
  if (action == "kill") {
    ::kill(::getpid(), SIGKILL);
  } else if (action.starts_with("sleep=")) {
    ::sleep(std::stoi(std::string(action.substr(6))));
  }
}

void SetTestPoint(std::string_view name, std::function<void()> fn) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_points) g_points = new std::remove_pointer_t<decltype(g_points)>();
  if (fn) {
    (*g_points)[std::string(name)] =
        std::make_shared<std::function<void()>>(std::move(fn));
  } else {
    g_points->erase(std::string(name));
  }
  g_any.store(!g_points->empty(), std::memory_order_release);
}

}  // namespace backy
