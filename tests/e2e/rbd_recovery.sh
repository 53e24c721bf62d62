#!/bin/bash
# RBD backups when things are not as backy left them: the parent's
# snapshot deleted by hand (full backup with a warning), the image grown
# and shrunk between backups, another client writing (and holding the
# exclusive lock) during the backup, and a chunk damaged between storing
# and verification (the backup fails, its revision is distrusted, the
# next backup reads everything). Every revision must equal its snapshot.
. "$(dirname "$0")/rbd_lib.sh"
start_cluster

img=rbd/vm
repo=$T/repo
rbd create --size 48M "$img"
rbd_io write "$img" 0 $((3 * OBJ)) base
rbd_io write "$img" $((8 * OBJ)) 65536 tail
"$BACKY" -b "$repo" init ceph-rbd "$img"
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0

log "parent snapshot deleted by hand"
id=$("$BACKY" -b "$repo" find -r 0)
rbd snap rm --no-progress "$img@backy-$id"
rbd_io write "$img" $((OBJ + 100)) 5000 after-rm
"$BACKY" -b "$repo" backup daily 2>"$T/err"
cat "$T/err" >&2
grep -q "snapshot of parent revision $id is gone.*full backup" "$T/err" ||
  fail "no warning about the missing parent snapshot"
[ "$(rev_field "$repo" 0 chunks_carried)" = 0 ] || fail "backup after snapshot removal was not full"
check_revision "$repo" "$img" 0

log "image grown, then shrunk to a size that is not a multiple of 4 MiB"
rbd resize --no-progress --size 70M "$img"   # 17.5 objects
rbd_io write "$img" $((69 * M)) $((M - 1000)) grown
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0
[ "$(rev_field "$repo" 0 chunks_carried)" -gt 0 ] || fail "backup after growing was not incremental"
[ "$(rev_field "$repo" 0 bytes_read)" -le $((2 * OBJ)) ] || fail "backup after growing read too much"
rbd resize --no-progress --allow-shrink --size 30M "$img"   # 7.5 objects
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0
[ "$("$BACKY" -b "$repo" restore - | wc -c)" = $((30 * M)) ] || fail "shrunk revision has the wrong size"
rbd resize --no-progress --size 40M "$img"   # grow again: 30-40 MiB reads as zeros
"$BACKY" -b "$repo" backup daily
check_revision "$repo" "$img" 0

log "another client writes during the backup"
rbd bench --io-type write --io-pattern rand --io-size 64K --io-threads 2 \
  --io-total 100G "$img" >/dev/null 2>&1 &
bench=$!
CLEANUPS+=("kill $bench 2>/dev/null; wait $bench 2>/dev/null")
sleep 1
kill -0 $bench || fail "rbd bench did not start"
"$BACKY" -b "$repo" backup daily
"$BACKY" -b "$repo" backup daily
kill -0 $bench || fail "rbd bench stopped during the backup"
kill $bench; wait $bench 2>/dev/null || true
check_revision "$repo" "$img" 0

log "a chunk damaged before verification"
parent=$("$BACKY" -b "$repo" find -r 0)
rbd_io write "$img" $((5 * OBJ)) "$OBJ" to-damage
touch "$T/marker"
sleep 1.1  # chunk mtimes must be newer than the marker
BACKY_TEST_HOOK="synced:sleep=3" "$BACKY" -b "$repo" backup daily 2>"$T/err" &
pid=$!
for _ in $(seq 50); do
  chunk=$(find "$repo/chunks" -name '*.chunk' -newer "$T/marker" | head -1)
  [ -n "$chunk" ] && break
  sleep 0.1
done
[ -n "$chunk" ] || fail "the backup wrote no chunk"
sleep 0.5  # the hook sleeps 3 s after the chunks are synced
printf '\x5a' | dd of="$chunk" bs=1 seek=5000 conv=notrunc status=none
rc=0; wait $pid || rc=$?
cat "$T/err" >&2
[ $rc -ne 0 ] || fail "backup with a damaged chunk succeeded"
grep -q "verification failed.*$(basename "$chunk" .chunk)" "$T/err" || fail "error does not name the chunk"
grep -q "published as distrusted" "$T/err" || fail "error does not say the revision is distrusted"
bad=$("$BACKY" -b "$repo" find -r 0)
[ "$bad" != "$parent" ] || fail "no revision published for the failed backup"
"$BACKY" -b "$repo" status | grep "$bad" | grep -q distrusted || fail "revision $bad is not distrusted"
[ -e "$repo/quarantine/$(basename "$chunk")" ] || fail "damaged chunk not quarantined"
rbd snap ls "$img" | grep -q "backy-$bad" && fail "snapshot of the failed backup left behind"
rbd snap ls "$img" | grep -q "backy-$parent" || fail "parent snapshot removed by a failed backup"
"$BACKY" -b "$repo" backup daily 2>"$T/err"
cat "$T/err" >&2
grep -q "distrusted; reading everything" "$T/err" || fail "no notice of the full backup"
[ "$(rev_field "$repo" 0 chunks_carried)" = 0 ] || fail "backup after a failed verification was not full"
check_revision "$repo" "$img" 0
[ "$(backy_snaps "$img" | wc -l)" = 1 ] || fail "old snapshots left: $(backy_snaps "$img" | tr '\n' ' ')"
echo PASS
