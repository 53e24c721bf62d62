#!/bin/bash
# The scheduler unit's sandbox holds for Ceph: the scheduler, run as the
# configured unit's ExecStart under strace -f, backs up a ceph-rbd job (a
# full run, then an incremental one through `backy run`), with the monitor
# named by a host name (CEPH_ARGS --mon-host localhost:PORT), and every
# system call, socket family and /proc file of it and its jobs fits the
# unit's SystemCallFilter=, RestrictAddressFamilies= and ProcSubset=pid
# (tests/e2e/unit_trace_check.py).
. "$(dirname "$0")/rbd_lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires strace curl
: "${BACKY_BUILD_DIR:?the build directory (set by tests/e2e/CMakeLists.txt)}"
UNIT=$BACKY_BUILD_DIR/man/backy-scheduler.service  # configured from man/*.in
start_cluster

img=rbd/vm
rbd create --size 32M "$img"
rbd_io write "$img" 0 $((2 * OBJ)) first
write_config 1 "  s: {daily: {interval: 1d, keep: 3}}" \
  "  vm: {schedule: s, source: {type: ceph-rbd, pool: rbd, image: vm, ceph_conf: $CEPH_CONF}}"
port=$(sed -n 's/^mon host = v2:127.0.0.1:\([0-9]*\)$/\1/p' "$CEPH_CONF")
[ -n "$port" ] || fail "no mon host in $CEPH_CONF: $(grep -i 'mon host' "$CEPH_CONF")"
export CEPH_ARGS="--mon-host localhost:$port"

exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
read -r -a argv <<< "$exec_start"
argv[0]=$BACKY
for i in "${!argv[@]}"; do [ "${argv[$i]}" = /etc/backy.conf ] && argv[$i]=$CONF; done
strace -f -qq -o "$T/trace" "${argv[@]}" >> "$T/daemon.out" 2>&1 &
tracer=$!
CLEANUPS+=("pkill -KILL -P $tracer; kill -KILL $tracer 2>/dev/null")

log "a full run, then an incremental one"
wait_for 60 "[ \$(revisions vm) -ge 1 ] && [ \"\$(status_field vm state)\" = idle ]" ||
  fail "no first backup: $(cat "$T/daemon.out")"
rbd_io write "$img" $((5 * OBJ)) 4096 second
"$BACKY" run -c "$CONF" vm > /dev/null || fail "backy run failed"
wait_for 60 "[ \$(revisions vm) -ge 2 ] && [ \"\$(status_field vm state)\" = idle ]" ||
  fail "no second backup: $(cat "$T/daemon.out")"
[ "$(status_field vm last-result)" = ok ] || fail "the run: $(status_field vm last-message)"
[ "$(rev_field "$BASE/vm" 0 bytes_read)" = "$OBJ" ] ||
  fail "the second backup read $(rev_field "$BASE/vm" 0 bytes_read) bytes, not one object"

spid=$(awk '$1 == "pid:" { print $2 }' "$BASE/status")
kill -TERM "$spid"
timeout 30 tail --pid="$tracer" -f /dev/null || fail "the scheduler did not stop"
wait "$tracer" || fail "the scheduler failed: $(tail -5 "$T/daemon.out")"

log "the sandbox fits what they did"
grep -q 'connect(.*sin_port=htons('"$port"')' "$T/trace" || fail "the trace has no connection to the monitor"
grep -q 'execve(.*"purge"' "$T/trace" || fail "the trace has no purge"
refused=$(/usr/bin/python3 "$(dirname "$0")/unit_trace_check.py" "$T/trace" "$UNIT") ||
  fail "unit_trace_check.py: $refused"
# libselinux looks for selinuxfs there; hidden, it finds none, as it should.
refused=$(grep -vx 'proc /proc/filesystems' <<< "$refused" || true)
[ -z "$refused" ] || fail "the unit's sandbox would refuse: $refused"
log "ok"
