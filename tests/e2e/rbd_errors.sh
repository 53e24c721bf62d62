#!/bin/bash
# RBD errors are clear and bounded in time: a wrong monitor port fails
# after the configured connect timeout (not Ceph's 300 s); a missing
# image or pool is named; a failed backup leaves no revision, no chunk
# and no snapshot behind; init --no-check defers the check to the backup.
. "$(dirname "$0")/rbd_lib.sh"
start_cluster

rbd create --size 16M rbd/vm
rbd_io write rbd/vm 0 $M data

log "wrong monitor port"
sed -E 's/(mon host = v2:127\.0\.0\.1:)[0-9]+/\11/' "$CEPH_CONF" > "$T/wrong-port.conf"
start=$SECONDS
expect_fail "init: .*connecting to the Ceph cluster at v2:127.0.0.1:1 .*gave up after 3 s.*rbd/vm" \
  "$BACKY" -b "$T/r1" init --ceph-conf "$T/wrong-port.conf" --connect-timeout 3 ceph-rbd rbd/vm
[ ! -e "$T/r1/config" ] || fail "failed init left a repository"
"$BACKY" -b "$T/r1" init --no-check --ceph-conf "$T/wrong-port.conf" --connect-timeout 3 ceph-rbd rbd/vm
grep -q "ceph_conf: $T/wrong-port.conf" "$T/r1/config" || fail "ceph_conf not in the config"
grep -q "connect_timeout: 3" "$T/r1/config" || fail "connect_timeout not in the config"
expect_fail "backup: .*connecting to the Ceph cluster .*gave up after 3 s" "$BACKY" -b "$T/r1" backup daily
((SECONDS - start <= 20)) || fail "two 3 s connection timeouts took $((SECONDS - start)) s"
# The default timeout is 30 s, from CEPH_CONF as well.
CEPH_CONF=$T/wrong-port.conf "$BACKY" -b "$T/r1b" init --no-check ceph-rbd rbd/vm
grep -q ceph_conf "$T/r1b/config" && fail "CEPH_CONF was written into the config"
expect_fail "cannot read Ceph configuration|reading Ceph configuration .*nope.conf" \
  "$BACKY" -b "$T/r1c" init --ceph-conf "$T/nope.conf" ceph-rbd rbd/vm

log "missing image"
expect_fail "init: .*image does not exist.*rbd/nope" "$BACKY" -b "$T/r2" init ceph-rbd rbd/nope
"$BACKY" -b "$T/r2" init --no-check ceph-rbd rbd/nope
expect_fail "backup: .*image does not exist.*rbd/nope" "$BACKY" -b "$T/r2" backup daily
[ "$(rev_ids "$T/r2" | wc -l)" = 0 ] || fail "failed backup published a revision"
[ -z "$(find "$T/r2/chunks" -name '*.chunk')" ] || fail "failed backup left chunks"

log "missing pool"
expect_fail "init: .*pool 'nopool' does not exist" "$BACKY" -b "$T/r3" init ceph-rbd nopool/vm
"$BACKY" -b "$T/r3" init --no-check ceph-rbd nopool/vm
expect_fail "backup: .*pool 'nopool' does not exist" "$BACKY" -b "$T/r3" backup daily

log "malformed specs and config"
expect_fail "expected an RBD image as POOL/IMAGE" "$BACKY" -b "$T/r4" init ceph-rbd vm
expect_fail "expected an RBD image" "$BACKY" -b "$T/r4" init ceph-rbd rbd/vm@snap
"$BACKY" -b "$T/r5" init ceph-rbd rbd/vm
sed -i 's/verify_budget: 300/verify_budget: soon/' "$T/r5/config"
expect_fail "verify_budget must be a number of seconds" "$BACKY" -b "$T/r5" backup daily
sed -i 's/verify_budget: soon/verify_budget: 0/' "$T/r5/config"
# A zero budget is recorded as an incomplete verification, not a pass.
"$BACKY" -b "$T/r5" backup daily
"$BACKY" -b "$T/r5" status --yaml | grep -q 'complete: false' || fail "zero budget recorded as complete"

log "restore targets"
expect_fail "pool 'nopool' does not exist" "$BACKY" -b "$T/r5" restore rbd:nopool/new
rbd ls | grep -q new && fail "failed restore created an image"
# A failed restore removes the image it created.
chunk=$(find "$T/r5/chunks" -name '*.chunk' | head -1)
printf '\x5a' | dd of="$chunk" bs=1 seek=5000 conv=notrunc status=none
expect_fail "Corruption" "$BACKY" -b "$T/r5" restore rbd:rbd/new
rbd ls | grep -qx new && fail "failed restore left rbd/new behind"
echo PASS
