#!/usr/bin/env bash
# Benchmark of issue 11: a backy 2.x repository served in place and
# upgraded. Not a test: run it by hand (as root: it drops the page cache).
#
#   tests/bench/bench_legacy.sh [-b BACKY] [-w WORKDIR] [-s SIZE_MIB] [-t SECS]
#                               [--writer PATH] [--cache-size SIZE] [--keep]
#                               [-o RESULTS.md]
#
# Makes a mixed-content image (gen_image.py: 1/2 random, 1/4 text, 1/8
# written zeros, 1/8 holes) and a 2.x repository of two revisions of it
# (backy-test-legacy-writer, as backy 2.5.3 wrote them; 1 % of the image
# changed between them). Then, on the newest revision:
#   1. `backy nbd-server` serving the 2.x revision in place;
#   2. `backy upgrade` (from a dropped page cache): wall time, MiB of image
#      per second (both revisions' image sizes, as its summary counts) and
#      of 2.x chunks decoded, peak RSS, repository size before, at peak
#      (`du` every 0.5 s) and after, and what it and --dry-run print;
#   3. the same server on the same revision after the upgrade.
# For 1 and 3, each measurement starts a fresh server (pinned to CPU 0,
# `taskset -c 0`; clients on CPU 1) after dropping the page cache ("cold"),
# then repeats against the same process ("warm"):
#   seq      fio --ioengine=nbd --rw=read --bs=256k --iodepth=8      (MiB/s)
#   rand1    fio --ioengine=nbd --rw=randread --bs=4k --iodepth=1    (IOPS)
#   rand32   ... --iodepth=32                                        (IOPS)
#   hot32    ... --iodepth=32 within the first quarter of --cache-size
#            (a working set the block cache holds: 2.x chunks are whole
#            4 MiB LZO streams, decoded once, then served from the cache)
# Before each series the export's sha256 must be the image's. Prints a
# Markdown table and writes it, with date, machine and command, to the
# results file. Benchmarks on shared VMs are noisy (±30 %).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
WRITER=""
WORK_PARENT=/var/tmp
SIZE_MIB=2048
RUNTIME=10
CACHE_SIZE=256M
SEED=11
KEEP=0
RESULTS="$HERE/RESULTS-legacy.md"
CMDLINE="$0 $*"

usage() {
  cat <<EOF
usage: $0 [options]
  -b, --backy PATH     backy binary (default: $BACKY)
      --writer PATH    backy-test-legacy-writer (default: next to the
                       backy binary's build tree, build/tests/)
  -w, --workdir DIR    parent of the scratch directory (default: $WORK_PARENT);
                       needs about 3x the image size free
  -s, --size-mib N     image size in MiB (default: $SIZE_MIB)
  -t, --runtime SECS   seconds per fio run (default: $RUNTIME)
      --cache-size S   backy nbd-server --cache-size (default: $CACHE_SIZE)
      --seed S         seed of the image content (default: $SEED)
      --keep           keep the scratch directory
  -o, --output FILE    results file (default: $RESULTS)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    --writer) WRITER=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -s|--size-mib) SIZE_MIB=$2; shift 2 ;;
    -t|--runtime) RUNTIME=$2; shift 2 ;;
    --cache-size) CACHE_SIZE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -o|--output) RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "bench_legacy: $*" >&2; exit 1; }
log() { echo "bench_legacy: $*" >&2; }

BACKY=$(readlink -f "$BACKY") || die "backy binary not found"
[[ -x $BACKY ]] || die "backy binary not found or not executable: $BACKY"
: "${WRITER:=$(dirname "$BACKY")/../../tests/backy-test-legacy-writer}"
WRITER=$(readlink -f "$WRITER") || die "backy-test-legacy-writer not found"
[[ -x $WRITER ]] || die "backy-test-legacy-writer not built: $WRITER"
for t in nbdcopy nbdinfo fio taskset jq sha256sum timeout du; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ -x /usr/bin/time ]] || die "missing tool: /usr/bin/time (apt-get install time)"
[[ -x /usr/bin/python3 ]] || die "missing /usr/bin/python3"
[[ -w /proc/sys/vm/drop_caches ]] || die "need root to drop the page cache"
[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -ge 64 ]] || die "--size-mib must be at least 64"
case $CACHE_SIZE in
  *[Gg]) CACHE_MIB=$((${CACHE_SIZE%[Gg]} * 1024)) ;;
  *[Mm]) CACHE_MIB=${CACHE_SIZE%[Mm]} ;;
  *) die "--cache-size must be like 256M or 1G" ;;
esac
HOT_MIB=$((CACHE_MIB / 4))
((HOT_MIB >= 4)) || die "--cache-size too small"

mkdir -p "$WORK_PARENT"
need_kib=$((SIZE_MIB * 1024 * 3))
avail_kib=$(df -Pk "$WORK_PARENT" | awk 'NR==2 {print $4}')
((avail_kib >= need_kib)) || die "$WORK_PARENT has $((avail_kib / 1024)) MiB free, needs $((need_kib / 1024))"

WORK=$(mktemp -d "$WORK_PARENT/bench-legacy.XXXXXX")
IMG=$WORK/img
REPO=$WORK/repo
SOCK=$WORK/nbd.sock
PID=""
SAMPLER=""
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [[ -n $SAMPLER ]]; then kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; fi
  rm -f "$SOCK"
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'; }

# ---- the image and its 2.x repository ---------------------------------------
U1=7kHqT2wNcPz9XbLm4RvYsA   # 22 characters, as 2.x's shortuuid made them
U2=Fd3JxQ8pWn5KtZc6VhMb2E
log "writing a $SIZE_MIB MiB mixed image"
timeout 1800 /usr/bin/python3 "$HERE/gen_image.py" create "$IMG" "$SIZE_MIB" "$SEED" >"$WORK/gen.log"
t0=$(date +%s.%N)
timeout 1800 "$WRITER" --version 2.5 --dir "$REPO" --image "$IMG" --uuid "$U1" \
  --no-parent --tags daily --timestamp "$(date -u -d '-2 hours' '+%Y-%m-%d %H:%M:%S.%6N+00:00')"
log "2.x revision $U1 written in $(secs_since "$t0") s"
timeout 600 /usr/bin/python3 "$HERE/gen_image.py" mutate "$IMG" 1 "$SEED" >"$WORK/mutate.log"
t0=$(date +%s.%N)
timeout 1800 "$WRITER" --version 2.5 --dir "$REPO" --image "$IMG" --uuid "$U2" \
  --parent "$U1" --tags daily,weekly --timestamp "$(date -u -d '-1 hours' '+%Y-%m-%d %H:%M:%S.%6N+00:00')"
log "2.x revision $U2 written in $(secs_since "$t0") s"
rm -f "$IMG.undo"
SIZE=$(stat -c %s "$IMG")
WANT=$(sha256sum <"$IMG" | cut -d' ' -f1)
LEGACY_CHUNKS=$(find "$REPO/chunks" -name '*.chunk.lzo' | wc -l)
LEGACY_BYTES=$(du -sb "$REPO" | cut -f1)
log "2.x repository: $LEGACY_CHUNKS chunk files, $((LEGACY_BYTES / 1048576)) MiB"

URI="nbd+unix:///$U2?socket=$SOCK"

# ---- the NBD server ---------------------------------------------------------
start_server() {
  rm -f "$SOCK"
  taskset -c 0 "$BACKY" -b "$REPO" nbd-server --socket "$SOCK" \
    --cache-size "$CACHE_SIZE" 2>>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 1 400); do
    if [[ -S $SOCK ]] && nbdinfo --size "$URI" >/dev/null 2>&1; then return 0; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 20 "$WORK/server.log" >&2
  die "backy nbd-server did not start"
}

stop_server() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
  rm -f "$SOCK"
}

hwm_mib() { awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$PID/status"; }

seq_mibs() {  # time-bounded (a 2.x revision in place may be slow)
  timeout $((RUNTIME + 120)) taskset -c 1 fio --name=sr --ioengine=nbd --uri="$URI" \
    --rw=read --bs=256k --iodepth=8 --runtime="$RUNTIME" --time_based \
    --invalidate=0 --size="$SIZE" --output-format=json 2>/dev/null |
    sed -n '/^{/,$p' | jq '.jobs[0].read.bw / 1024 | floor'
}

rand_iops() {  # QD SIZE
  timeout $((RUNTIME + 120)) taskset -c 1 fio --name=rr --ioengine=nbd --uri="$URI" \
    --rw=randread --bs=4k --iodepth="$1" --runtime="$RUNTIME" --time_based \
    --invalidate=0 --size="$2" --output-format=json 2>/dev/null |
    sed -n '/^{/,$p' | jq '.jobs[0].read.iops | floor'
}

declare -A R  # R[form,metric,cold|warm|rss]
FORMS=(legacy upgraded)
ORDER=(seq rand1 rand32 hot32)

measure() {  # FORM METRIC: fresh server + cold caches, then warm
  local form=$1 m=$2 cold warm
  drop_caches
  start_server
  case $m in
    seq) cold=$(seq_mibs); warm=$(seq_mibs) ;;
    rand1) cold=$(rand_iops 1 "$SIZE"); warm=$(rand_iops 1 "$SIZE") ;;
    rand32) cold=$(rand_iops 32 "$SIZE"); warm=$(rand_iops 32 "$SIZE") ;;
    hot32) cold=$(rand_iops 32 "$((HOT_MIB))m"); warm=$(rand_iops 32 "$((HOT_MIB))m") ;;
  esac
  R[$form,$m,cold]=$cold
  R[$form,$m,warm]=$warm
  R[$form,$m,rss]=$(hwm_mib)
  stop_server
  log "$form $m: cold $cold, warm $warm, peak RSS ${R[$form,$m,rss]} MiB"
}

series() {  # FORM: correctness, then every measurement
  local form=$1 got
  start_server
  got=$(timeout 1800 taskset -c 1 nbdcopy "$URI" - | sha256sum | cut -d' ' -f1)
  stop_server
  [[ $got == "$WANT" ]] || die "$form: revision $U2 served as $got, the image is $WANT"
  log "$form: the export of $U2 equals the image (sha256 $WANT)"
  for m in "${ORDER[@]}"; do measure "$form" "$m"; done
}

series legacy

# ---- the upgrade ------------------------------------------------------------
timeout 600 "$BACKY" -b "$REPO" upgrade --dry-run >"$WORK/dry-run.out" 2>&1 ||
  { cat "$WORK/dry-run.out" >&2; die "upgrade --dry-run failed"; }
log "upgrade --dry-run says:"
sed 's/^/    /' "$WORK/dry-run.out" >&2
drop_caches
# Peak repository size: `du` every 0.5 s while the upgrade runs.
echo "$LEGACY_BYTES" >"$WORK/du.samples"
(while sleep 0.5; do du -sb "$REPO" 2>/dev/null | cut -f1 >>"$WORK/du.samples"; done) &
SAMPLER=$!
log "backy upgrade ..."
t0=$(date +%s.%N)
if ! /usr/bin/time -f '%M' -o "$WORK/upgrade.rss" timeout 3600 "$BACKY" -b "$REPO" upgrade \
  >"$WORK/upgrade.out" 2>&1; then
  tail -n 20 "$WORK/upgrade.out" >&2
  die "backy upgrade failed"
fi
sync
UP_SECS=$(secs_since "$t0")
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""
UP_RSS=$(awk 'END {printf "%.0f", $1 / 1024}' "$WORK/upgrade.rss")
UP_PEAK=$(sort -n "$WORK/du.samples" | tail -n 1)
UP_AFTER=$(du -sb "$REPO" | cut -f1)
log "upgrade took $UP_SECS s, peak RSS $UP_RSS MiB; it printed:"
sed 's/^/    /' "$WORK/upgrade.out" >&2
LEFT=$(find "$REPO" -name '*.chunk.lzo' | wc -l)
((LEFT == 0)) || log "WARNING: $LEFT legacy chunk files left after the upgrade"
timeout 60 "$BACKY" -b "$REPO" upgrade >"$WORK/upgrade2.out" 2>&1 ||
  { cat "$WORK/upgrade2.out" >&2; die "a second upgrade (a no-op) failed"; }

series upgraded

# ---- report -----------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN {printf "%d", b / 1048576}'; }
ratio() {  # A B -> A/B with two decimals, or "-"
  if [[ -z ${1:-} || -z ${2:-} || $2 == 0 ]]; then echo "-"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}
table() {
  local label m c
  echo "| \`backy upgrade\` of 2 revisions ($(mib "$SIZE") MiB image each) | |"
  echo "|---|---:|"
  echo "| wall time (s, page cache dropped before) | $UP_SECS |"
  echo "| throughput, MiB of image per second (2 revisions x $(mib "$SIZE") MiB / time, as upgrade's summary counts) | $(awk -v s="$SIZE" -v t="$UP_SECS" 'BEGIN {printf "%d", 2 * s / 1048576 / t}') |"
  echo "| throughput, MiB of 2.x chunks decoded per second ($LEGACY_CHUNKS chunk files x 4 MiB / time) | $(awk -v n="$LEGACY_CHUNKS" -v t="$UP_SECS" 'BEGIN {printf "%d", n * 4 / t}') |"
  echo "| peak RSS (MiB) | $UP_RSS |"
  echo "| repository before / peak during / after (MiB) | $(mib "$LEGACY_BYTES") / $(mib "$UP_PEAK") / $(mib "$UP_AFTER") |"
  echo
  echo "| NBD, revision $U2 | 2.x, in place | after upgrade | after / in place |"
  echo "|---|---:|---:|---:|"
  for m in "${ORDER[@]}"; do
    for c in cold warm; do
      case $m in
        seq) label="sequential 256 KiB qd8, $c (MiB/s)" ;;
        rand1) label="random 4 KiB qd1, whole image, $c (IOPS)" ;;
        rand32) label="random 4 KiB qd32, whole image, $c (IOPS)" ;;
        hot32) label="random 4 KiB qd32, first $HOT_MIB MiB, $c (IOPS)" ;;
      esac
      printf '| %s | %s | %s | %s |\n' "$label" "${R[legacy,$m,$c]:--}" \
        "${R[upgraded,$m,$c]:--}" "$(ratio "${R[upgraded,$m,$c]:-}" "${R[legacy,$m,$c]:-}")"
    done
  done
  printf '| server peak RSS, MiB (max over the runs above) |'
  local f mx
  for f in "${FORMS[@]}"; do
    mx=0
    for m in "${ORDER[@]}"; do ((R[$f,$m,rss] > mx)) && mx=${R[$f,$m,rss]}; done
    printf ' %s |' "$mx"
  done
  printf ' |\n'
}

OUT=$(table)
echo "$OUT"
{
  echo "# backy 2.x repositories: served in place, upgraded (issue 11)"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n):" \
    "$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), " \
    "$(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
  echo "Tools: $(fio --version), $(nbdcopy --version | head -1)."
  echo
  echo "Command: \`$CMDLINE\` (image: $(mib "$SIZE") MiB of mixed data from"
  echo "\`gen_image.py create IMG $SIZE_MIB $SEED\`, two 2.5-style revisions written by"
  echo "backy-test-legacy-writer, 1 % of the image changed between them: $LEGACY_CHUNKS chunk files;"
  echo "backy \`--cache-size $CACHE_SIZE\`; fio runs ${RUNTIME} s; server on CPU 0, clients on CPU 1;"
  echo "cold = fresh server process and dropped page cache, warm = the same run again)."
  echo
  echo "$OUT"
  echo
  echo "\`backy upgrade --dry-run\` printed:"
  echo
  sed 's/^/    /' "$WORK/dry-run.out"
  echo
  echo "\`backy upgrade\` printed:"
  echo
  sed 's/^/    /' "$WORK/upgrade.out"
} >"$RESULTS"
log "results written to $RESULTS"
