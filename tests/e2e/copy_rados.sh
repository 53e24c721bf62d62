#!/bin/bash
# backy copy directory -> RADOS -> directory on a throwaway one-node
# cluster: every revision arrives identical (content and metadata), a
# second copy sends nothing, a copy killed with -9 is completed by a rerun,
# and a corrupt chunk object in a RADOS source is refused, not copied.
. "$(dirname "$0")/rados_lib.sh"
export BACKY_RADOS_LEASE_SECONDS=3
start_cluster
M=$((1024 * 1024))
src=$T/src
img=$T/vm.img
R=rados:$POOL/c1
sent() { sed -n 's/.*; \([0-9]*\) chunks\{0,1\} sent .*/\1/p' <<<"$1"; }
change() { rand_bytes "$1" "$3" | dd of="$img" bs=$M seek="$2" conv=notrunc status=none; }
declare -A expect
backup() {
  "$BACKY" -b "$src" backup "$@" 2>/dev/null
  expect[$("$BACKY" -b "$src" find)]=$(sha < "$img")
}
# same_revisions REPO: REPO holds exactly the source's revisions, each
# restoring byte-identical, with the same metadata in `status --yaml`.
same_revisions() {
  local id n=0
  for id in $(rev_ids "$1"); do
    [ -n "${expect[$id]:-}" ] || fail "$1 has unknown revision $id"
    [ "$("$BACKY" -b "$1" restore -r "$id" - 2>/dev/null | sha)" = "${expect[$id]}" ] ||
      fail "revision $id does not restore byte-identical from $1"
    n=$((n + 1))
  done
  [ $n = "${#expect[@]}" ] || fail "$1 has $n revisions, not ${#expect[@]}"
  diff <("$BACKY" -b "$src" status --yaml) <("$BACKY" -b "$1" status --yaml) >"$T/diff" ||
    fail "status of $1 differs from the source's: $(cat "$T/diff")"
}

log "directory -> RADOS -> directory"
{ rand_bytes base 16; head -c $((8 * M)) /dev/zero; } > "$img"
"$BACKY" -b "$src" init file "$img" >/dev/null
backup daily
change c2 4 4
backup daily,weekly
change c3 12 8
backup "manual:x"
"$BACKY" -b "$src" distrust -r 1 >/dev/null 2>&1 || fail "distrust"
out=$("$BACKY" -b "$src" copy --to "$R")
log "$out"
grep -q "3 revisions copied, 0 skipped" <<<"$out" || fail "copy to RADOS: $out"
[ "$(sent "$out")" = "$(chunk_oids c1 | wc -l)" ] || fail "sent $(sent "$out"), pool has $(chunk_oids c1 | wc -l)"
same_revisions "$R"
out=$("$BACKY" -b "$R" copy --to "$T/back")
grep -q "3 revisions copied, 0 skipped" <<<"$out" || fail "copy from RADOS: $out"
same_revisions "$T/back"
"$BACKY" -b "$T/back" verify --all >/dev/null || fail "verify --all of the copy back"

log "a second copy sends nothing"
out=$("$BACKY" -b "$src" copy --to "$R" --all)
grep -q "0 revisions copied, 3 skipped; 0 chunks sent" <<<"$out" || fail "second copy: $out"
out=$("$BACKY" -b "$R" copy --to "$T/back" --all)
grep -q "0 revisions copied, 3 skipped; 0 chunks sent" <<<"$out" || fail "second copy back: $out"

log "kill -9 in the middle of a copy to RADOS, then a rerun"
rand_bytes big 64 > "$T/big.img"
"$BACKY" -b "$T/big" init file "$T/big.img" >/dev/null
"$BACKY" -b "$T/big" backup daily 2>/dev/null
BACKY_TEST_HOOK="copy-chunk:sleep=1" "$BACKY" -b "$T/big" copy --to "rados:$POOL/big" >"$T/slow.out" 2>&1 &
pid=$!
for _ in $(seq 200); do
  [ "$(chunk_oids big | wc -l)" -ge 4 ] && break
  sleep 0.1
done
kill -9 $pid
wait $pid 2>/dev/null || true
left=$(chunk_oids big | wc -l)
[ "$left" -ge 4 ] && [ "$left" -lt 16 ] || fail "the killed copy left $left of 16 chunks: $(cat "$T/slow.out")"
[ -z "$(rev_ids "rados:$POOL/big")" ] || fail "a revision was published before all its chunks were there"
log "killed with $left of 16 chunks in the pool"
retry_busy 20 "$BACKY" -b "$T/big" copy --to "rados:$POOL/big"
[ "$(rev_ids "rados:$POOL/big" | wc -l)" = 1 ] || fail "the rerun did not copy the revision"
[ "$(chunk_oids big | wc -l)" = 16 ] || fail "the pool has $(chunk_oids big | wc -l) chunks, not 16"
[ "$("$BACKY" -b "rados:$POOL/big" restore - | sha)" = "$(sha < "$T/big.img")" ] ||
  fail "the resumed copy does not restore byte-identical"
"$BACKY" -b "rados:$POOL/big" verify --all >/dev/null || fail "verify --all after the rerun"

log "a corrupt chunk object in a RADOS source is refused, not copied"
chunk_oids c1 > "$T/before"
change c4 0 4
backup daily
bad_id=$("$BACKY" -b "$src" find)
"$BACKY" -b "$src" copy --to "$R" >/dev/null
oid=$(chunk_oids c1 | comm -13 "$T/before" - | head -1)
[ -n "$oid" ] || fail "no new chunk object"
digest=${oid##*/}
corrupt_object "$oid" 70000
rc=0
"$BACKY" -b "$R" copy --to "$T/third" >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "copy with a corrupt chunk exited $rc: $(cat "$T/err")"
log "$(cat "$T/out" "$T/err")"
grep -q "$digest" "$T/err" || fail "error does not name the chunk: $(cat "$T/err")"
rev_ids "$T/third" | grep -q "$bad_id" && fail "the revision with a corrupt chunk was copied"
[ "$(rev_ids "$T/third" | wc -l)" = 3 ] || fail "the other revisions were not copied"
[ ! -e "$T/third/chunks/${digest:0:2}/$digest.chunk" ] || fail "the corrupt chunk was copied"
echo PASS
