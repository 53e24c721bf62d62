#!/bin/bash
# backy check -c CONF in each of its four states: UNKNOWN (no status file,
# exit 3), OK (exit 0), WARNING (quarantined chunk, distrusted newest
# revision: exit 1), CRITICAL (a late job, or a stale status file: exit 2).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

rand_bytes a 4 > "$T/a.raw"
rand_bytes b 4 > "$T/b.raw"
jobs="  a: {schedule: s, source: {type: file, filename: $T/a.raw}}
  b: {schedule: s, source: {type: file, filename: $T/b.raw}}"
write_config 2 "  s: {often: {interval: 2s, keep: 5}}" "$jobs"

# check EXPECTED_EXIT PATTERN: run the check, compare exit and first line.
check() {
  local rc=0 out
  out=$("$BACKY" check -c "$CONF") || rc=$?
  log "check: exit $rc: $out"
  [ "$rc" -eq "$1" ] || fail "exit $rc, want $1: $out"
  echo "$out" | head -1 | grep -Eq "$2" || fail "first line does not match /$2/: $out"
  CHECK_OUT=$out
}

log "UNKNOWN without a status file"
check 3 "^UNKNOWN: no status file $BASE/status"

log "OK after the scheduler ran"
start_daemon
wait_for 15 "[ \$(revisions a) -ge 1 ] && [ \$(revisions b) -ge 1 ]" || fail "no runs"
stop_daemon
check 0 "^OK: 2 jobs within SLA$"

log "CRITICAL when the newest revision is older than 1.5 x 2 s"
sleep 4
check 2 "^CRITICAL: 2 jobs not within SLA$"
echo "$CHECK_OUT" | grep -q "^a: newest revision is .* old (SLA 3s)" || fail "no line for a"

log "WARNING for a quarantined chunk and a distrusted newest revision"
write_config 2 "  s: {often: {interval: 1h, keep: 5}}" "$jobs"
mkdir -p "$BASE/a/quarantine"
echo junk > "$BASE/a/quarantine/0123.chunk"
check 1 "^WARNING: "
echo "$CHECK_OUT" | grep -q "^a: 1 quarantined chunks" || fail "no quarantine line"
rm -r "$BASE/a/quarantine"
check 0 "^OK: "
"$BACKY" -b "$BASE/b" distrust -r last
check 1 "^WARNING: "
echo "$CHECK_OUT" | grep -q "^b: newest revision .* is distrusted" || fail "no distrust line"
"$BACKY" -b "$BASE/b" verify
check 0 "^OK: "

log "CRITICAL when the status file is older than 5 minutes"
touch -d '6 minutes ago' "$BASE/status"
check 2 "^CRITICAL: status file $BASE/status is 6m.* old"

log "UNKNOWN for a job named like the status file (issue 9: it blinded check)"
write_config 2 "  s: {often: {interval: 1h, keep: 5}}" "$jobs
  status: {schedule: s, source: {type: file, filename: $T/a.raw}}"
check 3 "^UNKNOWN: $CONF:[0-9]+: job name 'status' is reserved"
log "ok"
