#!/bin/bash
# File-level restore through the NBD server: an ext4 image with a known tree
# is backed up, changed, backed up again; revision 1 is served, attached
# with nbdfuse + losetup -r, mounted -o ro,noload and compared with diff -r.
# With --cow, an image whose journal needs replaying mounts with plain
# -o ro, and the repository stays unchanged.
. "$(dirname "$0")/lib.sh"
requires nbdfuse losetup mkfs.ext4 fusermount3
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for losetup/mount" >&2; exit 77; }
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }

mkdir -p "$T/tree/a/b" "$T/fuse" "$T/mnt"
for i in $(seq 1 50); do seq 1 $((i * 100)) > "$T/tree/a/file$i.txt"; done
head -c 5M /dev/urandom > "$T/tree/a/b/blob"
ln -s file1.txt "$T/tree/a/link"
img=$T/vm.img
mkfs.ext4 -q -F -d "$T/tree" "$img" 128M
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
# Change the file system: new content for one file, one file gone.
echo changed > "$T/changed.txt"
debugfs -w -f - "$img" >/dev/null 2>&1 <<CMDS
rm /a/file3.txt
rm /a/file7.txt
write $T/changed.txt /a/file7.txt
CMDS
"$BACKY" -b "$T/repo" backup daily

sock=$T/nbd.sock
serve_nbd "$T/repo" "$sock"

# attach URI RO: nbdfuse + losetup; sets $LOOP.
attach() {
  local ro=$2
  nbdfuse $ro "$T/fuse/disk" "$1" &
  FUSE=$!
  CLEANUPS+=("fusermount3 -u '$T/fuse' 2>/dev/null")
  for _ in $(seq 50); do [ -e "$T/fuse/disk" ] && break; sleep 0.1; done
  LOOP=$(losetup -f --show $ro "$T/fuse/disk")
  CLEANUPS+=("losetup -d $LOOP 2>/dev/null")
}
detach() {
  umount "$T/mnt"
  losetup -d "$LOOP"
  fusermount3 -u "$T/fuse"
  wait $FUSE || true
}

attach "nbd+unix:///1?socket=$sock" -r
mount -o ro,noload "$LOOP" "$T/mnt"
CLEANUPS+=("umount '$T/mnt' 2>/dev/null")
diff -r -x lost+found "$T/tree" "$T/mnt" || fail "revision 1 tree differs from the original"
detach
attach "nbd+unix:///0?socket=$sock" -r
mount -o ro,noload "$LOOP" "$T/mnt"
[ "$(cat "$T/mnt/a/file7.txt")" = changed ] || fail "revision 0 lacks the change"
[ ! -e "$T/mnt/a/file3.txt" ] || fail "revision 0 still has file3"
detach
kill $server; wait $server || true

# An image with a journal to replay: copy the image while it is mounted.
mkfs.ext4 -q -F "$T/dirty.img" 64M
mkdir -p "$T/live"
mount -o loop "$T/dirty.img" "$T/live"
CLEANUPS+=("umount '$T/live' 2>/dev/null")
cp -r "$T/tree/a" "$T/live/"
sync -f "$T/live"
cp "$T/dirty.img" "$T/dirty-copy.img"
umount "$T/live"
dumpe2fs -h "$T/dirty-copy.img" 2>/dev/null | grep -q needs_recovery || fail "copy is not dirty"
"$BACKY" -b "$T/repo2" init file "$T/dirty-copy.img"
"$BACKY" -b "$T/repo2" backup daily
before=$("$BACKY" -b "$T/repo2" restore - | sha)

serve_nbd "$T/repo2" "$sock"
attach "nbd+unix:///?socket=$sock" -r
if mount -o ro "$LOOP" "$T/mnt" 2>/dev/null; then
  umount "$T/mnt"; fail "journal replay on a read-only export should fail"
fi
losetup -d "$LOOP"; fusermount3 -u "$T/fuse"; wait $FUSE || true
kill $server; wait $server || true

serve_nbd "$T/repo2" "$sock" --cow
attach "nbd+unix:///?socket=$sock" ""
mount -o ro "$LOOP" "$T/mnt" || fail "mount -o ro with journal replay on --cow failed"
diff -r "$T/tree/a" "$T/mnt/a" || fail "replayed tree differs"
detach
kill $server; wait $server || true
[ "$("$BACKY" -b "$T/repo2" restore - | sha)" = "$before" ] || fail "the repository changed"
echo PASS
