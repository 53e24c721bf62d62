#!/bin/bash
# SIGHUP reloads the config: an added job starts, a removed job stops being
# run (a run in progress finishes), and a broken config is reported with
# file and line while the old one keeps running.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

for j in a b c; do rand_bytes "$j" 4 > "$T/$j.raw"; done
SCHED="  fast: {often: {interval: 3s, keep: 50}}"
job() { echo "  $1: {schedule: fast, source: {type: file, filename: $T/$1.raw}}"; }
write_config 2 "$SCHED" "$(job a; job b)"
start_daemon
wait_for 15 "[ \$(revisions a) -ge 1 ] && [ \$(revisions b) -ge 1 ]" || fail "no first runs"
[ ! -e "$BASE/c" ] || fail "c exists before it is configured"

log "SIGHUP: b removed, c added"
write_config 2 "$SCHED" "$(job a; job c)"
kill -HUP "$DPID"
wait_for 15 "[ \$(revisions c) -ge 1 ]" || fail "c never ran"
grep -q "interval: 3s" "$BASE/c/config" || fail "c's repository config lacks the schedule"
wait_for 10 "! grep -q '^  b:' $BASE/status" || fail "b still in the status file"
sleep 1
nb=$(revisions b)
sleep 4  # more than b's interval (PlannerSimulationTest.AReloadDropsAndAddsJobs: never again)
[ "$(revisions b)" -eq "$nb" ] || fail "b still runs after its removal"

log "SIGHUP with a broken config: the old one stays"
cp "$CONF" "$T/good.conf"
printf 'global: {base-dir: %s}\njobs:\n  d: {schedule: nope, source: {type: file, filename: /x}}\n' "$BASE" > "$CONF"
kill -HUP "$DPID"
wait_for 5 "grep -q 'config not reloaded' $BASE/scheduler.log" || fail "no reload error logged"
grep -q "$CONF:3: jobs.d: unknown schedule 'nope'" "$BASE/scheduler.log" ||
  fail "the error does not name file and line: $(grep 'not reloaded' "$BASE/scheduler.log")"
kill -0 "$DPID" || fail "the daemon died"
nc=$(revisions c)
wait_for 10 "[ \$(revisions c) -gt $nc ]" || fail "c stopped running after a bad reload"

log "a config error at start names file and line, exit 2"
stop_daemon
expect_fail "backy.conf:3: jobs.d: unknown schedule 'nope'" "$BACKY" scheduler -c "$CONF"
rc=0; "$BACKY" scheduler -c "$CONF" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "exit $rc for a config error"
log "ok"
