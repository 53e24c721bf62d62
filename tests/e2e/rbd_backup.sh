#!/bin/bash
# RBD: full backup, then incrementals with writes in between (whole 4 MiB
# objects, partial writes, a discard). After each backup the restore
# equals `rbd export IMAGE@backy-<id>`; the incremental reads only the
# changed objects; restores through `rbd import -` and `restore rbd:`
# give the same image; an existing image is only overwritten with
# --force; only the newest backy-* snapshot is kept, others' are not
# touched.
. "$(dirname "$0")/rbd_lib.sh"
start_cluster

img=rbd/vm
repo=$T/repo
rbd create --size 64M "$img"
rbd_io write "$img" 0 $((6 * OBJ)) base       # objects 0-5
rbd_io write "$img" $((9 * OBJ + 100000)) 300000 part  # part of object 9

"$BACKY" -b "$repo" init ceph-rbd "$img"
grep -q 'type: ceph-rbd' "$repo/config" || fail "config has no ceph-rbd source"
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0
# A full backup reads only allocated objects: 0-5 and 9.
[ "$(rev_field "$repo" 0 bytes_read)" = $((7 * OBJ)) ] ||
  fail "full backup read $(rev_field "$repo" 0 bytes_read) bytes, expected 7 objects"

# Change objects 2 (rewritten whole), 4 (1000 bytes) and 12 (new, 8 KiB);
# discard object 5.
rbd_io write "$img" $((2 * OBJ)) "$OBJ" second
rbd_io write "$img" $((4 * OBJ + 12345)) 1000 small
rbd_io write "$img" $((12 * OBJ + 4096)) 8192 fresh
rbd_io discard "$img" $((5 * OBJ)) "$OBJ"
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0
read=$(rev_field "$repo" 0 bytes_read)
[ "$read" = $((3 * OBJ)) ] || fail "incremental read $read bytes, expected 3 objects"
[ "$(rev_field "$repo" 0 extents_changed)" = 4 ] ||
  fail "incremental reported $(rev_field "$repo" 0 extents_changed) changed extents, expected 4"
[ "$(rev_field "$repo" 0 chunks_carried)" = 4 ] ||  # objects 0, 1, 3, 9
  fail "incremental carried $(rev_field "$repo" 0 chunks_carried) chunks, expected 4"
"$BACKY" -b "$repo" status --yaml | grep -q 'method: sample' || fail "no sampled verification"
[ "$(backy_snaps "$img" | wc -l)" = 1 ] || fail "older backy snapshot not removed"
id1=$("$BACKY" -b "$repo" find -r 0)
want1=$(export_sha "$img@backy-$id1")

# Restores: through rbd import, and straight into RBD.
"$BACKY" -b "$repo" restore - | rbd import --no-progress - rbd/new1
[ "$(export_sha rbd/new1)" = "$want1" ] || fail "restore | rbd import differs"
"$BACKY" -b "$repo" restore rbd:rbd/new2
[ "$(export_sha rbd/new2)" = "$want1" ] || fail "restore rbd:rbd/new2 differs"
# Only non-zero chunks are written into a new image: 6 objects of data.
used=$(rbd du --format json rbd/new2 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["used_size"])')
[ "$used" -le $((7 * OBJ)) ] || fail "restore rbd: allocated $used bytes"
expect_fail "already exists.*rbd/new2" "$BACKY" -b "$repo" restore rbd:rbd/new2
[ "$(export_sha rbd/new2)" = "$want1" ] || fail "a refused restore changed rbd/new2"
# --force writes an older revision over it, zeroing what is zero there
# (object 12) and filling what was discarded since (object 5).
want0=$("$BACKY" -b "$repo" restore -r 1 - | sha)
"$BACKY" -b "$repo" restore -r 1 --force rbd:rbd/new2
[ "$(export_sha rbd/new2)" = "$want0" ] || fail "restore --force of revision 1 differs"
expect_fail "expected an RBD image" "$BACKY" -b "$repo" restore rbd:just-a-pool

# Third backup with a foreign snapshot: only the newest backy-* remains.
rbd snap create "$img@before-upgrade" >/dev/null 2>&1
rbd_io write "$img" $((7 * OBJ)) 4096 third
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0
id2=$("$BACKY" -b "$repo" find -r 0)
[ "$(backy_snaps "$img")" = "backy-$id2" ] || fail "backy snapshots: $(backy_snaps "$img" | tr '\n' ' ')"
rbd snap ls "$img" | grep -q before-upgrade || fail "foreign snapshot removed"
[ "$(rev_ids "$repo" | wc -l)" = 3 ] || fail "expected 3 revisions"
# Older revisions still restore (from the repository, not from Ceph).
[ "$("$BACKY" -b "$repo" restore -r 1 - | sha)" = "$want1" ] || fail "revision 1 differs after snapshot removal"
echo PASS
