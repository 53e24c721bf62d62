#!/bin/bash
# A flipped byte in a chunk makes restore fail with a Corruption error that
# names the chunk; a flipped byte in an index gives a clear error too.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes c1 20 > "$img"
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
id=$("$BACKY" -b "$T/repo" find)

# Pick one chunk file and flip a byte in its data.
chunk=$(find "$T/repo/chunks" -name '*.chunk' | sort | head -1)
digest=$(basename "$chunk" .chunk)
cp "$chunk" "$T/chunk.bak"
printf '\x5a' | dd of="$chunk" bs=1 seek=100000 conv=notrunc status=none
expect_fail "Corruption: .*$digest" "$BACKY" -b "$T/repo" restore - > /dev/null
expect_fail "Corruption: .*$digest" "$BACKY" -b "$T/repo" restore "$T/out.img"
[ ! -e "$T/out.img" ] || fail "a failed restore left a target file"
ls -A "$T" | grep -q backy-restore && fail "a failed restore left a temp file"

# Damage the header instead.
cp "$T/chunk.bak" "$chunk"
printf 'X' | dd of="$chunk" bs=1 seek=30 conv=notrunc status=none
expect_fail "Corruption: .*$digest" "$BACKY" -b "$T/repo" restore - > /dev/null

# Truncate it.
cp "$T/chunk.bak" "$chunk"
truncate -s 1000 "$chunk"
expect_fail "Corruption: .*$digest" "$BACKY" -b "$T/repo" restore - > /dev/null

# Remove it.
rm "$chunk"
expect_fail "chunk $digest is missing" "$BACKY" -b "$T/repo" restore - > /dev/null
cp "$T/chunk.bak" "$chunk"
[ "$("$BACKY" -b "$T/repo" restore - | sha)" = "$(sha < "$img")" ] || fail "restore after repair differs"

# Flip a byte in the index.
index=$T/repo/revisions/$id.index
printf '\x01' | dd of="$index" bs=1 seek=80 conv=notrunc status=none
expect_fail "Corruption: index checksum mismatch .*$id.index" "$BACKY" -b "$T/repo" restore - > /dev/null
truncate -s 10 "$index"
expect_fail "Corruption: .*$id.index" "$BACKY" -b "$T/repo" restore - > /dev/null

# Damaged revision metadata.
echo "id: [broken" > "$T/repo/revisions/$id.rev"
expect_fail "$id.rev" "$BACKY" -b "$T/repo" status
echo PASS
