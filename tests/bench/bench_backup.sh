#!/usr/bin/env bash
# Benchmark of issue 2: backy vs restic vs borg on a 4 GiB mixed-content image,
# with `xxhsum -H2` and `cp` as the limits. Not a test: run it by hand.
#
#   tests/bench/bench_backup.sh [-b BACKY] [-w WORKDIR] [-s SIZE_MIB] [-n ROUNDS]
#                               [--warm] [--keep] [--tools "backy restic borg limits"]
#
# Prints a Markdown table (time, throughput, repository size, peak RSS) and
# the correctness checks. With -n ROUNDS > 1 every step is run ROUNDS times
# (fresh repositories, the image reverted after each round) and the table
# shows the median time with the min-max range: on a VM, disk speed varies a
# lot from one minute to the next. See tests/bench/RESULTS.md for a recorded run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
WORK_PARENT=/var/tmp
SIZE_MIB=4096
IMAGE_KIND=create
SEED=42
CHANGE_PERCENT=1
CACHE_MODE=cold
KEEP=0
ROUNDS=1
TOOLS="backy restic borg limits"

usage() {
  cat <<EOF
usage: $0 [options]
  -b, --backy PATH     backy binary (default: $BACKY)
  -w, --workdir DIR    parent of the scratch directory (default: $WORK_PARENT);
                       needs about 5x the image size free
  -s, --size-mib N     image size in MiB (default: $SIZE_MIB)
  -n, --rounds N       repeat every step N times, report the median (default: $ROUNDS)
      --seed S         seed of the image content and of the changes (default: $SEED)
      --image KIND     gen_image.py kind: create (runs of 1-16 MiB), segments
                       (issue 14's 32 MiB random/random/zeros/text) or text
                       (default: $IMAGE_KIND)
      --warm           keep the page cache (default: drop it before every step)
      --keep           keep the scratch directory
      --tools LIST     subset of "backy restic borg limits"
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -b|--backy) BACKY=$2; shift 2 ;;
    -w|--workdir) WORK_PARENT=$2; shift 2 ;;
    -s|--size-mib) SIZE_MIB=$2; shift 2 ;;
    -n|--rounds) ROUNDS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --image) IMAGE_KIND=$2; shift 2 ;;
    --warm) CACHE_MODE=warm; shift ;;
    --keep) KEEP=1; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
die() { echo "bench: $*" >&2; exit 1; }

# ---- prerequisites ----------------------------------------------------------
BACKY=$(readlink -f "$BACKY") || die "backy binary not found"
[[ -x $BACKY ]] || die "backy binary not found or not executable: $BACKY"
missing=()
for t in restic:restic borg:borgbackup xxhsum:xxhash; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
[[ -x /usr/bin/time ]] || missing+=(time)
command -v openssl >/dev/null || missing+=(openssl)
[[ -x /usr/bin/python3 ]] || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bench: installing ${missing[*]}" >&2
  apt-get install -y "${missing[@]}" >&2
fi
if [[ $CACHE_MODE == cold && ! -w /proc/sys/vm/drop_caches ]]; then
  die "dropping page caches needs root; run as root or pass --warm"
fi

mkdir -p "$WORK_PARENT"
need_kib=$(( SIZE_MIB * 1024 * 5 ))
avail_kib=$(df -Pk "$WORK_PARENT" | awk 'NR==2 {print $4}')
(( avail_kib >= need_kib )) ||
  die "$WORK_PARENT has $((avail_kib / 1024 / 1024)) GiB free, needs $((need_kib / 1024 / 1024)) GiB"

W=$(mktemp -d "$WORK_PARENT/backy-bench.XXXXXX")
cleanup() {
  local rc=$?
  if [[ $KEEP == 1 ]]; then
    echo "bench: kept $W" >&2
  else
    rm -rf "$W"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IMG=$W/image.raw
LOG=$W/log
mkdir -p "$LOG"
export RESTIC_PASSWORD_FILE=$W/restic-password RESTIC_CACHE_DIR=$W/restic-cache
echo "bench-password" >"$RESTIC_PASSWORD_FILE"
export BORG_BASE_DIR=$W/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# ---- measurement ------------------------------------------------------------
ROWS=()      # "tool|step|seconds|MiB/s|repo bytes|rss MiB"
CHECKS=()
IMAGE_BYTES=$(( SIZE_MIB * 1024 * 1024 ))

drop_caches() {
  sync
  if [[ $CACHE_MODE == cold ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# step TOOL STEP REPO OUT -- COMMAND...: runs COMMAND with stdout to OUT, then
# `sync` (so written data is on disk for every tool, as backy fsyncs), timed.
step() {
  local tool=$1 name=$2 repo=$3 out=$4
  shift 5
  local log=$LOG/$tool-${name//[^a-zA-Z0-9]/_}
  drop_caches
  echo "bench: $tool $name ..." >&2
  local t0 t1
  t0=$(date +%s.%N)
  if ! /usr/bin/time -f '%M' -o "$log.rss" "$@" >"$out" 2>"$log.err"; then
    tail -n 20 "$log.err" >&2
    die "$tool $name failed: $*"
  fi
  sync
  t1=$(date +%s.%N)
  local secs rss size="-"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
  rss=$(awk 'END {printf "%.0f", $1 / 1024}' "$log.rss")
  [[ $repo != - ]] && size=$(du -sb "$repo" | cut -f1)
  ROWS+=("$tool|$name|$secs|$size|$rss")
  echo "bench: $tool $name: ${secs}s, ${rss} MiB RSS" >&2
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
check() {  # check WHAT EXPECTED ACTUAL
  local ok=FAIL
  [[ $2 == "$3" ]] && ok=ok
  CHECKS+=("$ok: round $ROUND: $1 (${3:0:16}…)")
  [[ $ok == ok ]] || FAILED=1
}
FAILED=0

# ---- the image ----------------------------------------------------------------
echo "bench: generating ${SIZE_MIB} MiB image (seed $SEED) in $W" >&2
t0=$(date +%s.%N)
/usr/bin/python3 "$HERE/gen_image.py" "$IMAGE_KIND" "$IMG" "$SIZE_MIB" "$SEED" >"$LOG/gen"
GEN_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
SHA_FULL=$(sha "$IMG")
IMG_ALLOC=$(du -sB1 "$IMG" | cut -f1)
IMG_ZSTD=$(zstd -1 -T2 -c "$IMG" 2>/dev/null | wc -c || echo 0)

for ROUND in $(seq 1 "$ROUNDS"); do
echo "bench: round $ROUND of $ROUNDS" >&2
rm -rf "$W"/backy-repo "$W"/restic-repo "$W"/restic-cache "$W"/borg-repo "$W"/borg-home

# ---- full backups (and the limits, on the same image) -------------------------
if has_tool limits; then
  step xxhsum "hash (-H2)" - /dev/null -- xxhsum -H2 "$IMG"
  step cp "copy" - /dev/null -- cp "$IMG" "$W/copy.raw"
  rm -f "$W/copy.raw"
fi
if has_tool backy; then
  BREPO=$W/backy-repo
  "$BACKY" -b "$BREPO" init file "$IMG" >"$LOG/backy-init" 2>&1
  BACKY_COMPRESSION=$(awk '/compression/ {printf "%s%s ", $1, $2}' "$BREPO/config")
  step backy "full backup" "$BREPO" /dev/null -- "$BACKY" -b "$BREPO" backup full
fi
if has_tool restic; then
  RREPO=$W/restic-repo
  restic -r "$RREPO" init >"$LOG/restic-init" 2>&1
  RESTIC_COMPRESSION="repo v$(restic -r "$RREPO" cat config 2>/dev/null | awk -F'[:,]' '/"version"/ {gsub(/ /,"",$2); print $2}'), compression auto (zstd)"
  step restic "full backup" "$RREPO" /dev/null -- restic -r "$RREPO" backup "$IMG"
fi
if has_tool borg; then
  GREPO=$W/borg-repo
  borg init -e none "$GREPO" >"$LOG/borg-init" 2>&1
  step borg "full backup" "$GREPO" /dev/null -- \
    bash -c 'cd "$1" && exec borg create "$2::full" image.raw' _ "$W" "$GREPO"
fi

# ---- change 1 % of the image, incremental backups -----------------------------
/usr/bin/python3 "$HERE/gen_image.py" mutate "$IMG" "$CHANGE_PERCENT" "$SEED" >"$LOG/mutate"
SHA_INC=$(sha "$IMG")
if has_tool backy; then
  step backy "incremental backup" "$BREPO" /dev/null -- "$BACKY" -b "$BREPO" backup incr
fi
if has_tool restic; then
  step restic "incremental backup" "$RREPO" /dev/null -- restic -r "$RREPO" backup "$IMG"
fi
if has_tool borg; then
  step borg "incremental backup" "$GREPO" /dev/null -- \
    bash -c 'cd "$1" && exec borg create "$2::incr" image.raw' _ "$W" "$GREPO"
fi

# ---- restores of the newest revision --------------------------------------------
if has_tool backy; then
  step backy "restore to file" "$BREPO" /dev/null -- \
    "$BACKY" -b "$BREPO" restore -r 0 "$W/backy-restored.raw"
  check "backy restore -r 0 to a file == changed image" "$SHA_INC" "$(sha "$W/backy-restored.raw")"
  rm -f "$W/backy-restored.raw"
  step backy "restore to /dev/null" "$BREPO" /dev/null -- "$BACKY" -b "$BREPO" restore -r 0 -
  if [[ $ROUND == 1 ]]; then
    check "backy restore -r 1 to stdout == original image" "$SHA_FULL" \
      "$("$BACKY" -b "$BREPO" restore -r 1 - | sha256sum | cut -d' ' -f1)"
  fi
  "$BACKY" -b "$BREPO" status --yaml >"$LOG/backy-status.yaml"
  BACKY_INC_STATS=$(awk '/^---/ {s = ""} /^  (bytes_read|bytes_written|chunks_new|chunks_reused|chunks_zero|duration):/ {s = s $1 " " $2 " "} END {print s}' "$LOG/backy-status.yaml")
  BACKY_FULL_STATS=$(awk '/^---/ {n++} n == 1 && /^  (bytes_written|chunks_new|chunks_zero):/ {s = s $1 " " $2 " "} END {print s}' "$LOG/backy-status.yaml")
fi
if has_tool restic; then
  step restic "restore to file" "$RREPO" /dev/null -- \
    restic -r "$RREPO" restore latest --target "$W/restic-restored"
  check "restic restore == changed image" "$SHA_INC" "$(sha "$W/restic-restored$IMG")"
  rm -rf "$W/restic-restored"
  step restic "restore to /dev/null" "$RREPO" /dev/null -- \
    restic -r "$RREPO" dump latest "$IMG"
fi
if has_tool borg; then
  mkdir -p "$W/borg-restored"
  step borg "restore to file" "$GREPO" /dev/null -- \
    bash -c 'cd "$1" && exec borg extract "$2::incr"' _ "$W/borg-restored" "$GREPO"
  check "borg extract == changed image" "$SHA_INC" "$(sha "$W/borg-restored/image.raw")"
  rm -rf "$W/borg-restored"
  step borg "restore to /dev/null" "$GREPO" /dev/null -- \
    borg extract --stdout "$GREPO::incr" image.raw
fi

/usr/bin/python3 "$HERE/gen_image.py" revert "$IMG" - -
[[ $ROUNDS == 1 ]] || check "image reverted to the original" "$SHA_FULL" "$(sha "$IMG")"
done  # rounds

# ---- report ----------------------------------------------------------------------
echo
echo "Image: ${SIZE_MIB} MiB (seed $SEED), $(( IMG_ALLOC / 1048576 )) MiB allocated," \
  "zstd -1 of the whole image: $(( IMG_ZSTD / 1048576 )) MiB; generated in ${GEN_SECS}s;" \
  "$(tail -n1 "$LOG/gen" | sed 's/.*regions, /layout /')"
echo "Change: $(sed 's/: .*//' "$LOG/mutate")"
if [[ $CACHE_MODE == cold ]]; then
  echo "Page cache: dropped (sync; echo 3 > drop_caches) before every step: all reads come from disk."
else
  echo "Page cache: warm (never dropped)."
fi
echo "Every timed step ends with \`sync\`, so written data is on disk for all tools."
echo "Throughput = image size / time. Repository size = \`du -sb\` after the step."
echo "Compression: backy ${BACKY_COMPRESSION:-n/a}; restic ${RESTIC_COMPRESSION:-n/a}; borg default (lz4)."
echo
if [[ $ROUNDS == 1 ]]; then
  echo "| tool | step | time (s) | MiB/s | repository (MiB) | peak RSS (MiB) |"
  echo "|---|---|---:|---:|---:|---:|"
else
  echo "Times: median of $ROUNDS rounds [min-max]; MiB/s from the median; repository size and RSS: largest."
  echo
  echo "| tool | step | time (s) | MiB/s | repository (MiB) | peak RSS (MiB) |"
  echo "|---|---|---:|---:|---:|---:|"
fi
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v b="$IMAGE_BYTES" -v rounds="$ROUNDS" '
  { k = $1 "|" $2
    if (!(k in n)) order[++nk] = k
    t[k, ++n[k]] = $3
    if ($4 != "-" && $4 + 0 > size[k] + 0) size[k] = $4; else if (!(k in size)) size[k] = $4
    if ($5 + 0 > rss[k] + 0) rss[k] = $5 }
  END {
    for (i = 1; i <= nk; i++) {
      k = order[i]; m = n[k]
      for (a = 1; a <= m; a++) v[a] = t[k, a]
      for (a = 1; a <= m; a++) for (c = a + 1; c <= m; c++) if (v[c] + 0 < v[a] + 0) { x = v[a]; v[a] = v[c]; v[c] = x }
      med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
      split(k, kk, "|")
      ts = sprintf("%.2f", med); if (m > 1) ts = ts sprintf(" [%.1f-%.1f]", v[1], v[m])
      sz = size[k] == "-" ? "-" : sprintf("%.0f", size[k] / 1048576)
      printf "| %s | %s | %s | %.0f | %s | %s |\n", kk[1], kk[2], ts, b / 1048576 / med, sz, rss[k]
    } }' 
echo
echo "Checks (sha256 of restored images):"
for c in "${CHECKS[@]}"; do echo "- $c"; done
if has_tool backy; then
  echo
  echo "backy full backup stats: ${BACKY_FULL_STATS}"
  echo "backy incremental backup stats: ${BACKY_INC_STATS}"
fi
exit $FAILED
