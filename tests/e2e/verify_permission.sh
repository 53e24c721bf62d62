#!/bin/bash
# verify run by a user who owns the repository but cannot read one chunk
# (or one index): an error (exit 1, naming the file), never damage — the
# revision keeps its trust and nothing is quarantined.
. "$(dirname "$0")/lib.sh"
requires openssl
needs_intruder

chmod 755 "$T"
rand_bytes perm 9 > "$T/vm.img"             # 3 slots
"$BACKY" -b "$T/repo" init file "$T/vm.img"
"$BACKY" -b "$T/repo" backup daily
chown -R backy-intruder "$T/repo"
as_intruder "$BACKY" -b "$T/repo" verify --all  # the user can verify it all
trust() { "$BACKY" -b "$T/repo" status --yaml | awk '$1 == "trust:" { print $2; exit }'; }
[ "$(trust)" = verified ] || fail "not verified: $("$BACKY" -b "$T/repo" status)"

log "an unreadable chunk"
chunk=$(find "$T/repo/chunks" -type f | head -1)
chmod 000 "$chunk"
expect_fail "verify: .*Permission denied.*$(basename "$chunk")" \
  as_intruder "$BACKY" -b "$T/repo" verify --all
[ "$(trust)" = verified ] || fail "a permission error distrusted the revision: $("$BACKY" -b "$T/repo" status)"
[ -f "$chunk" ] || fail "the unreadable chunk was moved"
[ -z "$(find "$T/repo/quarantine" -type f 2>/dev/null)" ] || fail "a chunk was quarantined"
chmod 600 "$chunk"

log "an unreadable index"
index=$(find "$T/repo/revisions" -name '*.index' | head -1)
chmod 000 "$index"
expect_fail "verify: .*Permission denied.*$(basename "$index")" \
  as_intruder "$BACKY" -b "$T/repo" verify --all
[ "$(trust)" = verified ] || fail "a permission error distrusted the revision: $("$BACKY" -b "$T/repo" status)"
chmod 600 "$index"

as_intruder "$BACKY" -b "$T/repo" verify --all
log "ok"
