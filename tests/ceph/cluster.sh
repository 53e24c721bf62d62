#!/bin/bash
# cluster.sh: a throwaway single-node Ceph cluster for backy's RBD tests.
#
#   cluster.sh start DIR    bring up one mon + one memstore OSD with pool
#                           "rbd" inside DIR (created if missing, must be
#                           empty); prints `export CEPH_CONF=DIR/ceph.conf`
#                           for eval. Everything (mon data, OSD data, logs,
#                           pid files, admin sockets) lives inside DIR.
#   cluster.sh stop DIR     stop the daemons started by `start DIR` (by the
#                           PIDs recorded in DIR/pids) and wait for them.
#   cluster.sh run CMD...   start a cluster in a temp dir, export CEPH_CONF,
#                           run CMD, tear down (trap); exits with CMD's code.
#
# Needs Debian's ceph-mon ceph-osd ceph-common (no systemd, no mgr: RBD I/O
# does not need one). Data lives in RAM (memstore), so keep images small.
# Environment:
#   BACKY_CEPH_TIMEOUT        seconds for each wait step (default 60)
#   BACKY_CEPH_MEMSTORE_BYTES OSD capacity in bytes (default 4 GiB; RAM is
#                             only used for data actually written)
#   BACKY_CEPH_KEEP=1         `run` keeps the temp dir (for debugging)
# On any failure the daemons' logs are printed to stderr.
set -euo pipefail

prog=${0##*/}
timeout_s=${BACKY_CEPH_TIMEOUT:-60}
memstore_bytes=${BACKY_CEPH_MEMSTORE_BYTES:-4294967296}

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: $prog start DIR | stop DIR | run CMD [ARGS...]
EOF
  exit 2
}

# Prints the tail of every daemon log in $1 to stderr.
dump_logs() {
  local dir=$1 f
  for f in "$dir"/log/*.log "$dir"/log/*.out; do
    [[ -s $f ]] || continue
    echo "----- $f (last 60 lines) -----" >&2
    tail -n 60 "$f" >&2
  done
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_for DESC DIR CMD...: retries CMD every 0.1 s until it succeeds or
# $timeout_s passes; on timeout prints logs and fails.
wait_for() {
  local desc=$1 dir=$2
  shift 2
  local deadline=$((SECONDS + timeout_s))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "$prog: timed out after ${timeout_s}s waiting for $desc" >&2
      dump_logs "$dir"
      return 1
    fi
    check_alive "$dir" || return 1
    sleep 0.1
  done
}

# Fails (printing logs) when a daemon we started has died.
check_alive() {
  local dir=$1 name pid
  [[ -f $dir/pids ]] || return 0
  while read -r name pid; do
    if ! running "$pid"; then
      echo "$prog: $name (pid $pid) exited unexpectedly" >&2
      dump_logs "$dir"
      return 1
    fi
  done <"$dir/pids"
}

# True while $1 runs; a zombie (killed, not yet reaped by whoever is its
# parent after `start` returned) counts as stopped.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# ceph CLI against the cluster in $dir, bounded so that no step hangs.
cephc() {
  local dir=$1
  shift
  timeout "$timeout_s" ceph -c "$dir/ceph.conf" --connect-timeout 10 "$@"
}

osd_up() {
  cephc "$1" osd dump | grep -q '^osd\.0 up'
}

# spawn DIR NAME CMD...: starts a daemon in the foreground of a background
# job, so that $! is the daemon's own PID; records it in DIR/pids.
spawn() {
  local dir=$1 name=$2
  shift 2
  "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo "$name $!" >>"$dir/pids"
}

missing_tools() {
  local tool
  for tool in monmaptool ceph-mon ceph-osd ceph rbd uuidgen python3 timeout; do
    command -v "$tool" >/dev/null || printf ' %s' "$tool"
  done
}

cmd_start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -n $(ls -A "$dir") ]]; then
    die "start: $dir is not empty"
  fi
  local missing
  missing=$(missing_tools)
  [[ -z $missing ]] ||
    die "start: not installed:$missing (apt-get install ceph-mon ceph-osd ceph-common)"
  mkdir -p "$dir"/{mon,osd,run,log}

  local fsid port osd_uuid
  fsid=$(uuidgen)
  osd_uuid=$(uuidgen)
  port=$(free_port)
  cat >"$dir/ceph.conf" <<EOF
# Throwaway single-node cluster made by $prog; everything lives in $dir.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.\$pid.\$cctid.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
client mount timeout = 30

[mon]
mon data = $dir/mon/\$cluster-\$id
paxos propose interval = 0.05
paxos min wait = 0.01
mon mgr mkfs grace = 86400

[osd]
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $memstore_bytes
osd class load list = *
osd class default list = *
EOF

  local t0=$SECONDS
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
    "$dir/monmap" >>"$dir/log/setup.log" 2>&1 ||
    { dump_logs "$dir"; die "start: monmaptool failed"; }
  ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
    >>"$dir/log/setup.log" 2>&1 ||
    { dump_logs "$dir"; die "start: ceph-mon --mkfs failed"; }
  spawn "$dir" mon.a ceph-mon -c "$dir/ceph.conf" -f -i a
  wait_for "the monitor on 127.0.0.1:$port" "$dir" cephc "$dir" mon stat ||
    { cmd_stop "$dir"; exit 1; }

  local id
  id=$(cephc "$dir" osd new "$osd_uuid" 2>>"$dir/log/setup.log") ||
    { dump_logs "$dir"; cmd_stop "$dir"; die "start: ceph osd new failed"; }
  [[ $id == 0 ]] || { cmd_stop "$dir"; die "start: expected osd id 0, got '$id'"; }
  mkdir -p "$dir/osd/ceph-0"
  ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$dir/log/setup.log" 2>&1 ||
    { dump_logs "$dir"; cmd_stop "$dir"; die "start: ceph-osd --mkfs failed"; }
  spawn "$dir" osd.0 ceph-osd -c "$dir/ceph.conf" -f -i 0
  wait_for "osd.0 to come up" "$dir" osd_up "$dir" ||
    { cmd_stop "$dir"; exit 1; }

  { cephc "$dir" osd pool create rbd 8 8 &&
    timeout "$timeout_s" rbd -c "$dir/ceph.conf" pool init rbd; } \
    >>"$dir/log/setup.log" 2>&1 ||
    { dump_logs "$dir"; cmd_stop "$dir"; die "start: creating pool rbd failed"; }
  echo "cluster up in $((SECONDS - t0))s (mon 127.0.0.1:$port)" >>"$dir/log/setup.log"

  printf 'export CEPH_CONF=%q\n' "$dir/ceph.conf"
}

cmd_stop() {
  local dir=$1 name pid
  [[ -f $dir/pids ]] || return 0
  # The cluster is throwaway: SIGKILL avoids the OSD's shutdown handshake
  # with the monitor (seconds) and memstore's dump of its data to disk.
  while read -r name pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done <"$dir/pids"
  local deadline=$((SECONDS + 10))
  while read -r name pid; do
    while running "$pid" && ((SECONDS < deadline)); do
      sleep 0.05
    done
  done <"$dir/pids"
  rm -f "$dir/pids"
}

cmd_run() {
  (($# > 0)) || usage
  local dir missing
  # CTest's SKIP_RETURN_CODE: a laptop without Ceph skips; CI installs it.
  missing=$(missing_tools)
  if [[ -n $missing ]]; then
    echo "$prog: SKIP: not installed:$missing" >&2
    exit 77
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/backy-ceph.XXXXXX")
  # shellcheck disable=SC2064  # expand $dir now
  trap "cmd_stop '$dir'; [[ \${BACKY_CEPH_KEEP:-} == 1 ]] || rm -rf '$dir'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local exports
  exports=$(cmd_start "$dir") || exit 1
  eval "$exports"
  # CMD runs as a background job (with our stdin) so that a signal reaches
  # our traps at once; they stop CMD before the cluster goes away.
  local rc=0 child
  "$@" <&0 &
  child=$!
  trap 'kill -TERM $child 2>/dev/null; wait $child; exit 130' INT
  trap 'kill -TERM $child 2>/dev/null; wait $child; exit 143' TERM
  wait "$child" || rc=$?
  if ((rc != 0)); then
    echo "$prog: '$*' exited with $rc" >&2
    # Cluster logs only help when a daemon died under the command.
    check_alive "$dir" &&
      echo "$prog: the cluster was still healthy (set BACKY_CEPH_KEEP=1 to keep its logs)" >&2
  fi
  exit "$rc"
}

(($# >= 1)) || usage
mode=$1
shift
case $mode in
start)
  (($# == 1)) || usage
  cmd_start "$1"
  ;;
stop)
  (($# == 1)) || usage
  cmd_stop "$1"
  ;;
run)
  cmd_run "$@"
  ;;
*) usage ;;
esac
