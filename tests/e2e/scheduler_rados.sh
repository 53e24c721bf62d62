#!/bin/bash
# Two schedulers (two hosts: two processes, two state dirs) on one config
# with base-dir rados:POOL: each job runs on one host at a time (its lease),
# every due tag is backed up exactly once (no two revisions of a job in one
# interval), a scheduler killed with kill -9 in the middle of a job has the
# job taken over by the other once its lease ran out, and `backy check` on
# the other host reports every job OK from the repositories.
. "$(dirname "$0")/rbd_lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"

export BACKY_RADOS_LEASE_SECONDS=4
# Longer than the 10 s after which a host retries a job whose lease it
# did not get, and status-interval longer than the test: only the re-read
# under the lease keeps that retry from backing the job up again.
INTERVAL=30
start_cluster
ceph osd pool create backups 8 >/dev/null 2>&1 || fail "pool create"

JOBS=(vm1 vm2 vm3)
jobs_yaml=
for j in "${JOBS[@]}"; do
  rand_bytes "$j" 4 > "$T/$j.raw"
  jobs_yaml+="  $j: {schedule: fast, source: {type: file, filename: $T/$j.raw}}"$'\n'
done
cat > "$CONF" <<CONF_EOF
global: {base-dir: "rados:backups", state-dir: $T/unused, worker-limit: 3, status-interval: 1h, backoff-base: 2s, ceph-conf: $CEPH_CONF}
schedules:
  fast: {often: {interval: ${INTERVAL}s, keep: 100}}
jobs:
$jobs_yaml
CONF_EOF

# start_host NAME [ENV...]: a scheduler with state dir $T/NAME.
declare -A HPID
start_host() {
  local h=$1; shift
  mkdir -p "$T/$h"
  env "$@" "$BACKY" scheduler -c "$CONF" --state-dir "$T/$h" >>"$T/$h.out" 2>&1 &
  HPID[$h]=$!
  CLEANUPS+=("kill -KILL ${HPID[$h]} 2>/dev/null")
  wait_for 15 "[ -f $T/$h/status ]" || fail "$h did not start: $(cat "$T/$h.out")"
}
stop_host() {
  kill -TERM "${HPID[$1]}"
  timeout 30 tail --pid="${HPID[$1]}" -f /dev/null || fail "$1 did not stop"
}
rrevs() { { rev_ids "rados:backups/$1" 2>/dev/null || true; } | wc -l; }
rtimes() {
  "$BACKY" -b "rados:backups/$1" status --yaml | awk '$1 == "timestamp:" { print $2 }' |
    while read -r ts; do date -d "$ts" +%s; done
}
# At most one revision of a job per slot of its grid (k * interval +
# the job's offset, FNV-1a 64 of its name mod interval: plan.h): each due
# tag was backed up once, by one host.
check_once() {
  local j
  for j in "${JOBS[@]}"; do
    rtimes "$j" | python3 -c '
import sys
job, iv = sys.argv[1], int(sys.argv[2])
h = 14695981039346656037
for c in job.encode():
    h ^= c; h = (h * 1099511628211) % 2**64
ts = [int(l) for l in sys.stdin]
slots = [(t - h % iv) // iv for t in ts]
if len(set(slots)) != len(slots):
    sys.exit("%s: two revisions in one interval: %s" % (job, ts))
' "$j" "$INTERVAL" || fail "$j backed up twice in one interval"
  done
}

log "two hosts: every job backed up once per interval"
start_host a
start_host b
for j in "${JOBS[@]}"; do
  wait_for 60 "[ \$(rrevs $j) -ge 2 ]" || fail "$j has $(rrevs "$j") revisions"
done
sleep 12  # the losers' retries
check_once
grep -h "runs elsewhere\|backed up already" "$T/a/scheduler.log" "$T/b/scheduler.log" |
  head -3
stop_host a
stop_host b

log "kill -9 the host in the middle of a job: the other takes it over"
# New content: the next backups read chunks (where the hook sleeps).
for j in "${JOBS[@]}"; do rand_bytes "$j-2" 4 > "$T/$j.raw"; done
start_host b BACKY_TEST_HOOK=chunks:sleep=60
wait_for 30 "grep -q 'starting backup' $T/b/scheduler.log" || fail "b started nothing"
victim=$(grep 'starting backup' "$T/b/scheduler.log" | head -1 | sed 's/.*job \([^:]*\):.*/\1/')
before=$(rrevs "$victim")
start_host a
sleep 2
kill -KILL "${HPID[b]}" $(pgrep -P "${HPID[b]}") 2>/dev/null
killed_at=$(date +%s)
wait_for 45 "[ \$(rrevs $victim) -gt $before ]" ||
  fail "$victim not taken over: $(tail -20 "$T/a/scheduler.log")"
log "$victim taken over after $(( $(date +%s) - killed_at ))s"
grep -q "job $victim: starting backup" "$T/a/scheduler.log" || fail "a did not run $victim"
check_once

log "check on host a reports every job from the repositories"
"$BACKY" check -c "$CONF" --state-dir "$T/a" >"$T/check.out" 2>&1 ||
  { cat "$T/check.out"; fail "check"; }
grep -q "^OK: 3 jobs within SLA" "$T/check.out" || { cat "$T/check.out"; fail "check output"; }
stop_host a
log "OK"
