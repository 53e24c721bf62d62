#!/bin/bash
# Log rotation (issue 13): rename the daemon's log and a job's log, send
# SIGUSR1 (and separately SIGHUP): new lines go to new files at the old
# paths, none to the renamed ones. Then the shipped logrotate snippet
# (man/backy.logrotate, its paths pointed at this base-dir and its
# postrotate at this daemon) passes `logrotate -d` and rotates for real.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires openssl
unset JOURNAL_STREAM
PATH=$PATH:/usr/sbin:/sbin
: "${BACKY_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

rand_bytes rot 1 > "$T/a.raw"
write_config 1 "  fast: {often: {interval: 2s, keep: 2}}" \
"  a: {schedule: fast, source: {type: file, filename: $T/a.raw}}"
start_daemon
DLOG=$BASE/scheduler.log
JLOG=$BASE/a/backy.log
wait_for 10 "grep -q 'job a: ok in' $DLOG" || fail "no first run: $(tail -3 "$DLOG")"

# rotated SIGNAL MARK: rename the daemon's log to .SIGNAL, send SIGNAL;
# the marker line and the next runs' lines are in a new file, and the
# renamed one stops growing once the marker is written.
rotated() {
  local sig=$1 mark=$2
  mv "$DLOG" "$DLOG.$sig"
  kill -"$sig" "$DPID"
  wait_for 10 "grep -q '$mark' $DLOG 2>/dev/null" || fail "$sig: no '$mark' in a new $DLOG: $(tail -3 "$DLOG.$sig")"
  local size; size=$(stat -c %s "$DLOG.$sig")
  local runs; runs=$(grep -c 'job a: ok in' "$DLOG" || true)
  wait_for 10 "[ \$(grep -c 'job a: ok in' $DLOG) -gt $runs ]" || fail "$sig: no run logged in the new file"
  [ "$(stat -c %s "$DLOG.$sig")" = "$size" ] || fail "$sig: the renamed log still grows: $(tail -2 "$DLOG.$sig")"
  ! grep -q "$mark" "$DLOG.$sig" || fail "$sig: the marker went to the renamed file"
  [ "$(stat -c %a "$DLOG")" = 600 ] || fail "$sig: the new log is mode $(stat -c %a "$DLOG")"
}

log "SIGUSR1 after renaming the daemon's log: a fresh log"
rotated USR1 "SIGUSR1: log file reopened"
log "SIGHUP: the config is reloaded, then the log reopened"
rotated HUP "SIGHUP: log file reopened"
# The reload is logged before the reopen, so into the renamed file.
grep -q "SIGHUP: config reloaded" "$DLOG.HUP" || fail "SIGHUP did not reload: $(tail -3 "$DLOG.HUP")"

log "a job's log renamed: the next run writes a new one, no signal needed"
mv "$JLOG" "$JLOG.moved"
# A run may have been halfway: wait for a whole one in the new file.
whole_run() {
  awk '/scheduler: job a: backup started/ { s = 1 }
       s == 1 && /info backup often: revision/ { s = 2 }
       s == 2 && /run often ended ok/ { ok = 1 }
       END { exit !ok }' "$JLOG" 2>/dev/null
}
wait_for 10 whole_run || fail "no whole run in a new job log: $(ls "$BASE/a"; cat "$JLOG")"
[ "$(stat -c %a "$JLOG")" = 600 ] || fail "the new job log is mode $(stat -c %a "$JLOG")"

if command -v logrotate > /dev/null; then
  log "the shipped logrotate snippet: logrotate -d accepts it, logrotate -f rotates"
  snippet=$BACKY_SOURCE_DIR/man/backy.logrotate
  build=$(cd "$(dirname "$BACKY")/../.." && pwd)
  if command -v cmake > /dev/null && [ -f "$build/cmake_install.cmake" ]; then
    # The file `cmake --install` ships, where it ships it.
    DESTDIR=$T/root cmake --install "$build" --prefix /usr/local > "$T/install.log" 2>&1 ||
      fail "cmake --install: $(tail -3 "$T/install.log")"
    cmp "$T/root/etc/logrotate.d/backy" "$snippet" ||
      fail "cmake --install did not ship $snippet as /etc/logrotate.d/backy: $(grep -i logrotate "$T/install.log")"
    snippet=$T/root/etc/logrotate.d/backy
  fi
  sed -e "s#/srv/backy#$BASE#g" \
      -e "s#systemctl kill .*#kill -USR1 $DPID#" \
      -e "s#create 0600 root root#create 0600 $(id -un) $(id -gn)#" \
      "$snippet" > "$T/logrotate.conf"
  grep -q "kill -USR1 $DPID" "$T/logrotate.conf" || fail "the snippet has no postrotate to point at the daemon"
  logrotate -d -s "$T/lr.state" "$T/logrotate.conf" > "$T/lr.debug" 2>&1 ||
    fail "logrotate -d: $(cat "$T/lr.debug")"
  ! grep -iq "error" "$T/lr.debug" || fail "logrotate -d: $(grep -i error "$T/lr.debug")"
  grep -q "rotating pattern: $BASE/scheduler.log" "$T/lr.debug" || fail "the daemon's log is not rotated: $(head "$T/lr.debug")"
  grep -q "considering log $BASE/a/backy.log" "$T/lr.debug" || fail "the job's log is not rotated"
  logrotate -f -s "$T/lr.state" "$T/logrotate.conf" > "$T/lr.out" 2>&1 || fail "logrotate -f: $(cat "$T/lr.out")"
  [ -s "$DLOG.1" ] && [ -s "$JLOG.1" ] || fail "nothing rotated: $(ls "$BASE" "$BASE/a")"
  wait_for 10 "grep -q 'SIGUSR1: log file reopened' $DLOG" || fail "the postrotate signal did not reopen the log"
  wait_for 10 "grep -q 'job a: ok in' $DLOG && grep -q 'run often ended ok' $JLOG" ||
    fail "no new lines after logrotate: $(ls -l "$BASE" "$BASE/a")"
else
  [ -z "${CI:-}" ] || fail "logrotate is not installed (tests/setup.sh installs it)"
  log "SKIP the logrotate part: logrotate is not installed"
fi
stop_daemon
log "ok"
