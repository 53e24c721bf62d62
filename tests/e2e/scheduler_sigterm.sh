#!/bin/bash
# SIGTERM while a backup runs: the daemon stops the child, waits for it and
# exits 0; the repository holds only complete revisions, and the next
# backup by hand works (no stale lock, no leftovers).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

rand_bytes small 4 > "$T/small.raw"
write_config 1 "  fast: {often: {interval: 1h, keep: 5}}" \
"  small: {schedule: fast, source: {type: file, filename: $T/small.raw}}"
start_daemon
wait_for 15 "[ \$(revisions small) -ge 1 ]" || fail "no first revision"
[ "$(status_field small last-result)" != failed ] || fail "first run failed"
sha_before=$(sha < "$T/small.raw")

log "a big job; SIGTERM while its backup runs"
rand_bytes big 768 > "$T/big.raw"
write_config 1 "  fast: {often: {interval: 1h, keep: 5}}" \
"  small: {schedule: fast, source: {type: file, filename: $T/small.raw}}
  big: {schedule: fast, source: {type: file, filename: $T/big.raw}}"
kill -HUP "$DPID"
wait_for 10 "grep -q 'job big: starting backup' $BASE/scheduler.log" || fail "big never started"
sleep 0.5
pgrep -f "backy -l $BASE/big/backy.log -b $BASE/big backup" > /dev/null ||
  log "(the backup already finished; the test still checks a clean stop)"
stop_daemon
! pgrep -f "backy .*-b $BASE/" > /dev/null || fail "children left running"
grep -Eq "job big: (interrupted|ok|warning)" "$BASE/scheduler.log" ||
  fail "no end of the big job logged"
log "$(grep -E 'job big: (interrupted|ok|warning)' "$BASE/scheduler.log")"

log "only complete revisions: each one restores bit-exact"
for id in $(rev_ids "$BASE/big"); do
  [ "$("$BACKY" -b "$BASE/big" restore -r "$id" - | sha)" = "$(sha < "$T/big.raw")" ] ||
    fail "revision $id of big does not restore"
done
[ "$("$BACKY" -b "$BASE/small" restore - | sha)" = "$sha_before" ] || fail "small"
[ -z "$(ls -A "$BASE/big/tmp" 2>/dev/null)" ] || log "(tmp leftovers are cleaned by the next backup)"
"$BACKY" -b "$BASE/big" backup often || fail "backup by hand after the stop"
log "ok"
