#!/bin/bash
# A failing job backs off (backoff-base 2s: the first retry after 2 s) and
# says why in the status file, while another job keeps its schedule; once
# its source is back, the next retry succeeds and the backoff resets. A
# smoke test: the doubling (2, 4, 8 s) and the healthy job's slots are
# tested on the Planner with a fake clock (scheduler_plan_test.cc,
# PlannerSimulationTest.AFailingJobBacksOffWhileAnotherKeepsItsSchedule).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

rand_bytes ok 4 > "$T/ok.raw"
write_config 2 "  fast: {often: {interval: 4s, keep: 5}}" \
"  good: {schedule: fast, source: {type: file, filename: $T/ok.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}"
start_daemon

log "a failure: waiting for a retry in 2 s, the error in the status file"
wait_for 10 "[ \"\$(status_field broken failures)\" = 1 ]" ||
  fail "broken: failures $(status_field broken failures)"
[ "$(status_field broken last-result)" = failed ] || fail "last-result"
[ "$(status_field broken state)" = waiting ] || fail "state $(status_field broken state)"
grep -q "source image does not exist" "$BASE/status" || fail "status lacks the error"
grep -q "job broken: failed (1 in a row), retry in 2s" "$BASE/scheduler.log" ||
  fail "no 2 s backoff: $(grep broken "$BASE/scheduler.log")"

log "the source is back: the next retry succeeds and resets the backoff"
cp "$T/ok.raw" "$T/missing.raw"
wait_for 10 "[ \$(revisions broken) -ge 1 ]" || fail "broken never recovered"
wait_for 5 "[ \"\$(status_field broken failures)\" = 0 ]" || fail "failures not reset"

log "the healthy job was not held up"
wait_for 10 "[ \$(revisions good) -ge 2 ]" || fail "good has $(revisions good) revisions"
stop_daemon
log "ok"
