#!/usr/bin/env bash
# Benchmark of issue 14's "costs that grow with data, not virtual size": a
# sparse 8 TiB image holding 64 MiB of data against a 1 GiB image holding
# the same 64 MiB. Not a test: run it by hand.
#
#   tests/bench/bench_sparse.sh [-b BACKY] [--baseline BACKY] [-w WORKDIR]
#                               [-n RUNS] [-o RESULTS.md] [--keep]
#
# Data: 16 pieces of 4 MiB of random bytes, every ~512 GiB of the 8 TiB
# image (truncate -s 8T; needs a file system that allows 8 TiB sparse files,
# e.g. ext4 under /var/tmp), every 240 MiB of the 1 GiB one. For each image
# and each binary (BACKY, and --baseline if given, e.g. an older build),
# the median of RUNS wall times of:
#   backup      full backup into a fresh repository (first run only: 1 time)
#   incr        incremental backup after 1 MiB changed
#   file        restore to a new sparse file
#   stdout      restore - > /dev/null (every zero written, 16 MiB pieces)
#   nbdcopy     nbdcopy nbd+unix:///?socket=S null: from `backy nbd-server`
# and, for reference, nbdcopy from `qemu-nbd -r -t -e 16` on the raw image.
# Prints a Markdown table and appends it, with date, machine and command,
# to the results file. Benchmarks on shared VMs are noisy (±30 %).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
BASELINE=""
WORK_PARENT=/var/tmp
RUNS=3
KEEP=0
RESULTS="$HERE/RESULTS-sparse.md"
CMDLINE="$0 $*"

while [ $# -gt 0 ]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -n|--runs) RUNS=$2; shift 2 ;;
    -o|--output) RESULTS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
BACKY=$(readlink -f "$BACKY")
[ -z "$BASELINE" ] || BASELINE=$(readlink -f "$BASELINE")
for t in nbdcopy qemu-nbd /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done

W=$(mktemp -d "$WORK_PARENT/backy-bench-sparse.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$KEEP" = 1 ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

# seconds CMD...: wall time of CMD (its output discarded).
seconds() {
  /usr/bin/time -f %e -o "$W/time" "$@" >/dev/null 2>&1
  cat "$W/time"
}
# median CMD...: the median of $RUNS runs of `seconds CMD...`.
median() {
  local i
  for i in $(seq "$RUNS"); do seconds "$@"; done | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# serve SOCKET CMD...: starts a server (pid in $SERVER), waits for SOCKET.
serve() {
  local sock=$1; shift
  rm -f "$sock"
  "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  SERVER=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

echo "making the images in $W" >&2
truncate -s 8T "$W/8t.img"
truncate -s 1G "$W/1g.img"
for i in $(seq 0 15); do
  head -c 4M /dev/urandom > "$W/piece"
  dd if="$W/piece" of="$W/8t.img" bs=1M seek=$((i * 524287 + 13)) conv=notrunc status=none
  dd if="$W/piece" of="$W/1g.img" bs=1M seek=$((i * 60 + 3)) conv=notrunc status=none
done

declare -A R
run_one() {  # LABEL BINARY IMAGE
  local label=$1 b=$2 img=$W/$3.img repo=$W/repo-$1-$3
  "$b" -b "$repo" init file "$img" >/dev/null
  R[$label,$3,backup]=$(seconds "$b" -b "$repo" backup daily)
  head -c 1M /dev/urandom | dd of="$img" bs=1M seek=7 conv=notrunc status=none
  R[$label,$3,incr]=$(median "$b" -b "$repo" backup daily)
  R[$label,$3,file]=$(median sh -c "rm -f '$W/out'; '$b' -b '$repo' restore '$W/out'")
  rm -f "$W/out"
  R[$label,$3,stdout]=$(median sh -c "'$b' -b '$repo' restore - >/dev/null")
  serve "$W/s.sock" "$b" -b "$repo" nbd-server --socket "$W/s.sock"
  R[$label,$3,nbdcopy]=$(median nbdcopy "nbd+unix:///?socket=$W/s.sock" null:)
  stop
}
labels=(backy)
run_one backy "$BACKY" 8t
run_one backy "$BACKY" 1g
if [ -n "$BASELINE" ]; then
  labels+=(baseline)
  run_one baseline "$BASELINE" 8t
  run_one baseline "$BASELINE" 1g
fi
for img in 8t 1g; do
  serve "$W/q.sock" qemu-nbd -r -t -e 16 -f raw -k "$W/q.sock" "$W/$img.img"
  R[qemu,$img,nbdcopy]=$(median nbdcopy "nbd+unix:///?socket=$W/q.sock" null:)
  stop
done

{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "\`$CMDLINE\` (median of $RUNS runs, seconds; backup: 1 run)"
  echo
  echo "| step | $(for l in "${labels[@]}"; do printf '%s 8 TiB | %s 1 GiB | ' "$l" "$l"; done)8 TiB / 1 GiB |"
  echo "|---|$(for l in "${labels[@]}"; do printf -- '---:|---:|'; done)---:|"
  for step in backup incr file stdout nbdcopy; do
    row="| $step |"
    for l in "${labels[@]}"; do row+=" ${R[$l,8t,$step]} | ${R[$l,1g,$step]} |"; done
    ratio=$(awk -v a="${R[backy,8t,$step]}" -v b="${R[backy,1g,$step]}" \
      'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
    echo "$row $ratio |"
  done
  echo "| nbdcopy from qemu-nbd | ${R[qemu,8t,nbdcopy]} | ${R[qemu,1g,nbdcopy]} |$(
    for l in "${labels[@]:1}"; do printf ' | |'; done) |"
} | tee -a "$RESULTS"
