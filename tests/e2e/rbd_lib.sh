# Helpers for the RBD end-to-end tests (label ceph). Source it instead of
# lib.sh: it sources lib.sh, and start_cluster brings up a throwaway
# single-node cluster in $T/ceph (tests/ceph/cluster.sh) that the EXIT
# trap stops. Images stay small: memstore keeps the data in RAM.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${BACKY_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CLUSTER_SH=$BACKY_SOURCE_DIR/tests/ceph/cluster.sh
M=$((1024 * 1024))
OBJ=$((4 * M))  # RBD's default object size = backy's chunk size

requires ceph-mon ceph-osd ceph rbd monmaptool openssl
# The Ceph Python bindings (python3-rbd) come with ceph-common and are
# built for Debian's python3, not whatever python3 is first on PATH.
PY=/usr/bin/python3
"$PY" -c 'import rbd' 2>/dev/null || { echo "SKIP: python3-rbd not installed" >&2; exit 77; }

start_cluster() {
  CLEANUPS+=("'$CLUSTER_SH' stop '$T/ceph'")
  local exports
  exports=$("$CLUSTER_SH" start "$T/ceph") || fail "could not start a Ceph cluster"
  eval "$exports"
  log "cluster up: $CEPH_CONF"
}

# rbd_io write IMAGE OFFSET LENGTH SEED | discard IMAGE OFFSET LENGTH:
# deterministic writes through librbd (no kernel mapping needed).
rbd_io() {
  "$PY" - "$@" <<'PYEOF'
import os, random, sys
import rados, rbd
op, spec, off, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pool, name = spec.split("/")
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
    with cluster.open_ioctx(pool) as io:
        with rbd.Image(io, name) as img:
            if op == "write":
                data = random.Random(sys.argv[5]).randbytes(length)
                assert img.write(data, off) == length
            elif op == "discard":
                img.discard(off, length)
            else:
                sys.exit("unknown op " + op)
PYEOF
}

# export_sha IMAGE[@SNAP]: sha256 of the image's content.
export_sha() { rbd export --no-progress "$1" - 2>/dev/null | sha; }

# backy_snaps IMAGE: the names of its backy-* snapshots, one per line.
backy_snaps() { rbd snap ls --format json "$1" | "$PY" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["name"].startswith("backy-"): print(s["name"])'; }

# check_revision REPO IMAGE SPEC: restoring SPEC to stdout gives exactly
# what the revision's snapshot holds (REQUIRES: the snapshot still exists).
check_revision() {
  local id want got
  id=$("$BACKY" -b "$1" find -r "$3")
  want=$(export_sha "$2@backy-$id")
  got=$("$BACKY" -b "$1" restore -r "$3" - | sha)
  [ "$want" = "$got" ] || fail "revision $3 ($id) restores to $got, snapshot has $want"
  log "revision $id matches $2@backy-$id"
}
