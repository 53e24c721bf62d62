#!/bin/bash
# A daemon killed with SIGKILL leaves no backup running; restarted after
# the slot of a tag has passed, it runs the missed tags at once, in one run
# (a smoke test; PlannerSimulationTest.MissedTagsRunAtOnceInOneRunAfterARestart
# and PlanTest.MissedTagsAreDueNow test the planning).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

rand_bytes a 4 > "$T/a.raw"
write_config 1 "  s: {short: {interval: 2s, keep: 20}, long: {interval: 4s, keep: 20}}" \
"  a: {schedule: s, source: {type: file, filename: $T/a.raw}}"
start_daemon
wait_for 15 "[ \$(revisions a) -ge 1 ]" || fail "no first revision"
"$BACKY" -b "$BASE/a" status --yaml | grep -q 'tags: \[long, short\]' ||
  fail "the first run did not carry both tags"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
sleep 0.5
! pgrep -f "backy .*-b $BASE/a" > /dev/null || fail "a child outlived the daemon"

log "down for 5 s: both tags are missed"
sleep 5
n=$(revisions a)
restart=$(date +%s)
start_daemon
wait_for 5 "[ \$(revisions a) -gt $n ]" || fail "no catch-up run within 5 s of the restart"
newest=$("$BACKY" -b "$BASE/a" status --yaml | awk '$1 == "tags:" { t = $0 } END { print t }')
echo "$newest" | grep -q 'long, short' || fail "catch-up run tags: $newest"
stop_daemon
log "ok"
