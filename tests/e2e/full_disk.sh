#!/bin/bash
# A full file system fails the backup with a clear "No space left" error;
# earlier revisions stay intact and restorable, nothing half-written is
# visible, and a backup succeeds once there is space again.
. "$(dirname "$0")/lib.sh"
requires openssl
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a tmpfs" >&2; exit 77; }

mkdir "$T/small"
mount -t tmpfs -o size=24m tmpfs "$T/small" || { echo "SKIP: cannot mount tmpfs" >&2; exit 77; }
CLEANUPS+=("umount '$T/small'")

img=$T/vm.img
rand_bytes full1 12 > "$img"
"$BACKY" -b "$T/small/repo" init file "$img"
"$BACKY" -b "$T/small/repo" backup daily
good=$(sha < "$img")

# 20 MiB of new random data do not fit in the ~12 MiB left.
rand_bytes full2 20 >> "$img"
expect_fail "backup: .*No space left on device" "$BACKY" -b "$T/small/repo" backup daily
n=$(rev_ids "$T/small/repo" | wc -l)
[ "$n" = 1 ] || fail "expected 1 revision after the failed backup, got $n"
[ "$("$BACKY" -b "$T/small/repo" restore - | sha)" = "$good" ] || fail "earlier revision damaged"
[ -z "$(ls -A "$T/small/repo/tmp")" ] || fail "temp files left behind"
# The failed backup removed the chunks it had written: space is free again.
nchunks=$(find "$T/small/repo/chunks" -name '*.chunk' | wc -l)
[ "$nchunks" = 3 ] || fail "failed backup left $nchunks chunks, expected the 3 of revision 1"

# Publishing itself failing (space for chunks but not the index) is the same.
truncate -s 12M "$img"
rand_bytes full3 4 | dd of="$img" bs=1M seek=0 conv=notrunc status=none
free_kb=$(df -k --output=avail "$T/small" | tail -1)
fallocate -l $(( (free_kb - 4200) * 1024 )) "$T/small/filler" 2>/dev/null ||
  head -c $(( (free_kb - 4200) * 1024 )) /dev/zero > "$T/small/filler" || true
rc=0
"$BACKY" -b "$T/small/repo" backup daily 2>"$T/err" || rc=$?
if [ $rc -ne 0 ]; then
  grep -q "No space left" "$T/err" || fail "unexpected error: $(cat "$T/err")"
  n=$(rev_ids "$T/small/repo" | wc -l)
  [ "$n" = 1 ] || fail "half revision visible"
fi
rm -f "$T/small/filler"

# With space again, the next backup works.
"$BACKY" -b "$T/small/repo" backup daily
[ "$("$BACKY" -b "$T/small/repo" restore - | sha)" = "$(sha < "$img")" ] || fail "new revision differs"
[ "$("$BACKY" -b "$T/small/repo" restore -r daily - | sha)" = "$(sha < "$img")" ] || fail "tag lookup"
echo PASS
