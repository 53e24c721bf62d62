#!/bin/bash
# A failing job backs off exponentially (backoff-base 2s: retries after 2,
# 4, 8 s) while another job keeps its schedule; once its source is back,
# the next retry succeeds and the backoff resets.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

rand_bytes ok 4 > "$T/ok.raw"
write_config 2 "  fast: {often: {interval: 4s, keep: 5}}" \
"  good: {schedule: fast, source: {type: file, filename: $T/ok.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}"
start_daemon

log "three failures in a row, then a wait of 8 s"
wait_for 20 "[ \"\$(status_field broken failures)\" = 3 ]" ||
  fail "broken: failures $(status_field broken failures)"
[ "$(status_field broken last-result)" = failed ] || fail "last-result"
[ "$(status_field broken state)" = waiting ] || fail "state $(status_field broken state)"
grep -q "source image does not exist" "$BASE/status" || fail "status lacks the error"

# The daemon log's attempts: gaps of >= 2, 4 s between attempts 1-2, 2-3.
mapfile -t starts < <(grep "job broken: starting backup" "$BASE/scheduler.log" |
  awk '{ split($2, t, ":"); print t[1] * 3600 + t[2] * 60 + t[3] }')
[ "${#starts[@]}" -ge 3 ] || fail "attempts: ${#starts[@]}"
gap1=$(awk -v a="${starts[0]}" -v b="${starts[1]}" 'BEGIN { print b - a }')
gap2=$(awk -v a="${starts[1]}" -v b="${starts[2]}" 'BEGIN { print b - a }')
log "gaps between attempts: $gap1 s, $gap2 s"
awk -v g="$gap1" 'BEGIN { exit !(g >= 1.9 && g < 3.5) }' || fail "first backoff $gap1 s"
awk -v g="$gap2" 'BEGIN { exit !(g >= 3.9 && g < 5.5) }' || fail "second backoff $gap2 s"
grep -q "job broken: failed (3 in a row), retry in 8s" "$BASE/scheduler.log" ||
  fail "no 8 s backoff: $(grep broken "$BASE/scheduler.log")"

log "the healthy job was not held up"
[ "$(revisions good)" -ge 2 ] || fail "good has $(revisions good) revisions"

log "the source is back: the next retry succeeds and resets the backoff"
cp "$T/ok.raw" "$T/missing.raw"
wait_for 15 "[ \$(revisions broken) -ge 1 ]" || fail "broken never recovered"
wait_for 5 "[ \"\$(status_field broken failures)\" = 0 ]" || fail "failures not reset"
stop_daemon
log "ok"
