#!/bin/bash
# A repository is readable by its owner only (issue 9 item 2): made by root
# under a permissive umask, no file or directory in it (config, chunks,
# indexes, .rev, locks, quarantine, the log) grants anything to group or
# others, and another local user can neither read it nor restore from it.
. "$(dirname "$0")/lib.sh"
requires openssl
needs_intruder

chmod 755 "$T"  # the intruder may walk to the repository, not into it
umask 022
img=$T/vm.img
rand_bytes p 9 > "$img"
chmod 600 "$img"
repo=$T/repo
"$BACKY" -l "$T/backy-init.log" -b "$repo" init file "$img" >/dev/null
"$BACKY" -l "$repo/backy.log" -b "$repo" backup daily >/dev/null
"$BACKY" -l "$repo/backy.log" -b "$repo" backup daily >/dev/null
"$BACKY" -b "$repo" verify --all >/dev/null
# A damaged chunk, so the quarantine exists too.
chunk=$(find "$repo/chunks" -name '*.chunk' | sort | head -1)
b=$(od -An -tu1 -j 30 -N 1 "$chunk" | tr -d ' ')
printf "\\x$(printf %02x $((b ^ 1)))" | dd of="$chunk" bs=1 seek=30 conv=notrunc status=none
"$BACKY" -b "$repo" verify --all >/dev/null 2>&1 || true
[ -n "$(ls -A "$repo/quarantine")" ] || fail "no quarantined chunk to check"
"$BACKY" -b "$repo" backup daily >/dev/null  # writes the chunk again

open=$(find "$repo" "$T/backy-init.log" -perm /077)
[ -z "$open" ] || fail "readable by others: $(ls -ld $open)"
for f in config lock purge.lock backy.log revisions chunks tmp quarantine; do
  [ -e "$repo/$f" ] || fail "expected $repo/$f to exist"
done

id=$("$BACKY" -b "$repo" find)
for f in "$repo/config" "$repo/revisions/$id.rev" "$repo/revisions/$id.index" "$chunk" "$repo/backy.log"; do
  as_intruder cat "$f" >/dev/null 2>&1 && fail "backy-intruder can read $f"
done
as_intruder ls "$repo/chunks" >/dev/null 2>&1 && fail "backy-intruder can list the chunks"
expect_fail "Permission denied" as_intruder "$BACKY" -b "$repo" restore -
[ "$("$BACKY" -b "$repo" restore - | sha)" = "$(sha < "$img")" ] || fail "the owner's restore differs"

# An existing directory given to init becomes private too.
mkdir -m 755 "$T/pre"
"$BACKY" -b "$T/pre" init file "$img" >/dev/null
[ "$(stat -c %a "$T/pre")" = 700 ] || fail "init left $T/pre mode $(stat -c %a "$T/pre")"
echo PASS
