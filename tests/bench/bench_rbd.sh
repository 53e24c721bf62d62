#!/usr/bin/env bash
# Benchmark of issue 4: backy on a Ceph RBD image against the limits a user
# would otherwise script with the rbd tool: a full backup vs `rbd snap
# create` + `rbd export` to a file; an incremental after 1% of the objects
# changed vs `rbd snap create` + `rbd export-diff --from-snap`; restore
# through `rbd import -` (and straight into RBD) vs `rbd import FILE`.
# Not a test: run it by hand. Starts its own throwaway cluster
# (tests/ceph/cluster.sh, memstore: the data lives in RAM).
#
#   tests/bench/bench_rbd.sh [-b BACKY] [-s SIZE_MIB] [-w WORKDIR] [-o RESULTS]
#
# Prints a Markdown table and writes it to tests/bench/RESULTS-rbd.md.
# Exported files and the repository are fsynced, so both sides pay for
# durability.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BACKY=$ROOT/build/src/backup/backy
SIZE_MIB=1024
WORK_PARENT=/var/tmp
OUT=$HERE/RESULTS-rbd.md
PY=/usr/bin/python3  # Debian's python3, which has python3-rbd

while (($#)); do
  case $1 in
  -b) BACKY=$2; shift 2 ;;
  -s) SIZE_MIB=$2; shift 2 ;;
  -w) WORK_PARENT=$2; shift 2 ;;
  -o) OUT=$2; shift 2 ;;
  *) echo "usage: $0 [-b BACKY] [-s SIZE_MIB] [-w WORKDIR] [-o RESULTS]" >&2; exit 2 ;;
  esac
done
BACKY=$(readlink -f "$BACKY")
[ -x "$BACKY" ] || { echo "backy binary not found: $BACKY" >&2; exit 1; }

W=$(mktemp -d "$WORK_PARENT/backy-bench-rbd.XXXXXX")
trap '"$ROOT/tests/ceph/cluster.sh" stop "$W/ceph"; rm -rf "$W"' EXIT
# Memstore keeps about twice the data in RAM: the image, its snapshots'
# copy-on-write objects and three restored copies.
export BACKY_CEPH_MEMSTORE_BYTES=$(( (SIZE_MIB * 8 + 1024) * 1024 * 1024 ))
eval "$("$ROOT/tests/ceph/cluster.sh" start "$W/ceph")"

M=$((1024 * 1024))
OBJ=$((4 * M))
objects=$((SIZE_MIB * M / OBJ))
changed=$(( (objects + 99) / 100 ))  # 1%, at least one object
img=rbd/bench

now() { date +%s.%N; }
# timed VAR CMD...: runs CMD, stores its wall time in seconds in VAR.
timed() {
  local var=$1 t0
  shift
  t0=$(now)
  "$@"
  printf -v "$var" '%.2f' "$(echo "$(now) - $t0" | bc)"
}
sha_of() { rbd export --no-progress "$1" - 2>/dev/null | sha256sum | cut -d' ' -f1; }
mibs() { echo "scale=0; $SIZE_MIB / $1" | bc; }
field() {  # field SPEC NAME: a number from the revision's YAML
  "$BACKY" -b "$W/repo" status --yaml | awk -v id="$("$BACKY" -b "$W/repo" find -r "$1")" -v f="$2" '
    $1 == "id:" { cur = $2 } cur == id && $1 == f":" { print $2; exit }'
}

echo "== image: $SIZE_MIB MiB, 7/8 random data, 1/8 never written" >&2
data_mib=$((SIZE_MIB * 7 / 8))
{ openssl enc -aes-128-ctr -nosalt -pass pass:bench -pbkdf2 -in /dev/zero 2>/dev/null || true; } |
  head -c $((data_mib * M)) > "$W/src.img"
truncate -s "${SIZE_MIB}M" "$W/src.img"
rbd import --no-progress "$W/src.img" "$img"
rm -f "$W/src.img"

echo "== full backup" >&2
"$BACKY" -b "$W/repo" init ceph-rbd "$img" >/dev/null
timed t_full "$BACKY" -b "$W/repo" backup daily
full_read=$(field 0 bytes_read)
export_full() {
  rbd snap create "$img@s1" >/dev/null 2>&1
  rbd export --no-progress "$img@s1" "$W/full.img"
  sync "$W/full.img"
}
timed t_export export_full

echo "== incremental: $changed of $objects objects rewritten" >&2
"$PY" - "$img" "$objects" "$changed" <<'PYEOF'
import os, random, sys
import rados, rbd
spec, objects, changed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pool, name = spec.split("/")
rng = random.Random(4)
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster, \
        cluster.open_ioctx(pool) as io, rbd.Image(io, name) as img:
    for obj in rng.sample(range(objects), changed):
        img.write(rng.randbytes(4 << 20), obj * (4 << 20))
PYEOF
timed t_incr "$BACKY" -b "$W/repo" backup daily
incr_read=$(field 0 bytes_read)
incr_extents=$(field 0 extents_changed)
export_diff() {
  rbd snap create "$img@s2" >/dev/null 2>&1
  rbd export-diff --no-progress --from-snap s1 "$img@s2" "$W/diff"
  sync "$W/diff"
}
timed t_diff export_diff
diff_size=$(stat -c %s "$W/diff")

echo "== restore" >&2
want=$(sha_of "$img@s2")
restore_pipe() { "$BACKY" -b "$W/repo" restore - 2>/dev/null | rbd import --no-progress - rbd/r1; }
timed t_restore_pipe restore_pipe
timed t_restore_rbd "$BACKY" -b "$W/repo" restore rbd:rbd/r2
timed t_import rbd import --no-progress "$W/full.img" rbd/r0
[ "$(sha_of rbd/r1)" = "$want" ] || { echo "restore | rbd import differs" >&2; exit 1; }
[ "$(sha_of rbd/r2)" = "$want" ] || { echo "restore rbd: differs" >&2; exit 1; }
repo_mib=$(du -sm "$W/repo" | cut -f1)

ratio() { echo "scale=2; $1 / $2" | bc; }
{
  echo "# backy on Ceph RBD: benchmark ($(date -u +%Y-%m-%d))"
  echo
  echo "\`tests/bench/bench_rbd.sh\`: ${SIZE_MIB} MiB image ($data_mib MiB random data, rest never"
  echo "written), single-node memstore cluster on this machine ($(nproc) cores),"
  echo "repository and export files on $(df --output=fstype "$WORK_PARENT" | tail -1) under $WORK_PARENT,"
  echo "all fsynced. rbd columns include their \`rbd snap create\`; backy's include its"
  echo "snapshot, hashing, zstd, chunk writes, sampled verification and publishing."
  echo
  echo "| step | backy | s | rbd equivalent | s | ratio |"
  echo "|---|---|---:|---|---:|---:|"
  echo "| full backup | \`backup\` ($(mibs "$t_full") MiB/s) | $t_full | \`rbd export\` to a file | $t_export | $(ratio "$t_full" "$t_export") |"
  echo "| incremental, $changed/$objects objects changed | \`backup\` | $t_incr | \`rbd export-diff --from-snap\` | $t_diff | $(ratio "$t_incr" "$t_diff") |"
  echo "| restore | \`restore - \\| rbd import -\` | $t_restore_pipe | \`rbd import FILE\` | $t_import | $(ratio "$t_restore_pipe" "$t_import") |"
  echo "| restore | \`restore rbd:POOL/IMAGE\` | $t_restore_rbd | \`rbd import FILE\` | $t_import | $(ratio "$t_restore_rbd" "$t_import") |"
  echo
  echo "| | bytes |"
  echo "|---|---:|"
  echo "| full backup: read from the cluster | $full_read ($((full_read / M)) MiB) |"
  echo "| incremental: changed ($changed objects) | $((changed * OBJ)) |"
  echo "| incremental: read from the cluster ($incr_extents extents) | $incr_read |"
  echo "| incremental: \`rbd export-diff\` file | $diff_size |"
  echo "| repository after both backups | $repo_mib MiB |"
} | tee "$OUT"
