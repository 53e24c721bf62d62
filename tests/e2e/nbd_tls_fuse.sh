#!/bin/bash
# File-level restore over TLS: an ext4 image with a known tree is backed up;
# nbdfuse attaches the revision over x509 (TCP) and PSK (Unix socket),
# losetup -r + mount -o ro,noload, and diff -r against the tree. libnbd
# 1.14's nbdfuse refuses tls-certificates=/tls-psk-file= in a URI (local
# file access), so nbdfuse runs, by socket activation, nbdkit's nbd plugin:
# a libnbd TLS client of backy, as in `nbdfuse DIR [ nbdkit nbd ... ]`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires certtool psktool nbdfuse nbdkit losetup mkfs.ext4 fusermount3
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for losetup/mount" >&2; exit 77; }
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }

make_pki "$T/pki"
make_psk "$T/server.psk" alice
mkdir -p "$T/tree/a/b" "$T/fuse" "$T/mnt"
for i in $(seq 1 40); do seq 1 $((i * 100)) > "$T/tree/a/file$i.txt"; done
rand_bytes fuse 5 > "$T/tree/a/b/blob"
head -c 3M /dev/zero > "$T/tree/a/b/zeros"
mkfs.ext4 -q -F -d "$T/tree" "$T/vm.img" 64M
"$BACKY" -b "$T/repo" init file "$T/vm.img" >/dev/null
"$BACKY" -b "$T/repo" backup daily >/dev/null
rev=$("$BACKY" -b "$T/repo" find -r daily)

# mount_and_diff NBD_PLUGIN_ARGS...: nbdfuse [ nbdkit nbd ARGS ], losetup
# -r, mount, diff -r, detach.
mount_and_diff() {
  local fuse loop
  nbdfuse -r "$T/fuse/disk" [ nbdkit -r nbd "$@" ] 2>"$T/fuse.err" &
  fuse=$!
  CLEANUPS+=("fusermount3 -u '$T/fuse' 2>/dev/null")
  for _ in $(seq 100); do [ -e "$T/fuse/disk" ] && break; sleep 0.1; done
  [ -e "$T/fuse/disk" ] || fail "nbdfuse [ nbdkit nbd $* ] did not attach: $(cat "$T/fuse.err")"
  loop=$(losetup -f --show -r "$T/fuse/disk")
  CLEANUPS+=("umount '$T/mnt' 2>/dev/null; losetup -d $loop 2>/dev/null")
  mount -o ro,noload "$loop" "$T/mnt"
  diff -r -x lost+found "$T/tree" "$T/mnt" || fail "the tree over nbd $* differs"
  umount "$T/mnt"
  losetup -d "$loop"
  fusermount3 -u "$T/fuse"
  wait $fuse || true
}

start_backy --tls-certificates "$T/pki/server"
mount_and_diff hostname=localhost port="$port" export="$rev" tls=require \
  tls-certificates="$T/pki/anon"
grep -q "TLS.*export '$rev'" "$slog" || fail "the log lacks the TLS read: $(cat "$slog")"
stop_backy

start_backy --socket "$T/nbd.sock" --tls-psk "$T/server.psk"
mount_and_diff socket="$T/nbd.sock" export=daily tls=require tls-username=alice \
  tls-psk="$T/server.psk"
grep -q "TLS 'alice'.*export 'daily'" "$slog" || fail "the log lacks alice: $(cat "$slog")"
stop_backy
echo PASS
