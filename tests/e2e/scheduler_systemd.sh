#!/bin/bash
# The scheduler as a system service, from `cmake --install` (into a
# DESTDIR) on:
# - the unit lands in systemd's unit directory, its ExecStart naming the
#   installed binary; systemd-analyze verify accepts it and security rates
#   it below 2.5 (man/backy-scheduler.service.in says what keeps it above);
# - the installed example config is one the scheduler runs (its paths moved
#   into the test directory), and its base-dir is the unit's ReadWritePaths=;
# - with NOTIFY_SOCKET set (what systemd gives a Type=notify service) the
#   scheduler sends READY=1 once started, RELOADING=1 then READY=1 on
#   SIGHUP, STOPPING=1 on SIGTERM, and no READY=1 with a config it cannot
#   read or parse (exit 2);
# - what the scheduler and its jobs do (strace -f) fits the unit's sandbox:
#   SystemCallFilter=, RestrictAddressFamilies=, ProcSubset=pid.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires systemd-analyze cmake pkg-config strace /usr/bin/python3
: "${BACKY_BUILD_DIR:?the build directory (set by tests/e2e/CMakeLists.txt)}"
E2E=$(dirname "$0")

DEST=$T/dest
DESTDIR=$DEST cmake --install "$BACKY_BUILD_DIR" > "$T/install.log" 2>&1 ||
  fail "cmake --install: $(cat "$T/install.log")"

log "the units are in systemd's unit directory, ExecStart the installed binary"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
UNIT=$DEST$unitdir/backy-scheduler.service
[ -f "$UNIT" ] || fail "no $unitdir/backy-scheduler.service installed: $(cat "$T/install.log")"
[ -f "$DEST$unitdir/backy-nbd.service" ] && [ -f "$DEST$unitdir/backy-nbd.socket" ] ||
  fail "the nbd units are not in $unitdir"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BACKY_BUILD_DIR/CMakeCache.txt")
bindir=$(sed -n 's/^CMAKE_INSTALL_BINDIR:PATH=//p' "$BACKY_BUILD_DIR/CMakeCache.txt")
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
for u in backy-scheduler.service backy-nbd.service; do
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$DEST$unitdir/$u")
  [ "$exe" = "$bindir/backy" ] || fail "$u: ExecStart runs '$exe', not $bindir/backy"
  "$DEST$exe" --version | grep -q '^backy ' || fail "$u: $DEST$exe is not the installed backy"
done
grep -q '^Type=notify$' "$UNIT" || fail "the scheduler unit is not Type=notify"

log "systemd-analyze verify and security"
# verify wants ExecStart's binary where the unit says; it is in DESTDIR.
mkdir -p "$T/units"
sed "s|^ExecStart=$bindir/backy|ExecStart=$DEST$bindir/backy|" "$UNIT" \
  > "$T/units/backy-scheduler.service"
systemd-analyze verify --man=no "$T/units/backy-scheduler.service" > "$T/verify" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$T/verify")"
unit_exposure_below "$T/units/backy-scheduler.service" 2.5

log "the example config: installed, its base-dir writable under the unit"
EXAMPLE=$DEST$prefix/share/backy/backy.conf.example
[ -f "$EXAMPLE" ] || fail "no share/backy/backy.conf.example installed"
example_base=$(awk '$1 == "base-dir:" { print $2; exit }' "$EXAMPLE")
[ -n "$example_base" ] || fail "the example sets no base-dir"
grep '^ReadWritePaths=' "$UNIT" | tr ' =' '\n\n' | sed 's/^-//' | grep -qx -- "$example_base" ||
  fail "the example's base-dir $example_base is not in the unit's ReadWritePaths="
# Its paths, moved into $T; each must be there (else this test is stale).
for p in /srv/backy /etc/backy/api.token /var/lib/libvirt/images/vm2.raw; do
  grep -q "$p" "$EXAMPLE" || fail "the example no longer names $p: update this test"
done
sed -e "s|/srv/backy|$BASE|g" -e "s|/etc/backy/api.token|$T/api.token|" \
  -e "s|/var/lib/libvirt/images/vm2.raw|$T/vm2.raw|" "$EXAMPLE" > "$CONF"
echo "$TOKEN" > "$T/api.token"
rand_bytes vm2 4 > "$T/vm2.raw"
# The example's ceph-rbd job fails at once, the same everywhere: a Ceph
# config without monitors.
: > "$T/ceph.conf"
export CEPH_CONF=$T/ceph.conf
unset CEPH_ARGS

log "NOTIFY_SOCKET: READY=1 once started"
NOTIFY_LOG=$T/notify.log
: > "$NOTIFY_LOG"
/usr/bin/python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    msg = s.recv(65536).decode(errors="replace")
    with open(sys.argv[2], "a") as f:
        f.write(" ".join(msg.split("\n")) + "\n")
' "$T/notify.sock" "$NOTIFY_LOG" &
listener=$!
CLEANUPS+=("kill $listener 2>/dev/null")
wait_for 10 "[ -S $T/notify.sock ]" || fail "the notify listener did not start"
export NOTIFY_SOCKET=$T/notify.sock

# ExecStart as the unit has it, the binary and config in $T.
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
read -r -a argv <<< "$exec_start"
argv[0]=$DEST${argv[0]}
for i in "${!argv[@]}"; do [ "${argv[$i]}" = /etc/backy.conf ] && argv[$i]=$CONF; done
[[ " ${argv[*]} " == *" $CONF "* ]] || fail "ExecStart does not read /etc/backy.conf: $exec_start"
strace -f -qq -o "$T/trace" "${argv[@]}" >> "$T/daemon.out" 2>&1 &
tracer=$!
# Killing strace would leave the scheduler running: kill its child.
CLEANUPS+=("pkill -KILL -P $tracer; kill -KILL $tracer 2>/dev/null")
wait_for 30 "grep -q '^READY=1' $NOTIFY_LOG" || fail "no READY=1: $(cat "$T/daemon.out")"
# Outside the journal and without -l, the daemon logs to BASE/scheduler.log.
grep -q 'scheduler started' "$BASE/scheduler.log" ||
  fail "READY=1 before the start: $(cat "$T/daemon.out" "$BASE/scheduler.log")"
grep -q '^READY=1 STATUS=2 jobs' "$NOTIFY_LOG" || fail "READY=1 without the jobs: $(cat "$NOTIFY_LOG")"
spid=$(awk '$1 == "pid:" { print $2 }' "$BASE/status")
[ -n "$spid" ] && kill -0 "$spid" || fail "no scheduler pid in the status file"

log "the example's jobs run: vm2 (file) backs up, vm1 (ceph-rbd) fails"
wait_for 60 "[ \$(revisions vm2) -ge 1 ] && [ \"\$(status_field vm1 last-result)\" = failed ]" ||
  fail "vm2: $(revisions vm2) revisions, vm1: $(status_field vm1 last-result): $(cat "$T/daemon.out")"
wait_for 30 "[ \"\$(status_field vm2 state)\" = idle ]" || fail "vm2 still running"

log "SIGHUP: RELOADING=1, then READY=1"
kill -HUP "$spid"
wait_for 10 "[ \$(grep -c '^READY=1' $NOTIFY_LOG) -ge 2 ]" ||
  fail "no READY=1 after SIGHUP: $(cat "$NOTIFY_LOG")"
sed -n 2p "$NOTIFY_LOG" | grep -Eq '^RELOADING=1 MONOTONIC_USEC=[0-9]+$' ||
  fail "not RELOADING=1 before the second READY=1: $(cat "$NOTIFY_LOG")"
sed -n 3p "$NOTIFY_LOG" | grep -q '^READY=1' || fail "the reload did not end in READY=1: $(cat "$NOTIFY_LOG")"

log "SIGTERM: STOPPING=1, exit 0"
kill -TERM "$spid"
rc=0
timeout 30 tail --pid="$tracer" -f /dev/null || fail "the scheduler did not stop"
wait "$tracer" || rc=$?
[ $rc = 0 ] || fail "the scheduler exited $rc: $(tail -5 "$T/daemon.out")"
[ "$(sed -n 4p "$NOTIFY_LOG")" = "STOPPING=1" ] || fail "no STOPPING=1 last: $(cat "$NOTIFY_LOG")"
[ "$(wc -l < "$NOTIFY_LOG")" = 4 ] || fail "other notifications: $(cat "$NOTIFY_LOG")"

log "the sandbox fits what they did: system calls, socket families, /proc files"
grep -q 'execve(.*"backup"' "$T/trace" || fail "the trace has no backup child"
grep -q '^SystemCallFilter=@system-service$' "$UNIT" && grep -q '^ProcSubset=pid$' "$UNIT" ||
  fail "the unit's SystemCallFilter=/ProcSubset= changed: update this test"
refused=$(/usr/bin/python3 "$E2E/unit_trace_check.py" "$T/trace" "$UNIT") ||
  fail "unit_trace_check.py: $refused"
# libselinux looks for selinuxfs there; hidden, it finds none, as it should.
refused=$(grep -vx 'proc /proc/filesystems' <<< "$refused" || true)
[ -z "$refused" ] || fail "the unit's sandbox would refuse: $refused"

log "a config that cannot be read or parsed: exit 2, no READY=1"
: > "$NOTIFY_LOG"
for conf in "$T/no-such.conf" "$T/bad.conf"; do
  echo "global: {worker-limit: lots}" > "$T/bad.conf"
  rc=0; "$BACKY" scheduler -c "$conf" > "$T/bad.out" 2>&1 || rc=$?
  [ $rc = 2 ] || fail "scheduler -c $conf: exit $rc: $(cat "$T/bad.out")"
done
sleep 0.5
[ ! -s "$NOTIFY_LOG" ] || fail "notified with a bad config: $(cat "$NOTIFY_LOG")"
echo PASS
