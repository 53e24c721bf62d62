#!/bin/bash
# The scheduler runs several jobs on file sources (smoke test; the timing
# itself is tested on the Planner with a fake clock, scheduler_plan_test.cc):
# at most worker-limit at once, a later run at each job's own offset in the
# interval (spread by job name); the status file and GET /v1/status agree;
# the API refuses requests without the right token; `backy jobs` and
# `backy run` use the API.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires curl jq python3

INTERVAL=8
# Four job names whose offsets (FNV-1a 64 of the name mod interval) differ.
mapfile -t JOBS < <(python3 - "$INTERVAL" <<'PY'
import sys
iv = int(sys.argv[1]); seen = {}; 
for i in range(100):
    name = "vm%d" % i
    h = 14695981039346656037
    for c in name.encode():
        h ^= c; h = (h * 1099511628211) % 2**64
    if h % iv not in seen.values():
        seen[name] = h % iv
    if len(seen) == 4: break
for n, o in seen.items(): print(n, o)
PY
)
jobs_yaml=
for line in "${JOBS[@]}"; do
  set -- $line
  rand_bytes "$1" 4 > "$T/$1.raw"
  jobs_yaml+="  $1: {schedule: fast, source: {type: file, filename: $T/$1.raw}}"$'\n'
done
write_config 2 "  fast: {often: {interval: ${INTERVAL}s, keep: 10}}" "$jobs_yaml"
start_daemon

log "every job gets its first run and one later run"
for line in "${JOBS[@]}"; do
  set -- $line
  wait_for 30 "[ \$(revisions $1) -ge 2 ]" || fail "$1 has $(revisions "$1") revisions"
done

log "never more than worker-limit (2) jobs at once"
max=$(awk '/ job [^ ]+: starting backup/ { n++; if (n > max) max = n }
           / job [^ ]+: (ok|warning|interrupted) in| job [^ ]+: failed \(/ { n-- }
           END { print max + 0 }' "$BASE/scheduler.log")
[ "$max" -eq 2 ] || fail "max concurrency $max (want 2): $(cat "$BASE/scheduler.log")"

log "later runs start at each job's own offset in the interval"
for line in "${JOBS[@]}"; do
  set -- $line
  for t in $(rev_times "$1" | tail -n +2); do
    d=$(( ( (t % INTERVAL) - $2 + INTERVAL ) % INTERVAL ))
    [ "$d" -le 2 ] || fail "$1: revision at $t, $((t % INTERVAL)) s into the interval, offset $2"
  done
done

log "the API wants the token"
api GET /v1/status > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "no token: HTTP $(cat "$T/code")"
api GET /v1/status -H "Authorization: Bearer wrong" > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "wrong token: HTTP $(cat "$T/code")"
api POST /v1/jobs/vm1/run > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "run without token: HTTP $(cat "$T/code")"
! grep -q "$TOKEN" "$BASE/scheduler.log" "$T/daemon.out" || fail "the token was logged"

log "status file and /v1/status agree"
agree() {
  api GET /v1/status -H "Authorization: Bearer $TOKEN" > "$T/status.json"
  [ "$(cat "$T/code")" = 200 ] || return 1
  for line in "${JOBS[@]}"; do
    set -- $line
    for f in last-time last-result failures newest-revision; do
      [ "$(jq -r ".jobs[\"$1\"][\"$f\"]" "$T/status.json")" = "$(status_field "$1" "$f")" ] || return 1
    done
  done
}
wait_for 10 agree || fail "status file and API differ: $(cat "$T/status.json"; cat "$BASE/status")"

log "backy jobs and backy run"
"$BACKY" jobs -c "$CONF" > "$T/jobs.txt"
for line in "${JOBS[@]}"; do
  set -- $line
  grep -q "^$1 " "$T/jobs.txt" || fail "backy jobs lacks $1: $(cat "$T/jobs.txt")"
done
first=${JOBS[0]%% *}
n=$(revisions "$first")
"$BACKY" run -c "$CONF" "$first" 2>/dev/null || "$BACKY" run -c "$CONF" "$first" ||
  fail "backy run failed"
wait_for 10 "[ \$(revisions $first) -gt $n ]" || fail "backy run did not run $first"
expect_fail "no such job" "$BACKY" run -c "$CONF" nosuchjob

stop_daemon
log "ok"
