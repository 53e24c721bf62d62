#!/usr/bin/env bash
# Benchmark of issue 3: `backy nbd-server` serving a revision vs qemu-nbd and
# nbdkit serving the same image as a raw file. Not a test: run it by hand.
#
#   tests/bench/bench_nbd.sh [-b BACKY] [-w WORKDIR] [-s SIZE_MIB] [-t SECS]
#                            [--cache-size SIZE] [--rss-sizes "64M 1G"]
#                            [--servers "backy qemu-nbd nbdkit"] [--keep]
#                            [--reuse DIR] [-o RESULTS.md]
#
# Every server is pinned to CPU 0 (`taskset -c 0`), every client to CPU 1.
# Per server, each measurement starts from a fresh server process and a
# dropped page cache ("cold", `echo 3 > /proc/sys/vm/drop_caches`), then is
# repeated against the same process ("warm"):
#   seq      nbdcopy URI null:                          (MiB/s)
#   rand qd1 fio --ioengine=nbd --rw=randread --bs=4k --iodepth=1   (IOPS)
#   rand qd32                                 ... --iodepth=32      (IOPS)
# plus backy's peak RSS (VmHWM) for each --cache-size, measured on a second,
# compressible revision (base64 text, 1/2 the size): only compressed blocks
# are cached (raw ones are read from the page cache), so only such a
# revision fills the cache. Prints a Markdown table and writes it, with
# date, machine and command, to the results file.
# Benchmarks on shared VMs are noisy (±30 %): compare ratios within one run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
WORK_PARENT=/var/tmp
SIZE_MIB=4096
RUNTIME=15
CACHE_SIZE=256M
RSS_SIZES="64M 1G"
SERVERS="backy qemu-nbd nbdkit"
IMAGE_KIND=random
KEEP=0
REUSE=""
RESULTS="$HERE/RESULTS-nbd.md"
CMDLINE="$0 $*"

usage() {
  cat <<EOF
usage: $0 [options]
  -b, --backy PATH     backy binary (default: $BACKY)
  -w, --workdir DIR    parent of the scratch directory (default: $WORK_PARENT);
                       needs about 3x the image size free
  -s, --size-mib N     image size in MiB (default: $SIZE_MIB)
  -t, --runtime SECS   seconds per fio run (default: $RUNTIME)
      --cache-size S   backy --cache-size for the main runs (default: $CACHE_SIZE)
      --rss-sizes L    further --cache-size values to measure peak RSS at
                       (default: "$RSS_SIZES"; "" to skip)
      --servers L      subset of "backy qemu-nbd nbdkit"
      --image KIND     random (default), segments (issue 14: 32 MiB segments
                       of random, random, written zeros, English text) or
                       text (all English text); qemu-nbd and nbdkit serve the
                       revision restored to a sparse raw file
      --keep           keep the scratch directory (image + repository)
      --reuse DIR      reuse a scratch directory kept by --keep
  -o, --output FILE    results file (default: $RESULTS)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -s|--size-mib) SIZE_MIB=$2; shift 2 ;;
    -t|--runtime) RUNTIME=$2; shift 2 ;;
    --cache-size) CACHE_SIZE=$2; shift 2 ;;
    --rss-sizes) RSS_SIZES=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --image) IMAGE_KIND=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --reuse) REUSE=$2; KEEP=1; shift 2 ;;
    -o|--output) RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "bench_nbd: $*" >&2; exit 1; }

BACKY=$(readlink -f "$BACKY") || die "backy binary not found"
[[ -x $BACKY ]] || die "backy binary not found or not executable: $BACKY"
for t in nbdcopy nbdinfo fio qemu-nbd nbdkit taskset jq sha256sum; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ -w /proc/sys/vm/drop_caches ]] || die "need root to drop the page cache"

if [[ -n $REUSE ]]; then
  WORK=$REUSE
else
  WORK=$(mktemp -d "$WORK_PARENT/bench-nbd.XXXXXX")
fi
IMG=$WORK/img
REPO=$WORK/repo
TEXT_IMG=$WORK/img-text
TEXT_REPO=$WORK/repo-text
SOCK=$WORK/nbd.sock
PID=""
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -f "$SOCK"
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

log() { echo "bench_nbd: $*" >&2; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# ---- the image and its revision ---------------------------------------------
if [[ ! -f $IMG || ! -d $REPO ]]; then
  if [[ $IMAGE_KIND == random ]]; then
    log "writing $SIZE_MIB MiB of random data to $IMG"
    # AES-CTR keystream: random, and much faster than /dev/urandom.
    # (openssl dies of SIGPIPE when head has enough.)
    { openssl enc -aes-128-ctr -nosalt -pass pass:bench-nbd </dev/zero 2>/dev/null || true; } |
      head -c "$((SIZE_MIB * 1024 * 1024))" > "$IMG"
  else
    log "writing a $SIZE_MIB MiB $IMAGE_KIND image to $IMG"
    /usr/bin/python3 "$HERE/gen_image.py" "$IMAGE_KIND" "$IMG" "$SIZE_MIB" bench-nbd >&2
  fi
  rm -rf "$REPO"
  "$BACKY" -b "$REPO" init file "$IMG" >/dev/null
  log "backing it up"
  t0=$(date +%s.%N)
  "$BACKY" -b "$REPO" backup daily >/dev/null
  t1=$(date +%s.%N)
  log "backup took $(echo "$t1 - $t0" | bc -l | cut -c1-6) s"
  if [[ $IMAGE_KIND != random ]]; then
    # What the other servers serve: the revision as a sparse raw file.
    rm -f "$IMG"
    "$BACKY" -b "$REPO" restore -r last "$IMG"
  fi
fi
if [[ -n $RSS_SIZES && ( ! -f $TEXT_IMG || ! -d $TEXT_REPO ) ]]; then
  log "writing $((SIZE_MIB / 2)) MiB of compressible data to $TEXT_IMG"
  # (base64 too dies of SIGPIPE when head has enough.)
  { { openssl enc -aes-128-ctr -nosalt -pass pass:bench-nbd-text </dev/zero 2>/dev/null || true; } |
    base64 -w 76 || true; } | head -c "$((SIZE_MIB / 2 * 1024 * 1024))" > "$TEXT_IMG"
  rm -rf "$TEXT_REPO"
  "$BACKY" -b "$TEXT_REPO" init file "$TEXT_IMG" >/dev/null
  "$BACKY" -b "$TEXT_REPO" backup daily >/dev/null
fi
SIZE=$(stat -c %s "$IMG")
SIZE_MIB=$((SIZE / 1024 / 1024))

URI="nbd+unix:///last?socket=$SOCK"

# ---- servers ----------------------------------------------------------------
start_server() {  # NAME [CACHE_SIZE [REPO]]
  rm -f "$SOCK"
  case $1 in
    backy)
      taskset -c 0 "$BACKY" -b "${3:-$REPO}" nbd-server --socket "$SOCK" \
        --cache-size "${2:-$CACHE_SIZE}" 2>"$WORK/backy.log" &
      ;;
    qemu-nbd)
      # -e 16: allow nbdcopy's parallel connections (qemu-nbd defaults to 1).
      taskset -c 0 qemu-nbd -r -t -e 16 -f raw -x last -k "$SOCK" "$IMG" &
      ;;
    nbdkit)
      taskset -c 0 nbdkit -f -r -U "$SOCK" file "$IMG" &
      ;;
  esac
  PID=$!
  for _ in $(seq 1 400); do
    if [[ -S $SOCK ]] && nbdinfo --size "$URI" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  die "$1 did not start"
}

stop_server() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
  rm -f "$SOCK"
}

hwm_mib() {  # peak RSS of the running server, MiB
  awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$PID/status"
}

seq_mibs() {  # [NBDCOPY_OPTION]
  local t0 t1
  t0=$(date +%s.%N)
  taskset -c 1 nbdcopy ${1:+"$1"} "$URI" null:
  t1=$(date +%s.%N)
  echo "$SIZE_MIB / ($t1 - $t0)" | bc -l | awk '{printf "%d", $1}'
}

rand_iops() {  # QD [SIZE]
  taskset -c 1 fio --name=rr --ioengine=nbd --uri="$URI" --rw=randread \
    --bs=4k --iodepth="$1" --runtime="$RUNTIME" --time_based --invalidate=0 \
    --size="${2:-$SIZE}" --output-format=json 2>/dev/null | sed -n "/^{/,\$p" |
    jq '.jobs[0].read.iops | floor'
}

declare -A R  # R[server,metric] = value
ORDER=(seq seqnx rand1 rand32)

measure() {  # SERVER METRIC: fresh server + cold caches, then warm
  local srv=$1 m=$2 cold warm
  drop_caches
  start_server "$srv"
  case $m in
    seq) cold=$(seq_mibs); warm=$(seq_mibs) ;;
    seqnx) cold=$(seq_mibs --no-extents); warm=$(seq_mibs --no-extents) ;;
    rand1) cold=$(rand_iops 1); warm=$(rand_iops 1) ;;
    rand32) cold=$(rand_iops 32); warm=$(rand_iops 32) ;;
  esac
  R[$srv,$m,cold]=$cold
  R[$srv,$m,warm]=$warm
  R[$srv,$m,rss]=$(hwm_mib)
  stop_server
  log "$srv $m: cold $cold, warm $warm, peak RSS ${R[$srv,$m,rss]} MiB"
}

# ---- correctness first: the export must be the image -------------------------
if [[ " $SERVERS " == *" backy "* ]]; then
  start_server backy
  want=$(sha256sum < "$IMG" | cut -d' ' -f1)
  got=$(taskset -c 1 nbdcopy "$URI" - | sha256sum | cut -d' ' -f1)
  stop_server
  [[ $want == "$got" ]] || die "backy serves different data ($got != $want)"
  log "backy export equals the image (sha256 $want)"
fi

for srv in $SERVERS; do
  for m in "${ORDER[@]}"; do measure "$srv" "$m"; done
done

# Peak RSS per --cache-size on the compressible revision: a sequential read
# and a random qd32 run (random reads of compressed data fill the cache).
declare -A RSS TEXT_IOPS
if [[ " $SERVERS " == *" backy "* && -n $RSS_SIZES ]]; then
  TEXT_SIZE=$(stat -c %s "$TEXT_IMG")
  for cs in "$CACHE_SIZE" $RSS_SIZES; do
    drop_caches
    start_server backy "$cs" "$TEXT_REPO"
    seq_mibs >/dev/null
    TEXT_IOPS[$cs]=$(rand_iops 32 "$TEXT_SIZE")
    RSS[$cs]=$(hwm_mib)
    stop_server
    log "backy --cache-size $cs (compressible revision): random qd32 ${TEXT_IOPS[$cs]} IOPS, peak RSS ${RSS[$cs]} MiB"
  done
fi

# ---- report -----------------------------------------------------------------
ratio() {  # A B -> A/B with two decimals, or "-"
  if [[ -z ${1:-} || -z ${2:-} || $2 == 0 ]]; then echo "-"; return; fi
  echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}'
}
table() {
  local label unit
  echo "| measurement | $(echo "$SERVERS" | sed 's/ / | /g') | backy / qemu-nbd |"
  echo "|---|$(for _ in $SERVERS; do printf -- '---:|'; done)---:|"
  for m in "${ORDER[@]}"; do
    for c in cold warm; do
      case $m in
        seq) label="sequential nbdcopy, $c"; unit="MiB/s" ;;
        seqnx) label="sequential nbdcopy --no-extents, $c"; unit="MiB/s" ;;
        rand1) label="random 4 KiB qd1, $c"; unit="IOPS" ;;
        rand32) label="random 4 KiB qd32, $c"; unit="IOPS" ;;
      esac
      printf '| %s (%s) |' "$label" "$unit"
      for srv in $SERVERS; do printf ' %s |' "${R[$srv,$m,$c]:--}"; done
      printf ' %s |\n' "$(ratio "${R[backy,$m,$c]:-}" "${R[qemu-nbd,$m,$c]:-}")"
    done
  done
  printf '| server peak RSS, MiB (max over the runs above) |'
  for srv in $SERVERS; do
    local mx=0
    for m in "${ORDER[@]}"; do (( R[$srv,$m,rss] > mx )) && mx=${R[$srv,$m,rss]}; done
    printf ' %s |' "$mx"
  done
  printf ' |\n'
  if [[ " $SERVERS " == *" backy "* && -n $RSS_SIZES ]]; then
    echo
    echo "Compressible revision ($(( $(stat -c %s "$TEXT_IMG") / 1048576 )) MiB of base64 text, 512 KiB zstd blocks):"
    echo
    echo "| backy --cache-size | random 4 KiB qd32, from cold (IOPS) | peak RSS (VmHWM) | limit (cache + 64 MiB) |"
    echo "|---|---:|---:|---:|"
    for cs in "$CACHE_SIZE" $RSS_SIZES; do
      local n=${cs%[MmGg]} mib
      case $cs in *[Gg]) mib=$((n * 1024)) ;; *) mib=$n ;; esac
      echo "| $cs | ${TEXT_IOPS[$cs]} | ${RSS[$cs]} MiB | $((mib + 64)) MiB |"
    done
  fi
}

OUT=$(table)
echo "$OUT"
{
  echo "# NBD server benchmark (issue 3)"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n):" \
    "$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), " \
    "$(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
  echo "Tools: $(qemu-nbd --version | head -1), $(nbdkit --version), $(fio --version), $(nbdcopy --version | head -1)."
  echo
  echo "Command: \`$CMDLINE\` (image: ${SIZE_MIB} MiB, kind $IMAGE_KIND, one revision;"
  echo "backy \`--cache-size $CACHE_SIZE\`; fio runs ${RUNTIME} s; servers on CPU 0, clients on CPU 1;"
  echo "cold = fresh server process and dropped page cache, warm = the same run again)."
  echo
  echo "$OUT"
} > "$RESULTS"
log "results written to $RESULTS"
