#!/usr/bin/env bash
# Benchmark of issue 15: a RADOS repository next to a directory repository,
# in one run, on a throwaway one-node memstore cluster (tests/ceph/cluster.sh).
# Not a test: run it by hand.
#
#   tests/bench/bench_rados.sh [-b BACKY] [--compare BACKY2] [-w WORKDIR]
#                              [-s SIZE_MIB] [-t SECS] [-o RESULTS.md]
#
# The image is gen_image.py's `segments` (32 MiB runs of random, random,
# written zeros, English text). For each repository:
#   backup full         seconds, and OSD ops per chunk object written
#   backup incremental  after `gen_image.py mutate` of 10 % (seconds, OSD ops)
#   restore             to a file (seconds)
#   rand qd1 / qd32     fio --ioengine=nbd randread 4 KiB (IOPS), and OSD ops
#                       per NBD read
#   seq                 nbdcopy URI null: (MiB/s)
# plus `backy copy` dir -> RADOS and RADOS -> dir (seconds, MiB/s of the
# stored bytes). OSD ops are the OSD's `op` counter (`perf dump`) before and
# after: every round trip of every client, so also the repository's own
# objects (head, index, leases). --compare runs the NBD reads of the RADOS
# repository with a second binary too (before/after a change).
# The server is pinned to CPU 0, clients to CPU 1; the OSD runs where it
# may. A memstore OSD on this machine says nothing absolute about a real
# cluster (no network, no disks): compare ratios within one run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
COMPARE=""
WORK_PARENT=/var/tmp
SIZE_MIB=512
RUNTIME=10
RESULTS="$HERE/RESULTS-rados.md"
CMDLINE="$0 $*"

usage() {
  cat <<EOF
usage: $0 [options]
  -b, --backy PATH     backy binary (default: $BACKY)
      --compare PATH   a second backy binary for the RADOS NBD reads
  -w, --workdir DIR    parent of the scratch directory (default: $WORK_PARENT)
  -s, --size-mib N     image size in MiB (default: $SIZE_MIB; the OSD keeps
                       everything in RAM)
  -t, --runtime SECS   seconds per fio run (default: $RUNTIME)
  -o, --output FILE    results file (default: $RESULTS)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    --compare) COMPARE=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -s|--size-mib) SIZE_MIB=$2; shift 2 ;;
    -t|--runtime) RUNTIME=$2; shift 2 ;;
    -o|--output) RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "bench_rados: $*" >&2; exit 1; }
log() { echo "bench_rados: $*" >&2; }

BACKY=$(readlink -f "$BACKY") || die "backy binary not found"
[[ -x $BACKY ]] || die "backy binary not executable: $BACKY"
if [[ -n $COMPARE ]]; then
  COMPARE=$(readlink -f "$COMPARE") || die "compare binary not found"
fi
for t in nbdcopy fio taskset jq ceph rados bc; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done

WORK=$(mktemp -d "$WORK_PARENT/bench-rados.XXXXXX")
CL=$WORK/cluster
IMG=$WORK/img
SOCK=$WORK/nbd.sock
PID=""
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  "$HERE/../ceph/cluster.sh" stop "$CL" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "starting a cluster in $CL"
eval "$(BACKY_CEPH_MEMSTORE_BYTES=$((8 * 1024 * 1024 * 1024)) \
  "$HERE/../ceph/cluster.sh" start "$CL")"
export CEPH_CONF
ceph osd pool create backy 8 >/dev/null 2>&1
POOL=backy

osd_ops() {  # the OSD's count of client ops so far
  local asok
  asok=$(ls "$CL"/run/osd.0.*.asok | head -1)
  ceph --admin-daemon "$asok" perf dump | jq '.osd.op'
}
chunk_objects() {  # PREFIX: chunk objects of one repository
  rados -p "$POOL" ls | grep -c "^$1chunk/" || true
}
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | awk '{printf "%.2f", $1}'; }
ratio() { echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}'; }

log "writing a $SIZE_MIB MiB segments image"
/usr/bin/python3 "$HERE/gen_image.py" segments "$IMG" "$SIZE_MIB" bench-rados >&2

DIR_REPO=$WORK/repo
RADOS_REPO=rados:$POOL/vm
declare -A R  # R[repo,metric]
KINDS=(dir rados)
repo_of() { [[ $1 == dir ]] && echo "$DIR_REPO" || echo "$RADOS_REPO"; }

timed_backup() {  # KIND METRIC
  local repo ops0 ops1 t0 t1 c0 c1
  repo=$(repo_of "$1")
  c0=$(chunk_objects vm/)
  ops0=$(osd_ops)
  t0=$(now)
  "$BACKY" -b "$repo" backup daily >/dev/null
  t1=$(now)
  ops1=$(osd_ops)
  c1=$(chunk_objects vm/)
  R[$1,$2]=$(secs "$t0" "$t1")
  if [[ $1 == rados ]]; then
    R[$1,$2_ops]=$((ops1 - ops0))
    R[$1,$2_chunks]=$((c1 - c0))
  fi
}

for k in "${KINDS[@]}"; do
  "$BACKY" -b "$(repo_of "$k")" init file "$IMG" >/dev/null
done
for k in "${KINDS[@]}"; do
  log "full backup, $k"
  timed_backup "$k" full
done
/usr/bin/python3 "$HERE/gen_image.py" mutate "$IMG" 10 bench-rados-2 >&2
for k in "${KINDS[@]}"; do
  log "incremental backup, $k"
  timed_backup "$k" incr
done
for k in "${KINDS[@]}"; do
  log "restore, $k"
  rm -f "$WORK/restored"
  t0=$(now)
  "$BACKY" -b "$(repo_of "$k")" restore -r last "$WORK/restored"
  t1=$(now)
  R[$k,restore]=$(secs "$t0" "$t1")
  cmp -s "$WORK/restored" "$IMG" || die "restore from $k differs from the image"
done
rm -f "$WORK/restored"

# ---- NBD --------------------------------------------------------------------
URI="nbd+unix:///last?socket=$SOCK"
SIZE=$(stat -c %s "$IMG")
start_server() {  # BINARY REPO
  rm -f "$SOCK"
  taskset -c 0 "$1" -b "$2" nbd-server --socket "$SOCK" 2>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 100); do [[ -S $SOCK ]] && return; sleep 0.1; done
  die "server did not start: $(cat "$WORK/server.log")"
}
stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
fio_json() {  # QD
  taskset -c 1 fio --name=rr --ioengine=nbd --uri="$URI" --rw=randread \
    --bs=4k --iodepth="$1" --runtime="$RUNTIME" --time_based --invalidate=0 \
    --size="$SIZE" --output-format=json 2>/dev/null | sed -n "/^{/,\$p"
}
nbd_runs() {  # LABEL BINARY REPO
  local label=$1 j ops0 ops1 t0 t1
  start_server "$2" "$3"
  for qd in 1 32; do
    ops0=$(osd_ops)
    j=$(fio_json "$qd")
    ops1=$(osd_ops)
    R[$label,rand$qd]=$(jq '.jobs[0].read.iops | floor' <<<"$j")
    R[$label,rand${qd}_ops]=$(ratio "$((ops1 - ops0))" \
      "$(jq '.jobs[0].read.total_ios' <<<"$j")")
  done
  t0=$(now)
  taskset -c 1 nbdcopy "$URI" null:
  t1=$(now)
  R[$label,seq]=$(echo "$SIZE / 1048576 / ($t1 - $t0)" | bc -l | awk '{printf "%d", $1}')
  stop_server
}
NBD_LABELS=(dir rados)
log "NBD reads, dir"
nbd_runs dir "$BACKY" "$DIR_REPO"
log "NBD reads, rados"
nbd_runs rados "$BACKY" "$RADOS_REPO"
if [[ -n $COMPARE ]]; then
  log "NBD reads, rados, $COMPARE"
  nbd_runs compare "$COMPARE" "$RADOS_REPO"
  NBD_LABELS+=(compare)
fi

# ---- copy -------------------------------------------------------------------
STORED_MIB=$(du -sm "$DIR_REPO" | cut -f1)
log "copy dir -> rados"
t0=$(now)
"$BACKY" -b "$DIR_REPO" copy --to "rados:$POOL/copy" >/dev/null
t1=$(now)
COPY_TO=$(secs "$t0" "$t1")
log "copy rados -> dir"
t0=$(now)
"$BACKY" -b "$RADOS_REPO" copy --to "$WORK/copy" >/dev/null
t1=$(now)
COPY_FROM=$(secs "$t0" "$t1")

# ---- report -----------------------------------------------------------------
table() {
  local d r
  echo "| | directory | RADOS | RADOS / directory |"
  echo "|---|---:|---:|---:|"
  for m in full incr restore; do
    case $m in
      full) label="backup, full (s)" ;;
      incr) label="backup, incremental after 10 % changed (s)" ;;
      restore) label="restore to a file (s)" ;;
    esac
    echo "| $label | ${R[dir,$m]} | ${R[rados,$m]} | $(ratio "${R[rados,$m]}" "${R[dir,$m]}") |"
  done
  for m in rand1 rand32 seq; do
    case $m in
      rand1) label="NBD 4 KiB random reads QD1 (IOPS)" ;;
      rand32) label="NBD 4 KiB random reads QD32 (IOPS)" ;;
      seq) label="NBD sequential, nbdcopy (MiB/s)" ;;
    esac
    d=${R[dir,$m]} r=${R[rados,$m]}
    echo "| $label | $d | $r | $(ratio "$r" "$d") |"
  done
  if [[ -n $COMPARE ]]; then
    echo
    echo "RADOS NBD reads with \`$COMPARE\`: QD1 ${R[compare,rand1]} IOPS," \
      "QD32 ${R[compare,rand32]} IOPS, nbdcopy ${R[compare,seq]} MiB/s;" \
      "OSD ops per read QD1 ${R[compare,rand1_ops]}, QD32 ${R[compare,rand32_ops]}."
  fi
  echo
  echo "| Per operation (RADOS) | OSD ops |"
  echo "|---|---:|"
  echo "| full backup: ${R[rados,full_chunks]} chunk objects written, ops per chunk | $(ratio "${R[rados,full_ops]}" "${R[rados,full_chunks]}") |"
  echo "| incremental backup: ${R[rados,incr_chunks]} new chunk objects, ops per new chunk | $(ratio "${R[rados,incr_ops]}" "${R[rados,incr_chunks]}") |"
  echo "| NBD 4 KiB read, QD1 | ${R[rados,rand1_ops]} |"
  echo "| NBD 4 KiB read, QD32 | ${R[rados,rand32_ops]} |"
  echo
  echo "\`backy copy\` of both revisions ($STORED_MIB MiB stored in the directory):" \
    "dir -> RADOS $COPY_TO s ($(ratio "$STORED_MIB" "$COPY_TO") MiB/s)," \
    "RADOS -> dir $COPY_FROM s ($(ratio "$STORED_MIB" "$COPY_FROM") MiB/s)."
}
TABLE=$(table)
echo "$TABLE"
{
  echo "# RADOS repository vs directory repository (issue 15)"
  echo
  echo "$(date -u +%F), $(nproc) CPUs, $(uname -r), $(ceph --version | cut -d' ' -f1-3);"
  echo "one-node memstore cluster (tests/ceph/cluster.sh) on the same machine;"
  echo "image: gen_image.py segments, $SIZE_MIB MiB; fio ${RUNTIME} s per run;"
  echo "server on CPU 0, client on CPU 1. Command: \`$CMDLINE\`."
  echo
  echo "$TABLE"
} >"$RESULTS"
log "wrote $RESULTS"
