#!/usr/bin/env bash
# Benchmark of issue 12: sequential `nbdcopy URI null:` over TLS from
# `backy nbd-server` (a revision) vs qemu-nbd and nbdkit (the same revision
# restored to a raw file), with the same certificates and PSK key, plus
# plaintext for reference. Not a test: run it by hand.
#
#   tests/bench/bench_nbd_tls.sh [-b BACKY] [-w WORKDIR] [-s SIZE_MIB]
#                                [-r ROUNDS] [--servers "backy qemu-nbd nbdkit"]
#                                [--modes "x509 psk plain"] [--keep]
#                                [--reuse DIR] [-o RESULTS.md]
#
# Data: tests/bench/gen_image.py's mixed image (1/2 random, 1/4 text, 1/8
# written zeros, 1/8 holes), backed up once. All servers listen on
# 127.0.0.1 (TCP) pinned to CPU 0 (`taskset -c 0`); nbdcopy (its default
# connections; all three servers advertise multi-conn) is pinned to CPU 1.
# Each round starts every server afresh, copies once to warm it (page cache
# and backy's block cache), then times one copy; ROUNDS rounds (default 3)
# interleave the servers so that noise hits all alike. Reported: the median
# MiB/s and the ratio to qemu-nbd in the same mode. Shared VMs are noisy
# (±30 %): compare ratios within one run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
WORK_PARENT=/var/tmp
SIZE_MIB=1024
ROUNDS=3
SERVERS="backy qemu-nbd nbdkit"
MODES="x509 psk plain"
KEEP=0
REUSE=""
RESULTS="$HERE/RESULTS-tls.md"
CMDLINE="$0 $*"

usage() {
  cat <<EOF
usage: $0 [options]
  -b, --backy PATH     backy binary (default: $BACKY)
  -w, --workdir DIR    parent of the scratch directory (default: $WORK_PARENT);
                       needs about 2x the image size free
  -s, --size-mib N     image size in MiB (default: $SIZE_MIB)
  -r, --rounds N       timed copies per server and mode (default: $ROUNDS)
      --servers L      subset of "backy qemu-nbd nbdkit"
      --modes L        subset of "x509 psk plain"
      --keep           keep the scratch directory
      --reuse DIR      reuse a scratch directory kept by --keep
  -o, --output FILE    results file (default: $RESULTS)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -s|--size-mib) SIZE_MIB=$2; shift 2 ;;
    -r|--rounds) ROUNDS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --reuse) REUSE=$2; KEEP=1; shift 2 ;;
    -o|--output) RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "bench_nbd_tls: $*" >&2; exit 1; }
log() { echo "bench_nbd_tls: $*" >&2; }

BACKY=$(readlink -f "$BACKY") || die "backy binary not found"
[[ -x $BACKY ]] || die "backy binary not found or not executable: $BACKY"
for t in nbdcopy nbdinfo qemu-nbd nbdkit taskset certtool psktool sha256sum bc; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
export PATH="/usr/bin:$PATH"  # Debian's python3 for gen_image.py

if [[ -n $REUSE ]]; then
  WORK=$REUSE
else
  WORK=$(mktemp -d "$WORK_PARENT/bench-tls.XXXXXX")
fi
IMG=$WORK/img
REPO=$WORK/repo
RAW=$WORK/restored.raw
PID=""
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- data and credentials ---------------------------------------------------
if [[ ! -d $REPO || ! -f $RAW ]]; then
  log "writing a $SIZE_MIB MiB mixed image"
  python3 "$HERE/gen_image.py" create "$IMG" "$SIZE_MIB" 12 >/dev/null
  rm -rf "$REPO"
  "$BACKY" -b "$REPO" init file "$IMG" >/dev/null
  "$BACKY" -b "$REPO" backup daily >/dev/null 2>&1
  # qemu-nbd and nbdkit serve the revision as restored (sparse) raw file.
  "$BACKY" -b "$REPO" restore -r last "$RAW" >/dev/null 2>&1
  rm -f "$IMG"
fi
SIZE=$(stat -c %s "$RAW")
SIZE_MIB=$((SIZE / 1024 / 1024))
WANT=$(sha256sum < "$RAW" | cut -d' ' -f1)

# The certificates and key the e2e tests make (tests/e2e/tls_lib.sh):
# server/ (ca-cert.pem, server-cert.pem, server-key.pem, ECDSA P-256),
# anon/ (the CA only, for clients); one PSK user.
if [[ ! -f $WORK/pki/server/server-cert.pem ]]; then
  (
    T=$WORK
    fail() { die "$*"; }
    requires() { :; }
    rand_bytes() { :; }
    . "$HERE/../e2e/tls_lib.sh"
    make_pki "$WORK/pki"
    mkdir -p -m 0700 "$WORK/psk"
    make_psk "$WORK/psk/keys.psk" bench
  )
fi
PKI=$WORK/pki/server
CA=$WORK/pki/anon
PSK=$WORK/psk/keys.psk

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- servers ----------------------------------------------------------------
# cmd_SERVER MODE PORT: the server command line (printed in the results).
cmd_backy() {
  local tls=()
  case $1 in
    x509) tls=(--tls-certificates "$PKI") ;;
    psk) tls=(--tls-psk "$PSK") ;;
  esac
  echo "$BACKY" -b "$REPO" nbd-server -H 127.0.0.1 -p "$2" "${tls[@]}"
}
cmd_qemu-nbd() {
  local tls=()
  case $1 in
    x509) tls=(--object "tls-creds-x509,id=tls0,dir=$PKI,endpoint=server,verify-peer=off" --tls-creds tls0) ;;
    psk) tls=(--object "tls-creds-psk,id=tls0,dir=$(dirname "$PSK"),endpoint=server" --tls-creds tls0) ;;
  esac
  # -e 8: allow nbdcopy's parallel connections (qemu-nbd defaults to 1).
  echo qemu-nbd -r -t -e 8 -f raw -x last -b 127.0.0.1 -p "$2" "${tls[@]}" "$RAW"
}
cmd_nbdkit() {
  local tls=()
  case $1 in
    x509) tls=(--tls=require "--tls-certificates=$PKI") ;;
    psk) tls=(--tls=require "--tls-psk=$PSK") ;;
  esac
  echo nbdkit -f -r -i 127.0.0.1 -p "$2" "${tls[@]}" file "$RAW"
}

# uri MODE PORT
uri() {
  case $1 in
    x509) echo "nbds://localhost:$2/last?tls-certificates=$CA" ;;
    psk) echo "nbds://bench@localhost:$2/last?tls-psk-file=$PSK" ;;
    plain) echo "nbd://127.0.0.1:$2/last" ;;
  esac
}

PORT=""
start_server() {  # SERVER MODE
  local attempt i
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    # shellcheck disable=SC2046  # the command line is plain words
    taskset -c 0 $("cmd_$1" "$2" "$PORT") 2>"$WORK/$1.log" &
    PID=$!
    for i in $(seq 1 400); do
      kill -0 "$PID" 2>/dev/null || break
      if nbdinfo --size "$(uri "$2" "$PORT")" >/dev/null 2>&1; then return 0; fi
      sleep 0.05
    done
    wait "$PID" 2>/dev/null || true
    PID=""
  done
  die "$1 ($2) did not start: $(cat "$WORK/$1.log")"
}

stop_server() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}

copy_mibs() {  # URI: one nbdcopy to null:, MiB/s
  local t0 t1
  t0=$(date +%s.%N)
  taskset -c 1 nbdcopy "$1" null:
  t1=$(date +%s.%N)
  echo "$SIZE_MIB / ($t1 - $t0)" | bc -l | awk '{printf "%d", $1}'
}

# ---- correctness first: every server serves the revision --------------------
for srv in $SERVERS; do
  for m in $MODES; do
    start_server "$srv" "$m"
    got=$(taskset -c 1 nbdcopy "$(uri "$m" "$PORT")" - | sha256sum | cut -d' ' -f1)
    stop_server
    [[ $got == "$WANT" ]] || die "$srv ($m) serves different data ($got != $WANT)"
  done
done
log "every server and mode serves the revision (sha256 $WANT)"

declare -A R  # R[server,mode] = "v1 v2 v3"
for round in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do
    for srv in $SERVERS; do
      start_server "$srv" "$m"
      copy_mibs "$(uri "$m" "$PORT")" >/dev/null  # warm
      v=$(copy_mibs "$(uri "$m" "$PORT")")
      stop_server
      R[$srv,$m]="${R[$srv,$m]:-} $v"
      log "round $round: $srv $m: $v MiB/s"
    done
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() {
  if [[ -z ${1:-} || -z ${2:-} || $2 == 0 ]]; then echo "-"; return; fi
  echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}'
}

table() {
  echo "| mode | $(echo "$SERVERS" | sed 's/ / | /g') | backy / qemu-nbd |"
  echo "|---|$(for _ in $SERVERS; do printf -- '---:|'; done)---:|"
  for m in $MODES; do
    printf '| %s |' "$m"
    declare -A med=()
    for srv in $SERVERS; do
      med[$srv]=$(echo "${R[$srv,$m]}" | median)
      printf ' %s (%s) |' "${med[$srv]}" "$(echo "${R[$srv,$m]}" | sed 's/^ //; s/ /, /g')"
    done
    printf ' %s |\n' "$(ratio "${med[backy]:-}" "${med[qemu-nbd]:-}")"
  done
}

OUT=$(table)
echo "$OUT"
{
  echo "# NBD over TLS benchmark (issue 12)"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n):" \
    "$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), " \
    "$(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
  echo "Tools: $(qemu-nbd --version | head -1), $(nbdkit --version), $(nbdcopy --version | head -1)," \
    "GnuTLS $(certtool --version | sed -n 's/^certtool \([^ ]*\).*/\1/p' | head -1)."
  echo
  echo "Command: \`$CMDLINE\`. Data: one revision of ${SIZE_MIB} MiB of tests/bench/gen_image.py's"
  echo "mixed image (seed 12); qemu-nbd and nbdkit serve it restored to a sparse raw file."
  echo "Servers on CPU 0, \`nbdcopy URI null:\` (default connections, multi-conn) on CPU 1, all over"
  echo "TCP on 127.0.0.1. Each round starts every server afresh, copies once to warm it, then times one"
  echo "copy; $ROUNDS rounds. Cells: median MiB/s (the $ROUNDS values)."
  echo
  echo "$OUT"
  echo
  echo "Server command lines (PORT and the scratch directory vary):"
  echo
  echo '```'
  for m in $MODES; do
    for srv in $SERVERS; do
      echo "taskset -c 0 $("cmd_$srv" "$m" PORT)"
    done
  done
  echo
  for m in $MODES; do echo "taskset -c 1 nbdcopy '$(uri "$m" PORT)' null:"; done
  echo '```'
  echo
  echo "Certificates: ECDSA P-256 keys made with certtool (tests/e2e/tls_lib.sh make_pki); PSK: psktool."
} > "$RESULTS"
log "results written to $RESULTS"
