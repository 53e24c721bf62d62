#!/bin/bash
# verify --all reads a chunk that several revisions share once per run,
# and a damaged shared chunk still distrusts every revision holding it.
. "$(dirname "$0")/lib.sh"
requires openssl

# Five revisions of a 6-slot image: slots 0-4 the same in all (5 chunks,
# written by the first backup), slot 5 a hole at first, then new data in
# each later revision (4 chunks): 9 distinct chunks in all.
img=$T/vm.img
rand_bytes shared 20 > "$img"
truncate -s 24M "$img"
"$BACKY" -b "$T/repo" init file "$img" >/dev/null
"$BACKY" -b "$T/repo" backup daily >/dev/null
find "$T/repo/chunks" -name '*.chunk' | sort > "$T/shared"
[ "$(wc -l < "$T/shared")" = 5 ] || fail "first backup: $(wc -l < "$T/shared") chunks, want 5"
for i in 2 3 4 5; do
  rand_bytes "tail$i" 4 | dd of="$img" bs=1M seek=20 conv=notrunc status=none
  "$BACKY" -b "$T/repo" backup daily >/dev/null
done
[ "$(rev_ids "$T/repo" | wc -l)" = 5 ] || fail "want 5 revisions"

"$BACKY" -b "$T/repo" verify --all > "$T/out" || fail "verify --all: $(cat "$T/out")"
[ "$(grep -c ': verified$' "$T/out")" = 5 ] || fail "not all verified: $(cat "$T/out")"
grep -qx "9 distinct chunks checked for 5 revision(s)" "$T/out" ||
  fail "each chunk not checked once: $(cat "$T/out")"

# One byte flipped in a chunk all five revisions hold.
chunk=$(sed -n 3p "$T/shared")
digest=$(basename "$chunk" .chunk)
printf '\x5a' | dd of="$chunk" bs=1 seek=100000 conv=notrunc status=none
rc=0
"$BACKY" -b "$T/repo" verify --all > "$T/out" 2>"$T/err" || rc=$?
[ $rc -ne 0 ] || fail "verify passed with a damaged chunk"
grep -q "5 revision(s) have damaged chunks" "$T/err" || fail "exit message: $(cat "$T/err")"
[ "$(grep -c ': distrusted, 1 bad chunks$' "$T/out")" = 5 ] ||
  fail "not every revision holding the chunk is distrusted: $(cat "$T/out")"
[ "$(grep -c "$digest" "$T/out")" = 5 ] || fail "the chunk is not named once per revision: $(cat "$T/out")"
grep -qx "9 distinct chunks checked for 5 revision(s)" "$T/out" ||
  fail "each chunk not checked once: $(cat "$T/out")"
for id in $(rev_ids "$T/repo"); do
  [ "$(rev_field "$T/repo" "$id" trust)" = distrusted ] || fail "revision $id not distrusted"
done
