// Tells the service manager how the scheduler's start, reloads and stop go
// (systemd's Type=notify protocol, sd_notify(3) through libsystemd, the one
// file that includes it): READY=1, RELOADING=1, STOPPING=1 on the socket
// named by $NOTIFY_SOCKET. Without NOTIFY_SOCKET (not started by systemd)
// every call does nothing. Thread-safe.
#pragma once

#include <string>

namespace backy::backup::scheduler {

// The config is applied, the API listens and the jobs are planned (at
// start, and again after a reload). `status` is a one-line summary that
// `systemctl status` shows.
void NotifyReady(const std::string& status);

// A SIGHUP reload begins; NotifyReady follows when it is done (applied or
// not: the scheduler runs on either way).
void NotifyReloading();

// SIGTERM or SIGINT: the scheduler is stopping its jobs and will exit.
void NotifyStopping();

}  // namespace backy::backup::scheduler
