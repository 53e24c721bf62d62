#!/bin/bash
# expire applies the schedule in the repository config; purge deletes the
# chunks no revision references; every remaining revision restores
# bit-exact; purge running during backups never deletes a chunk a new
# revision needs.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes ep0 32 > "$img"
"$BACKY" -b "$T/repo" init file "$img"
cat >> "$T/repo/config" <<'YAML'
schedule:
  daily: {interval: 1d, keep: 2}
  weekly: {interval: 1w, keep: 1}
min-keep: 1
YAML
declare -A sums
for i in 1 2 3 4; do
  rand_bytes "ep$i" 4 | dd of="$img" bs=1M seek=4 conv=notrunc status=none  # slot 1: unique per revision
  tags=daily; [ $i = 1 ] && tags=daily,weekly; [ $i = 2 ] && tags=daily,manual:keep
  "$BACKY" -b "$T/repo" backup "$tags" 2>/dev/null
  sums[$("$BACKY" -b "$T/repo" find)]=$(sha < "$img")
done
"$BACKY" -b "$T/repo" status

# Dry run changes nothing.
before=$("$BACKY" -b "$T/repo" status --yaml)
"$BACKY" -b "$T/repo" expire --dry-run | tee "$T/plan"
grep -q "would untag" "$T/plan" || fail "dry run shows no plan"
[ "$("$BACKY" -b "$T/repo" status --yaml)" = "$before" ] || fail "dry run changed something"

# r1 (daily,weekly): loses daily, keeps weekly. r2 (daily,manual:keep): loses
# daily, keeps manual. r3, r4: newest 2 daily. Nothing removed.
"$BACKY" -b "$T/repo" expire
[ "$(rev_ids "$T/repo" | wc -l)" = 4 ] || fail "expected 4 revisions"
[ "$("$BACKY" -b "$T/repo" find -r weekly)" = "$("$BACKY" -b "$T/repo" find -r 3)" ] || fail "weekly moved"

# One more daily: r3 loses daily and has no tags left → removed.
rand_bytes ep5 4 | dd of="$img" bs=1M seek=4 conv=notrunc status=none
"$BACKY" -b "$T/repo" backup daily 2>/dev/null
sums[$("$BACKY" -b "$T/repo" find)]=$(sha < "$img")
gone=$("$BACKY" -b "$T/repo" find -r 2)
"$BACKY" -b "$T/repo" expire | grep -q "remove revision $gone" || fail "expire did not remove $gone"

chunks_before=$(find "$T/repo/chunks" -name '*.chunk' | wc -l)
"$BACKY" -b "$T/repo" purge --dry-run | grep -q "would free 1 of $chunks_before chunks" || fail "purge dry run"
[ "$(find "$T/repo/chunks" -name '*.chunk' | wc -l)" = "$chunks_before" ] || fail "dry run deleted"
"$BACKY" -b "$T/repo" purge | tee "$T/purge"
grep -q "freed 1 of $chunks_before chunks, 4.0 MiB" "$T/purge" || fail "purge freed the wrong amount"
"$BACKY" -b "$T/repo" purge | grep -q "freed 0 of" || fail "second purge freed something"
for id in $(rev_ids "$T/repo"); do
  [ "$("$BACKY" -b "$T/repo" restore -r "$id" - | sha)" = "${sums[$id]}" ] || fail "$id differs after purge"
done

# A running nbd-server no longer blocks purge (readers pin only the
# revisions they serve: purge_while_serving.sh); a writer still does.
if command -v nbdinfo >/dev/null; then
  "$BACKY" -b "$T/repo" nbd-server --socket "$T/s" 2>/dev/null &
  srv=$!
  for _ in $(seq 50); do [ -S "$T/s" ] && break; sleep 0.1; done
  "$BACKY" -b "$T/repo" purge | grep -q "pins: 0 live" || fail "purge while an idle nbd-server runs"
  kill $srv; wait $srv || true
fi
flock -s "$T/repo/purge.lock" sleep 3 &
holder=$!
sleep 0.3
expect_fail "purge: repository is in use" "$BACKY" -b "$T/repo" purge
wait $holder

# Purge racing backups: new chunks are never deleted from under a backup.
for round in $(seq 1 8); do
  rand_bytes "race$round" 8 | dd of="$img" bs=1M seek=$((round % 3 * 8)) conv=notrunc status=none
  "$BACKY" -b "$T/repo" backup daily 2>/dev/null &
  b=$!
  for _ in 1 2 3 4 5; do "$BACKY" -b "$T/repo" purge >/dev/null 2>&1 || true; done
  wait $b || fail "backup failed while purging (round $round)"
  [ "$("$BACKY" -b "$T/repo" restore - | sha)" = "$(sha < "$img")" ] || fail "round $round: restore differs"
  "$BACKY" -b "$T/repo" expire >/dev/null
done
"$BACKY" -b "$T/repo" purge
for id in $(rev_ids "$T/repo"); do
  "$BACKY" -b "$T/repo" restore -r "$id" - > /dev/null || fail "revision $id broken after purges"
done
echo PASS
