#!/bin/bash
# backy check -c CONF in each of its four states: UNKNOWN (no status file,
# exit 3), OK (exit 0), WARNING (quarantined chunk, distrusted newest
# revision: exit 1), CRITICAL (a late job, or a stale status file: exit 2).
# Every answer parses as a Nagios plugin's output (plugin guidelines: the
# status line with the totals' perfdata after '|', the long output, the
# jobs' perfdata after the second '|'), and -t gives up with UNKNOWN.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires python3

# nagios_parse < OUTPUT: see nagios_parse.py.
nagios_parse() { python3 "$(dirname "$0")/nagios_parse.py"; }

rand_bytes a 4 > "$T/a.raw"
rand_bytes b 4 > "$T/b.raw"
jobs="  a: {schedule: s, source: {type: file, filename: $T/a.raw}}
  b: {schedule: s, source: {type: file, filename: $T/b.raw}}"
write_config 2 "  s: {often: {interval: 2s, keep: 5}}" "$jobs"

# check EXPECTED_EXIT PATTERN [ARGS]: run the check, compare the exit code
# and the status line's text (before its perfdata); PERF is the parsed
# perfdata (see nagios_parse).
check() {
  local rc=0 out want=$1 pattern=$2
  shift 2
  out=$("$BACKY" check -c "$CONF" "$@") || rc=$?
  log "check: exit $rc: $out"
  [ "$rc" -eq "$want" ] || fail "exit $rc, want $want: $out"
  PARSED=$(printf '%s\n' "$out" | nagios_parse) || fail "not a plugin's output: $out"
  echo "$PARSED" | sed -n 's/^text: //p' | grep -Eq "$pattern" ||
    fail "status line does not match /$pattern/: $out"
  CHECK_OUT=$out
  PERF=$(echo "$PARSED" | sed -n 's/^perf: //p')
}

# perf LABEL: "VALUE UOM WARN CRIT MIN MAX" of a datum (spaces in the label
# as '_').
perf() { echo "$PERF" | awk -v l="$1" '$1 == l { $1 = ""; sub(/^ /, ""); print }'; }

log "UNKNOWN without a status file"
check 3 "^UNKNOWN: no status file $BASE/status"

log "OK after the scheduler ran"
start_daemon
wait_for 15 "[ \$(revisions a) -ge 1 ] && [ \$(revisions b) -ge 1 ]" || fail "no runs"
stop_daemon
check 0 "^OK: 2 jobs within SLA$"
[ "$(perf late)" = "0 - - 0 0 2" ] || fail "late perfdata: $(perf late)"
[ "$(perf failed)" = "0 - 0 - 0 2" ] || fail "failed perfdata: $(perf failed)"
[ "$(perf distrusted)" = "0 - 0 - 0 2" ] || fail "distrusted perfdata: $(perf distrusted)"
for j in a b; do
  set -- $(perf "${j}_age")
  [ "$2" = s ] && [ "$3" = - ] && [ "$4" = 3 ] && [ "$5" = 0 ] || fail "$j age perfdata: $*"
  [ "$1" -le 3 ] || fail "$j age $1 s, but the check is OK"
  set -- $(perf "${j}_duration")
  [ "$2" = s ] || fail "$j duration perfdata: $*"
  [ "$1" = "$(status_field $j last-duration | awk '{ print $1 + 0 }')" ] ||
    fail "$j duration $1 != the status file's $(status_field $j last-duration)"
  echo "$CHECK_OUT" | grep -q "^job $j: SLA ok (newest revision .* old, limit 3s), last run ok in " ||
    fail "no long-output line for $j: $CHECK_OUT"
done

log "CRITICAL when the newest revision is older than 1.5 x 2 s"
sleep 4
check 2 "^CRITICAL: 2 jobs not within SLA$"
echo "$CHECK_OUT" | grep -q "^a: newest revision is .* old (SLA 3s)" || fail "no line for a"
[ "$(perf late | cut -d' ' -f1)" = 2 ] || fail "late perfdata: $(perf late)"
set -- $(perf a_age)
[ "$1" -gt "$4" ] || fail "a is late, but its age $1 is within its crit $4"

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
[ "$(perf distrusted | cut -d' ' -f1)" = 1 ] || fail "distrusted perfdata: $(perf distrusted)"
"$BACKY" -b "$BASE/b" verify
check 0 "^OK: "

log "CRITICAL when the status file is older than 5 minutes"
touch -d '6 minutes ago' "$BASE/status"
check 2 "^CRITICAL: status file $BASE/status is 6m.* old"

log "-t: a check that hangs (a FIFO as the status file) gives up with UNKNOWN"
mv "$BASE/status" "$T/status.saved"
mkfifo "$BASE/status"
start=$(date +%s)
check 3 "^UNKNOWN: check timed out after 1s$" -t 1
[ $(( $(date +%s) - start )) -le 5 ] || fail "-t 1 took $(( $(date +%s) - start )) s"
[ "$(echo "$CHECK_OUT" | wc -l)" = 1 ] || fail "-t: more than one line: $CHECK_OUT"
rc=0; out=$(timeout 10 "$BACKY" check -c "$CONF" -t 1 --json) || rc=$?
[ "$rc" = 3 ] || fail "-t --json: exit $rc"
echo "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["status"] == "UNKNOWN" and d["code"] == 3, d' ||
  fail "-t --json: $out"
rm "$BASE/status"
mv "$T/status.saved" "$BASE/status"
check 2 "^CRITICAL: " -t 30

log "UNKNOWN for a job named like the status file (issue 9: it blinded check)"
write_config 2 "  s: {often: {interval: 1h, keep: 5}}" "$jobs
  status: {schedule: s, source: {type: file, filename: $T/a.raw}}"
check 3 "^UNKNOWN: $CONF:[0-9]+: job name 'status' is reserved"
log "ok"
