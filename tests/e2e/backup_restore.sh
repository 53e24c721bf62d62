#!/bin/bash
# init → backup → change 1% of a 256 MiB image → backup → restore each
# revision (to stdout and to a file): sha256 equals the image at that time;
# the second revision wrote only the changed chunks.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes seed1 128 > "$img"
truncate -s 256M "$img"                     # second half: a sparse hole
rand_bytes text 12 | base64 > "$T/text"     # 16 MiB of compressible text
dd if="$T/text" of="$img" bs=1M seek=160 conv=notrunc status=none
sum0=$(sha < "$img")

"$BACKY" -b "$T/repo" init file "$img"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f %M -o "$T/rss" "$BACKY" -b "$T/repo" backup daily
  rss=$(tail -1 "$T/rss")
  log "peak RSS of the first backup: $rss KiB"
  [ "$rss" -lt $(( 256 * 1024 )) ] || fail "backup used $rss KiB (limit 256 MiB)"
else
  "$BACKY" -b "$T/repo" backup daily
fi
# Change 1%: 2 MiB at 3 places (touches 3 chunks), through the same file.
for off in 10 70 170; do
  rand_bytes "change$off" 1 | dd of="$img" bs=1M seek=$off conv=notrunc status=none
done
rand_bytes change-late 1 | dd of="$img" bs=512K seek=$((200 * 2)) conv=notrunc status=none
sum1=$(sha < "$img")
[ "$sum0" != "$sum1" ] || fail "image did not change"
"$BACKY" -b "$T/repo" backup hourly,manual:test

"$BACKY" -b "$T/repo" status
n=$(rev_ids "$T/repo" | wc -l)
[ "$n" = 2 ] || fail "expected 2 revisions, got $n"
# status --yaml is ONE YAML document, a list oldest first with backy 2.x's
# keys (what 2.x callbacks read); an empty repository prints [].
if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  "$BACKY" -b "$T/repo" status --yaml | /usr/bin/python3 -c '
import datetime, sys, yaml
revs = yaml.safe_load(sys.stdin)
assert isinstance(revs, list) and len(revs) == 2, revs
assert revs[0]["timestamp"] < revs[1]["timestamp"], "not oldest first"
assert revs[1]["parent"] == revs[0]["uuid"], "parent is not the uuid"
for r in revs:
    assert r["uuid"] == r["id"] and isinstance(r["uuid"], str)
    assert isinstance(r["timestamp"], datetime.datetime)
    assert isinstance(r["tags"], list) and isinstance(r["tags"][0], str)
    assert r["trust"] in ("trusted", "distrusted", "verified")
    assert isinstance(r["stats"]["bytes_written"], int)
    assert isinstance(r["stats"]["duration"], float)
assert sorted(revs[1]["tags"]) == ["hourly", "manual:test"], revs[1]["tags"]
' || fail "status --yaml is not the YAML list 2.x scripts read"
  "$BACKY" -b "$T/empty" init file "$img"
  [ "$("$BACKY" -b "$T/empty" status --yaml)" = "[]" ] || fail "empty repository: not []"
fi

[ "$("$BACKY" -b "$T/repo" restore -r 1 - | sha)" = "$sum0" ] || fail "revision 1 (stdout) differs"
[ "$("$BACKY" -b "$T/repo" restore -r 0 - | sha)" = "$sum1" ] || fail "revision 0 (stdout) differs"
[ "$("$BACKY" -b "$T/repo" restore -r daily - | sha)" = "$sum0" ] || fail "tag daily differs"
[ "$("$BACKY" -b "$T/repo" restore -r manual:test - | sha)" = "$sum1" ] || fail "tag manual:test differs"
"$BACKY" -b "$T/repo" restore -r 1 "$T/out1.img"
[ "$(sha < "$T/out1.img")" = "$sum0" ] || fail "revision 1 (file) differs"
# Restored files are sparse: the 96 MiB hole stays a hole.
used=$(du -k "$T/out1.img" | cut -f1)
[ "$used" -lt $(( 200 * 1024 )) ] || fail "restored file is not sparse ($used KiB)"

# A block device gets every byte (zeros too) and needs --force.
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  rand_bytes garbage 256 > "$T/dev.img"
  dev=$(losetup -f --show "$T/dev.img")
  CLEANUPS+=("losetup -d $dev")
  expect_fail "target is a block device; use --force" "$BACKY" -b "$T/repo" restore -r 1 "$dev"
  "$BACKY" -b "$T/repo" restore -r 1 --force "$dev"
  [ "$(head -c 256M "$dev" | sha)" = "$sum0" ] || fail "restore to block device differs"
fi

# The second backup wrote only the 4 changed chunks.
new=$(rev_field "$T/repo" 0 chunks_new)
[ "$new" = 4 ] || fail "second backup wrote $new chunks, expected 4"
written=$(rev_field "$T/repo" 0 bytes_written)
[ "$written" -le $(( 4 * 4 * 1024 * 1024 + 4096 )) ] || fail "second backup wrote $written bytes"
# The first backup never read the hole.
read0=$(rev_field "$T/repo" 1 bytes_read)
[ "$read0" -le $(( 160 * 1024 * 1024 )) ] || fail "first backup read $read0 bytes (hole read?)"
# Every chunk the backups wrote was read back.
"$BACKY" -b "$T/repo" status --yaml | grep -q 'method: readback' || fail "no readback verification"
echo PASS
