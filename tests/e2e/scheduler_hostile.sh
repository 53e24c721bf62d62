#!/bin/bash
# issue 9: the scheduler against bad config values, a careless operator and
# other local users: numbers out of range and reserved job names refuse to
# start with one line (exit 2); api.listen never removes a file that is not
# a socket; base-dir, status file, log and socket are owner-only; a flood of
# idle connections with few file descriptors neither spins nor floods the
# log nor stops a due backup; over-long headers and bodies get 431 and 413.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires curl prlimit /usr/bin/python3
needs_intruder
chmod 755 "$T"

rand_bytes a 4 > "$T/a.raw"
JOB_A="  a: {schedule: s, source: {type: file, filename: $T/a.raw}}"

# refuses SCHEDULES JOBS PATTERN: the daemon must exit 2 at once with one
# line naming the config file and line.
refuses() {
  write_config 1 "$1" "$2"
  local rc=0
  timeout 10 "$BACKY" scheduler -c "$CONF" > "$T/refused.out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "exit $rc (want 2) for: $2: $(head -c 500 "$T/refused.out")"
  [ "$(wc -l < "$T/refused.out")" -eq 1 ] || fail "not one line: $(head -c 500 "$T/refused.out")"
  grep -Eq "^backy: .*$CONF:[0-9]+: .*$3" "$T/refused.out" || fail "no '$CONF:LINE: $3': $(cat "$T/refused.out")"
}
log "numbers out of range and reserved job names are refused at start"
refuses "  s: {h: {interval: 1h, keep: 4294967296}}" "$JOB_A" "keep must be at least 0 and at most"
refuses "  s: {h: {interval: 288230376151711744, keep: 3}}" "$JOB_A" "interval must be at least 1s and at most"
refuses "  s: {h: {interval: 1h, keep: 3}, min-keep: 4294967297}" "$JOB_A" "min-keep must be at least"
write_config 4294967296 "  s: {h: {interval: 1h, keep: 3}}" "$JOB_A"
rc=0; timeout 10 "$BACKY" scheduler -c "$CONF" > "$T/refused.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "worker-limit must be at least 1 and at most" "$T/refused.out" ||
  fail "worker-limit 2^32: exit $rc: $(head -c 300 "$T/refused.out")"
for name in status scheduler.lock scheduler.log api.sock; do
  refuses "  s: {h: {interval: 1h, keep: 3}}" "  $name: {schedule: s, source: {type: file, filename: $T/a.raw}}" "job name '$name' is reserved"
done
refuses "  s: {h: {interval: 1h, keep: 3}}" "  '-x': {schedule: s, source: {type: file, filename: $T/a.raw}}" "bad job name"
refuses "  s: {h: {interval: 1h, keep: 3}}" "  $(printf 'v%.0s' {1..256}): {schedule: s, source: {type: file, filename: $T/a.raw}}" "longer than 255"
rm -rf "$BASE"

log "api.listen on a regular file: refused, and the file is kept"
mkdir -p "$T/sock"
echo precious > "$T/sock/api"
cat > "$CONF" <<EOF
global: {base-dir: $BASE, status-interval: 1s}
api: {token: $TOKEN, listen: "unix:$T/sock/api"}
schedules: {s: {h: {interval: 1h, keep: 3}}}
jobs:
$JOB_A
EOF
rc=0; timeout 10 "$BACKY" scheduler -c "$CONF" > "$T/refused.out" 2>&1 || rc=$?
[ "$(cat "$T/sock/api" 2>/dev/null)" = precious ] || fail "the regular file at api.listen was removed"
[ "$rc" -ne 0 ] || fail "the daemon started on a regular file"
grep -q "not a socket.*$T/sock/api" "$T/refused.out" || fail "unclear error: $(cat "$T/refused.out")"
rm -rf "$BASE"

log "owner-only base-dir, status file, log, lock and socket (with umask 022)"
write_config 1 "  s: {h: {interval: 2s, keep: 50}}" "$JOB_A"
(umask 022; exec prlimit --nofile=128:128 "$BACKY" scheduler -c "$CONF" >>"$T/daemon.out" 2>&1) &
DPID=$!
CLEANUPS+=("kill -KILL $DPID 2>/dev/null")
wait_for 10 "[ -S $BASE/api.sock ] && [ -f $BASE/status ]" || fail "daemon did not start: $(cat "$T/daemon.out")"
wait_for 20 "[ \$(revisions a) -ge 1 ]" || fail "no first backup: $(tail "$BASE/scheduler.log")"
for f in "$BASE:700" "$BASE/status:600" "$BASE/scheduler.log:600" "$BASE/scheduler.lock:600" "$BASE/api.sock:600"; do
  mode=$(stat -c %a "${f%:*}")
  [ "$mode" = "${f##*:}" ] || fail "${f%:*} is mode $mode, want ${f##*:}"
done
! as_intruder cat "$BASE/status" > /dev/null 2>&1 || fail "another user reads the status file"
! as_intruder cat "$BASE/scheduler.log" > /dev/null 2>&1 || fail "another user reads the log"
! as_intruder ls "$BASE" > /dev/null 2>&1 || fail "another user lists base-dir"
grep -q '^UMask=0077$' "$BACKY_SOURCE_DIR/man/backy-scheduler.service.in" || fail "the unit sets no UMask=0077"

log "over-long header: 431; over-long body: 413; the log line stays short"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$BASE/api.sock" \
  -H "X-Junk: $(head -c 20000 /dev/zero | tr '\0' x)" http://backy/v1/status) || true
[ "$code" = 431 ] || fail "20 kB header: HTTP $code, want 431"
head -c 200000 /dev/zero > "$T/body"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$BASE/api.sock" \
  -H "Authorization: Bearer $TOKEN" -H 'Expect:' --data-binary @"$T/body" http://backy/v1/status) || true
[ "$code" = 413 ] || fail "200 kB body: HTTP $code, want 413"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$BASE/api.sock" \
  -H "Authorization: Bearer $TOKEN" http://backy/v1/status) || true
[ "$code" = 200 ] || fail "the API does not answer after that: HTTP $code"

log "a flood of 1100 idle connections with RLIMIT_NOFILE 128"
cpu() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
before=$(revisions a)
log_before=$(stat -c %s "$BASE/scheduler.log")
/usr/bin/python3 - "$BASE/api.sock" 8 > "$T/flood.out" 2>&1 <<'PY' &
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
path, hold = sys.argv[1], float(sys.argv[2])
socks = []
for i in range(1100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
    except OSError:
        s.close(); continue
    socks.append(s)
print("open", len(socks), flush=True)
time.sleep(hold)
PY
FLOOD=$!
CLEANUPS+=("kill $FLOOD 2>/dev/null")
wait_for 10 "grep -q open $T/flood.out" || fail "the flood did not start: $(cat "$T/flood.out")"
c0=$(cpu); sleep 3; c1=$(cpu)
log "daemon CPU during 3 s of flood: $((c1 - c0)) ticks"
[ $((c1 - c0)) -lt 60 ] || fail "the daemon spins: $((c1 - c0)) ticks of CPU in 3 s"
wait_for 4 "[ \$(revisions a) -gt $before ]" || fail "no backup ran during the flood: $(tail -3 "$BASE/scheduler.log")"
wait "$FLOOD" || true

log "200 unauthenticated requests with 4 kB paths do not flood the log"
/usr/bin/python3 - "$BASE/api.sock" <<'PY'
import socket, sys
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(b"GET /" + b"A" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
PY
growth=$(( $(stat -c %s "$BASE/scheduler.log") - log_before ))
log "the log grew $growth bytes"
[ "$growth" -lt 65536 ] || fail "scheduler.log grew $growth bytes: $(tail -c 600 "$BASE/scheduler.log")"
grep -q "Too many open files" "$BASE/scheduler.log" && ! grep -q "pausing accepts" "$BASE/scheduler.log" &&
  fail "accept errors without backoff"

log "SIGTERM removes only the socket it made: a file put in its place survives"
mv "$BASE/api.sock" "$T/moved.sock"
echo precious > "$BASE/api.sock"
stop_daemon
[ "$(cat "$BASE/api.sock" 2>/dev/null)" = precious ] || fail "the file at api.listen was removed at exit"
rm "$BASE/api.sock" "$T/moved.sock"
start_daemon
stop_daemon
[ ! -e "$BASE/api.sock" ] || fail "the socket was left behind"
log ok
