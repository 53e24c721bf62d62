# Helpers for the end-to-end tests of repositories in a RADOS pool (label
# ceph). Source it instead of lib.sh: it sources lib.sh; start_cluster
# brings up a throwaway single-node cluster in $T/ceph
# (tests/ceph/cluster.sh) that the EXIT trap stops, and makes pool $POOL.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${BACKY_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CLUSTER_SH=$BACKY_SOURCE_DIR/tests/ceph/cluster.sh
POOL=backy
requires ceph-mon ceph-osd ceph rados monmaptool openssl

start_cluster() {
  CLEANUPS+=("'$CLUSTER_SH' stop '$T/ceph'")
  local exports
  exports=$("$CLUSTER_SH" start "$T/ceph") || fail "could not start a Ceph cluster"
  eval "$exports"
  ceph osd pool create "$POOL" 8 >/dev/null 2>&1 || fail "cannot create pool $POOL"
  log "cluster up: $CEPH_CONF, pool $POOL"
}

# chunk_oids NAME: the chunk objects of repository rados:$POOL/NAME.
chunk_oids() { rados -p "$POOL" ls | grep "^$1/chunk/" | sort; }

# corrupt_object OID OFFSET: flips one byte of the object at OFFSET, as
# another host writing garbage would (read, modify, put it back whole).
corrupt_object() {
  rados -p "$POOL" get "$1" "$T/obj" || fail "cannot read object $1"
  printf '\x5a' | dd of="$T/obj" bs=1 seek="$2" conv=notrunc status=none
  rados -p "$POOL" put "$1" "$T/obj" || fail "cannot write object $1"
  rm -f "$T/obj"
}

# retry_busy SECONDS CMD...: runs CMD until it succeeds; while it fails
# Busy (a lock whose holder was killed, until its lease runs out) for at
# most SECONDS; any other failure fails the test.
retry_busy() {
  local limit=$1 start=$SECONDS err
  shift
  while ! err=$("$@" 2>&1 >/dev/null); do
    grep -Eq "locked|is held|in use" <<<"$err" || fail "$*: $err"
    [ $((SECONDS - start)) -lt "$limit" ] || fail "$* still busy after $limit s: $err"
    sleep 0.5
  done
}
