#!/bin/bash
# backy copy between two directory repositories: several revisions of a
# changing image restore byte-identical from the target, with their tags
# and trust; a second copy sends nothing; a copy killed with -9 leaves
# only complete revisions and a rerun completes without sending again; a
# corrupt source chunk fails its revision only; --help says what it does.
. "$(dirname "$0")/lib.sh"
requires openssl

src=$T/src
dst=$T/dst
img=$T/vm.img
declare -A expect # revision id -> sha256 of the image it holds

backup() { # backup TAGS: a backup of $img into $src, recorded in expect
  "$BACKY" -b "$src" backup "$1" 2>/dev/null
  expect[$("$BACKY" -b "$src" find)]=$(sha < "$img")
}
change() { # change SEED MIB_OFFSET MIB: overwrite part of the image
  rand_bytes "$1" "$3" | dd of="$img" bs=1M seek="$2" conv=notrunc status=none
}
# sent OUTPUT: the chunks-sent figure of a copy's summary line.
sent() { sed -n 's/.*; \([0-9]*\) chunks\{0,1\} sent .*/\1/p' <<<"$1"; }
there() { sed -n 's/.*), \([0-9]*\) already there.*/\1/p' <<<"$1"; }
chunk_files() { find "$1/chunks" -name '*.chunk' | wc -l; }
# check_target: every revision of the target is one of the source's and
# restores byte-identical; prints how many there are.
check_target() {
  local id n=0
  for id in $(rev_ids "$dst"); do
    [ -n "${expect[$id]:-}" ] || fail "target has unknown revision $id"
    [ "$("$BACKY" -b "$dst" restore -r "$id" - 2>/dev/null | sha)" = "${expect[$id]}" ] ||
      fail "revision $id does not restore byte-identical from the target"
    n=$((n + 1))
  done
  echo $n
}

log "--help"
help=$("$BACKY" copy --help)
for want in --to -r --all "every revision" "lacks"; do
  grep -q -- "$want" <<<"$help" || fail "copy --help lacks '$want': $help"
done
"$BACKY" --help | grep -q "copy" || fail "backy --help does not list copy"
expect_fail "--to is required" "$BACKY" -b "$T" copy
rc=0; "$BACKY" -b "$T" copy 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "copy without --to exited $rc, expected 2"

log "three revisions of a changing image, with tags and trust"
rand_bytes copy0 40 > "$img"
dd if=/dev/zero of="$img" bs=1M seek=20 count=8 conv=notrunc status=none
"$BACKY" -b "$src" init file "$img" >/dev/null
backup daily
change copy1 4 4
backup daily,weekly
change copy2 32 8
backup manual:before-upgrade
"$BACKY" -b "$src" verify -r weekly >/dev/null
"$BACKY" -b "$src" distrust -r manual:before-upgrade >/dev/null

out=$("$BACKY" -b "$src" copy --to "$dst")
log "$out"
grep -q "3 revisions copied, 0 skipped" <<<"$out" || fail "first copy: $out"
[ "$(sent "$out")" = "$(chunk_files "$src")" ] ||
  fail "first copy sent $(sent "$out") chunks, the source has $(chunk_files "$src")"
[ "$(chunk_files "$dst")" = "$(chunk_files "$src")" ] || fail "chunk counts differ"
[ "$(check_target)" = 3 ] || fail "target lacks revisions"
diff <("$BACKY" -b "$src" status --yaml) <("$BACKY" -b "$dst" status --yaml) ||
  fail "status --yaml of source and target differ"
diff <("$BACKY" -b "$src" status) <("$BACKY" -b "$dst" status) ||
  fail "status of source and target differ"
for spec in daily weekly manual:before-upgrade 0 1 2; do
  [ "$("$BACKY" -b "$src" find -r "$spec")" = "$("$BACKY" -b "$dst" find -r "$spec")" ] ||
    fail "find -r $spec differs"
done
[ "$(rev_field "$dst" weekly trust)" = verified ] || fail "trust verified lost"
[ "$(rev_field "$dst" manual:before-upgrade trust)" = distrusted ] ||
  fail "trust distrusted lost"
"$BACKY" -b "$dst" verify --all >/dev/null || fail "verify --all of the target"
grep -q "copied to $dst: 3 revisions copied" "$src/backy.log" || fail "no line in the source's log"
grep -q "copied from $src: 3 revisions copied" "$dst/backy.log" || fail "no line in the target's log"

log "a second copy sends nothing"
out=$("$BACKY" -b "$src" copy --to "$dst" --all)
grep -q "0 revisions copied, 3 skipped; 0 chunks sent" <<<"$out" || fail "second copy: $out"

log "-r copies only what it names"
change copy3 8 4
backup daily
only=$("$BACKY" -b "$src" find)
change copy4 12 4
backup daily
out=$("$BACKY" -b "$src" copy --to "$T/only" -r "$only" -r 1 -r daily)
grep -q "2 revisions copied" <<<"$out" || fail "-r: $out"
[ "$(rev_ids "$T/only" | tr '\n' ' ')" = "$only $("$BACKY" -b "$src" find) " ] ||
  fail "-r copied $(rev_ids "$T/only")"
expect_fail "excludes|exclude" "$BACKY" -b "$src" copy --to "$T/only" -r 0 --all

log "kill -9 in the middle of a copy, then a rerun"
# A directory repository commits chunks in groups of ~64 MiB: a revision
# of 160 MiB of new data is killed after its first group, slowed by a
# second's sleep after each chunk (four copiers: ~4 chunks a second).
rand_bytes big 160 > "$T/big.img"
"$BACKY" -b "$T/big" init file "$T/big.img" >/dev/null
"$BACKY" -b "$T/big" backup daily 2>/dev/null
total=$(chunk_files "$T/big")
# slow_copy: starts the slowed copy, sets $pid, returns once it has put 8
# more chunks into the target (committed: visible).
slow_copy() {
  local before=0
  [ -d "$T/bigdst/chunks" ] && before=$(chunk_files "$T/bigdst")
  BACKY_TEST_HOOK="copy-chunk:sleep=1" "$BACKY" -b "$T/big" copy --to "$T/bigdst" >"$T/slow.out" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    [ -d "$T/bigdst/chunks" ] && [ "$(chunk_files "$T/bigdst")" -ge $((before + 8)) ] && return
    sleep 0.1
  done
  fail "the slowed copy sent nothing: $(cat "$T/slow.out")"
}
# SIGINT first: it stops between chunks, exits 130 and publishes nothing.
slow_copy
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc = 130 ] || fail "interrupted copy exited $rc: $(cat "$T/slow.out")"
grep -q "copy interrupted" "$T/slow.out" || fail "no interrupted message: $(cat "$T/slow.out")"
[ -z "$(rev_ids "$T/bigdst")" ] || fail "an interrupted copy published a revision"
log "interrupted: $(grep 'chunks sent' "$T/slow.out")"
slow_copy
kill -9 $pid
wait $pid 2>/dev/null || true
left=$(chunk_files "$T/bigdst")
[ "$left" -gt 0 ] && [ "$left" -lt "$total" ] || fail "the killed copy left $left of $total chunks"
[ -z "$(rev_ids "$T/bigdst")" ] || fail "a revision was published before all its chunks were there"
log "killed with $left of $total chunks in the target"
out=$("$BACKY" -b "$T/big" copy --to "$T/bigdst")
log "$out"
grep -q "1 revision copied" <<<"$out" || fail "rerun: $out"
[ "$(sent "$out")" = "$((total - left))" ] || fail "rerun sent $(sent "$out"), expected $((total - left))"
[ "$(there "$out")" = "$left" ] || fail "rerun did not find the $left chunks sent: $out"
[ "$("$BACKY" -b "$T/bigdst" restore - | sha)" = "$(sha <"$T/big.img")" ] ||
  fail "the resumed copy does not restore byte-identical"
"$BACKY" -b "$T/bigdst" verify --all >/dev/null || fail "verify --all after the rerun"

log "a corrupt source chunk fails its revision only"
ls "$src/chunks"/*/ >"$T/chunks.before"
change copy6 16 4
backup daily
bad_id=$("$BACKY" -b "$src" find)
bad=$(find "$src/chunks" -name '*.chunk' | while read -r c; do
  grep -q "$(basename "$c")" "$T/chunks.before" || echo "$c"
done | head -1)
[ -n "$bad" ] || fail "no new chunk"
digest=$(basename "$bad" .chunk)
change copy7 16 4 # the next revision does not hold it
backup daily
good_id=$("$BACKY" -b "$src" find)
printf '\x77' | dd of="$bad" bs=1 seek=70000 conv=notrunc status=none
rc=0
"$BACKY" -b "$src" copy --to "$dst" >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "copy with a corrupt chunk exited $rc: $(cat "$T/err")"
log "$(cat "$T/out" "$T/err")"
grep -q "$digest" "$T/err" || fail "error does not name the chunk: $(cat "$T/err")"
grep -q "$bad_id" "$T/err" || fail "error does not name the revision: $(cat "$T/err")"
grep -Eq "copied, [0-9]+ skipped, 1 failed" "$T/out" || fail "summary: $(cat "$T/out")"
rev_ids "$dst" | grep -q "$bad_id" && fail "revision with a corrupt chunk was copied"
rev_ids "$dst" | grep -q "$good_id" || fail "the next revision was not copied"
[ ! -e "$dst/chunks/${digest:0:2}/$digest.chunk" ] || fail "the corrupt chunk was copied"
unset "expect[$bad_id]"
[ "$(check_target)" = "${#expect[@]}" ] || fail "target incomplete"

log "a damaged source revision is named, the others copied"
cp -a "$src" "$T/damaged"
printf 'id: [\n' >"$T/damaged/revisions/AAAAAAAAAAAAAAAAAAAAAA.rev"
rc=0
"$BACKY" -b "$T/damaged" copy --to "$T/damaged-copy" >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "copy with a damaged revision exited $rc: $(cat "$T/err")"
grep -q "revision AAAAAAAAAAAAAAAAAAAAAA is damaged" "$T/err" || fail "damaged revision not named: $(cat "$T/err")"
grep -q "2 revisions not copied: .*$bad_id" "$T/err" || fail "corrupt revision not named too: $(cat "$T/err")"
# All but the one with the corrupt chunk.
[ "$(rev_ids "$T/damaged-copy" | wc -l)" = "$(($(rev_ids "$src" | wc -l) - 1))" ] ||
  fail "the healthy revisions were not all copied"

log "a conflicting revision in the target is refused"
rand_bytes other 8 > "$T/other.img"
"$BACKY" -b "$T/other" init file "$T/other.img" >/dev/null
"$BACKY" -b "$T/other" backup daily 2>/dev/null
other_id=$("$BACKY" -b "$T/other" find)
# The same id with other content: a copy of the other revision's files
# under the first revision's id (what a mix-up of repositories leaves).
first=$(rev_ids "$src" | head -1)
"$BACKY" -b "$T/other" copy --to "$T/conflict" >/dev/null
sed "s/$other_id/$first/" "$T/conflict/revisions/$other_id.rev" >"$T/conflict/revisions/$first.rev"
mv "$T/conflict/revisions/$other_id.index" "$T/conflict/revisions/$first.index"
rm "$T/conflict/revisions/$other_id.rev"
expect_fail "revision $first: the target holds another revision of this id" \
  "$BACKY" -b "$src" copy --to "$T/conflict" -r "$first"
[ "$("$BACKY" -b "$T/conflict" restore -r "$first" - | sha)" = "$(sha <"$T/other.img")" ] ||
  fail "the conflicting revision was overwritten"
echo PASS
