#!/bin/bash
# Corrupt a chunk → verify reports it and the revision stays distrusted →
# the next backup is full and rewrites the chunk → verify passes.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes vd 16 > "$img"
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
id=$("$BACKY" -b "$T/repo" find)
"$BACKY" -b "$T/repo" verify | grep -q "no distrusted revisions" || fail "verify without distrusted"
"$BACKY" -b "$T/repo" verify --all | grep -q "revision $id: verified" || fail "verify --all"
"$BACKY" -b "$T/repo" status | grep "$id" | grep -q verified || fail "trust not verified"

chunk=$(find "$T/repo/chunks" -name '*.chunk' | sort | head -1)
digest=$(basename "$chunk" .chunk)
printf '\x77' | dd of="$chunk" bs=1 seek=70000 conv=notrunc status=none

# distrust, then a backup: full, and the damaged chunk is written again
# although a file with its name exists.
"$BACKY" -b "$T/repo" distrust -r "$id" | grep -q "distrusted $id" || fail "distrust"
"$BACKY" -b "$T/repo" backup daily 2>"$T/log"
grep -q "distrusted; reading everything" "$T/log" || fail "no full-backup warning: $(cat "$T/log")"
new=$("$BACKY" -b "$T/repo" find)
[ "$(rev_field "$T/repo" "$new" chunks_new)" = 4 ] || fail "full backup did not rewrite all chunks"
[ "$("$BACKY" -b "$T/repo" restore -r "$new" - | sha)" = "$(sha < "$img")" ] || fail "new revision differs"
# The rewrite repaired the shared chunk, so the old revision verifies too.
"$BACKY" -b "$T/repo" verify | grep -q "revision $id: verified" || fail "old revision not repaired"

# Corrupt again and verify: reported by digest, quarantined, stays distrusted.
printf '\x77' | dd of="$chunk" bs=1 seek=70000 conv=notrunc status=none
"$BACKY" -b "$T/repo" distrust >/dev/null
rc=0
"$BACKY" -b "$T/repo" verify > "$T/out" 2>&1 || rc=$?
cat "$T/out"
[ $rc = 1 ] || fail "verify exited $rc"
grep -q "$digest" "$T/out" || fail "bad chunk not named"
[ -e "$T/repo/quarantine/$digest.chunk" ] || fail "bad chunk not quarantined"
"$BACKY" -b "$T/repo" status | grep "$new" | grep -q distrusted || fail "not distrusted"
expect_fail "chunk $digest is missing" "$BACKY" -b "$T/repo" restore -
# Next backup rewrites it; verify passes.
"$BACKY" -b "$T/repo" backup daily 2>/dev/null
"$BACKY" -b "$T/repo" verify | grep -c verified | grep -q 2 || fail "verify after repair"
[ "$("$BACKY" -b "$T/repo" restore -r "$id" - | sha)" = "$(sha < "$img")" ] || fail "old revision not restorable"

# --from/--until select by date.
expect_fail "distrust: no revision matches" "$BACKY" -b "$T/repo" distrust --from 2000-01-01 --until 2000-12-31
"$BACKY" -b "$T/repo" distrust --from "$(date -u +%Y-%m-%d)" | grep -c distrusted | grep -q 3 || fail "--from today"
echo PASS
