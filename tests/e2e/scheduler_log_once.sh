#!/bin/bash
# The scheduler's own log gets each line once, in one place (issue 13; the
# rule is in backy(1), LOGS): BASE/scheduler.log by default; the -l file
# alone when given; standard error alone under the journal (JOURNAL_STREAM
# naming stderr), with syslog priorities; standard error alone with
# log-file "-". Counted on a distinctive line, "scheduler started (pid N)",
# and on a failing job's warning.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
unset JOURNAL_STREAM

rand_bytes once 1 > "$T/a.raw"
write_config 1 "  fast: {often: {interval: 1h, keep: 1}}" \
"  a: {schedule: fast, source: {type: file, filename: $T/a.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}"

# run_daemon TARGET ERR [ARGS...]: the scheduler with stderr appended to
# ERR, until the failing job's warning is in TARGET (a fresh file); then
# SIGTERM.
run_daemon() {
  local target=$1 err=$2; shift 2
  : >> "$err"
  "$BACKY" "$@" scheduler -c "$CONF" 2>>"$err" &
  DPID=$!
  CLEANUPS+=("kill -KILL $DPID 2>/dev/null")
  wait_for 15 "grep -q 'job broken: failed (1 in a row)' $target 2>/dev/null" ||
    fail "no failure logged in $target: $(tail -3 "$err")"
  stop_daemon
}

# count FILE STRING: lines of FILE (missing: 0) containing STRING.
count() { [ -e "$1" ] || { echo 0; return; }; grep -cF -- "$2" "$1" || true; }
# once_in FILE: this run's start line is in FILE once and in no other log.
once_in() {
  local w want started="scheduler started (pid $DPID)"
  for w in "$BASE/scheduler.log" "$T/d.log" "$T/conf.log" "$T/daemon.err" "$T/j.err" "$T/dash.err" "$T/sym.err"; do
    want=0; [ "$w" = "$1" ] && want=1
    [ "$(count "$w" "$started")" = $want ] || fail "'$started' $(count "$w" "$started") times in $w (want $want)"
  done
}

log "default: BASE/scheduler.log only, nothing on stderr"
run_daemon "$BASE/scheduler.log" "$T/daemon.err"
once_in "$BASE/scheduler.log"
[ ! -s "$T/daemon.err" ] || fail "stderr got lines: $(head -3 "$T/daemon.err")"
mv "$BASE/scheduler.log" "$T/old.log.0"

log "-l FILE: that file only, from the start (the base-dir warning too)"
chmod 755 "$BASE"
run_daemon "$T/d.log" "$T/daemon.err" -l "$T/d.log"
once_in "$T/d.log"
[ "$(count "$T/d.log" "$BASE is mode 755")" = 1 ] || fail "the base-dir warning is not in the -l file once: $(head -3 "$T/d.log")"
[ ! -s "$T/daemon.err" ] || fail "stderr got lines: $(head -3 "$T/daemon.err")"
[ "$(stat -c %a "$T/d.log")" = 600 ] || fail "the -l log is mode $(stat -c %a "$T/d.log")"
mv "$T/d.log" "$T/old.log.1"

log "-l naming a planted symlink: refused, not followed; the log goes to stderr"
echo precious > "$T/victim"
ln -s "$T/victim" "$T/sym.log"
run_daemon "$T/sym.err" "$T/sym.err" -l "$T/sym.log"
grep -q "cannot open log file $T/sym.log: it is a symlink (refused)" "$T/sym.err" ||
  fail "no error naming the symlink: $(head -3 "$T/sym.err")"
[ "$(cat "$T/victim")" = precious ] || fail "the symlink's target was written"
once_in "$T/sym.err"

log "under the journal (JOURNAL_STREAM names stderr): stderr only, with priorities"
: > "$T/j.err"
JOURNAL_STREAM=$(stat -c %d:%i "$T/j.err") run_daemon "$T/j.err" "$T/j.err"
once_in "$T/j.err"
grep -q "^<6>scheduler started (pid $DPID)" "$T/j.err" || fail "no <6> priority: $(head -3 "$T/j.err")"
grep -q "^<4>job broken: failed (1 in a row)" "$T/j.err" || fail "no <4> priority for the warning"
[ ! -e "$BASE/scheduler.log" ] || fail "a copy went to scheduler.log: $(head -3 "$BASE/scheduler.log")"

log "JOURNAL_STREAM inherited but naming another stream: the file as usual"
JOURNAL_STREAM=1:1 run_daemon "$BASE/scheduler.log" "$T/daemon.err"
once_in "$BASE/scheduler.log"
mv "$BASE/scheduler.log" "$T/old.log.2"

log "global.log-file: a path is used even under the journal; '-' is stderr"
write_config 1 "  fast: {often: {interval: 1h, keep: 1}}" \
"  a: {schedule: fast, source: {type: file, filename: $T/a.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}" "log-file: $T/conf.log"
: > "$T/j.err"
JOURNAL_STREAM=$(stat -c %d:%i "$T/j.err") run_daemon "$T/conf.log" "$T/j.err"
once_in "$T/conf.log"
write_config 1 "  fast: {often: {interval: 1h, keep: 1}}" \
"  a: {schedule: fast, source: {type: file, filename: $T/a.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}" "log-file: '-'"
run_daemon "$T/dash.err" "$T/dash.err"
once_in "$T/dash.err"
log "ok"
