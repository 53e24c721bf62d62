#include "backup/scheduler/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>

namespace backy::backup::scheduler {
namespace {

void Notify(const std::string& state) {
  const int r = ::sd_notify(/*unset_environment=*/0, state.c_str());
  // r == 0: no NOTIFY_SOCKET, nobody to tell. A failure is only logged: the
  // scheduler works without it, and systemd times the start out and says so.
  if (r < 0) {
    spdlog::warn("cannot notify the service manager ($NOTIFY_SOCKET): {}",
                 std::strerror(-r));
  }
}

}  // namespace

void NotifyReady(const std::string& status) {
  Notify("READY=1\nSTATUS=" + status);
}

void NotifyReloading() {
  // systemd 253's Type=notify-reload wants the time the reload began, to
  // tell this reload from a READY=1 of an earlier one; older ones ignore it.
  struct timespec ts = {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec =
      static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  Notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void NotifyStopping() { Notify("STOPPING=1"); }

}  // namespace backy::backup::scheduler
