#!/bin/bash
# restore as root into a directory another local user can write: that user
# plants symlinks at the temporary names restore could use (the next pids,
# and exactly the pid of the restore) and at TARGET itself, pointing at a
# file only root may write. The root-only file must stay unchanged; the
# restore either writes a fresh file or fails, naming the symlink.
. "$(dirname "$0")/lib.sh"
requires openssl
needs_intruder

chmod 755 "$T"
rand_bytes img 6 > "$T/vm.img"              # 6 MiB: two slots
sum=$(sha < "$T/vm.img")
"$BACKY" -b "$T/repo" init file "$T/vm.img"
"$BACKY" -b "$T/repo" backup daily

echo "only root may write this" > "$T/secret"
chmod 600 "$T/secret"
secret=$(sha < "$T/secret")
check_secret() {
  [ "$(sha < "$T/secret")" = "$secret" ] || fail "$1: the root-only file was overwritten"
  [ "$(stat -c %s "$T/secret")" -lt 100 ] || fail "$1: the root-only file grew"
}
check_restored() {  # check_restored PATH WHAT
  [ ! -L "$1" ] || fail "$2: $1 is still a symlink"
  [ -f "$1" ] || fail "$2: $1 is not a regular file"
  [ "$(stat -c %u "$1")" = 0 ] || fail "$2: $1 is not root's file"
  [ "$(sha < "$1")" = "$sum" ] || fail "$2: $1 differs from the image"
}
dir=$T/dir
mkdir "$dir"
chown backy-intruder "$dir"

# The intruder's planting script: symlinks DIR/.NAME.backy-restore-PID for
# COUNT pids from FIRST, all pointing at TARGET.
cat > "$T/plant" <<'EOF'
#!/bin/bash
dir=$1 name=$2 first=$3 count=$4 target=$5
max=$(cat /proc/sys/kernel/pid_max)
for ((i = 0; i < count; i++)); do
  ln -sfn "$target" "$dir/.$name.backy-restore-$(( (first + i) % max ))"
done
EOF
chmod 755 "$T/plant"

log "1. symlinks at the next 2000 pids' temporary names, and at the restore's own pid"
next=$(( $(cat /proc/sys/kernel/ns_last_pid) + 1 ))
as_intruder "$T/plant" "$dir" vm.img "$next" 2000 "$T/secret"
# A subshell knows its pid before it execs backy: plant for exactly that one.
( as_intruder "$T/plant" "$dir" vm.img "$BASHPID" 1 "$T/secret"
  exec "$BACKY" -b "$T/repo" restore "$dir/vm.img" ) || fail "restore into $dir failed"
check_secret "planted temporary names"
check_restored "$dir/vm.img" "planted temporary names"
[ -z "$(find "$dir" -maxdepth 1 -name '.vm.img.backy-restore-*' ! -type l)" ] ||
  fail "restore left a temporary file behind"

log "2. a symlink at TARGET is refused without --force"
as_intruder ln -s "$T/secret" "$dir/vm2.img"
expect_fail "restore: target is a symbolic link; use --force .*$dir/vm2.img" \
  "$BACKY" -b "$T/repo" restore "$dir/vm2.img"
check_secret "symlink at TARGET"
[ -L "$dir/vm2.img" ] || fail "the refused restore removed the symlink"

log "3. --force replaces the link, never what it points to"
"$BACKY" -b "$T/repo" restore --force "$dir/vm2.img"
check_secret "symlink at TARGET with --force"
check_restored "$dir/vm2.img" "symlink at TARGET with --force"

log "4. a dangling symlink at TARGET (where a file would be created) likewise"
as_intruder ln -s "$T/created-by-root" "$dir/vm3.img"
expect_fail "symbolic link" "$BACKY" -b "$T/repo" restore "$dir/vm3.img"
"$BACKY" -b "$T/repo" restore --force "$dir/vm3.img"
[ ! -e "$T/created-by-root" ] || fail "restore created the dangling symlink's target"
check_restored "$dir/vm3.img" "dangling symlink"

# Block devices are written in place with --force; a symlink is followed to
# one only when root owns the link (as /dev/VG/LV are).
if command -v losetup >/dev/null && truncate -s 8M "$T/loop.img" &&
   dev=$(losetup -f --show "$T/loop.img" 2>/dev/null); then
  CLEANUPS+=("losetup -d $dev")
  log "5. block device $dev through root's symlink, with --force"
  ln -s "$dev" "$T/rootlink"
  expect_fail "symbolic link to a block device; use --force" \
    "$BACKY" -b "$T/repo" restore "$T/rootlink"
  "$BACKY" -b "$T/repo" restore --force "$T/rootlink"
  [ "$(head -c $((6 << 20)) "$dev" | sha)" = "$sum" ] || fail "device not written"
  [ -L "$T/rootlink" ] || fail "the link to the device was replaced"

  log "6. the intruder's symlink to the device is not followed"
  dd if=/dev/zero of="$dev" bs=1M count=8 status=none
  as_intruder ln -s "$dev" "$dir/disk"
  expect_fail "owned by another user" \
    "$BACKY" -b "$T/repo" restore --force "$dir/disk"
  cmp -s -n $((8 << 20)) "$dev" /dev/zero || fail "the device was written through the intruder's link"
else
  log "losetup unavailable: block device cases not run"
fi
log "ok"
