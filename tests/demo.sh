#!/bin/bash
# The backy demo: installs what is missing, builds, then runs the main job
# on a small ext4 image — back it up, change a file, back up again, show
# the status, restore the first revision and prove it is bit-identical,
# and read the original file back out of it — from the restored image and
# over NBD (backy nbd-server + nbdfuse + losetup + mount -o ro).
# Usage (as root on Debian 12): bash tests/demo.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
BACKY=$(pwd)/build/src/backup/backy
W=${1:-$(mktemp -d /tmp/backy-demo.XXXXXX)}
mkdir -p "$W"
cd "$W"
rm -rf tree repo vm.img restored.img
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Make a 256 MiB ext4 image with some files"
mkdir -p tree/docs tree/data tree/etc
for i in $(seq 1 200); do echo "line $i of the quarterly report"; done > tree/docs/report.txt
head -c 20M /dev/urandom > tree/data/blob.bin
cp /etc/os-release tree/etc/
mkfs.ext4 -q -F -d tree vm.img 256M
sha_v1=$(sha256sum < vm.img | cut -d' ' -f1)
echo "vm.img sha256 $sha_v1"

step "backy init + first backup"
"$BACKY" -b repo init file vm.img
"$BACKY" -b repo backup daily

step "Change a file inside the image, back up again"
echo "this line was added after the first backup" > new-report.txt
debugfs -w -f - vm.img > /dev/null 2>&1 <<CMDS
rm /docs/report.txt
write new-report.txt /docs/report.txt
CMDS
debugfs -R "cat /docs/report.txt" vm.img 2>/dev/null | head -1
"$BACKY" -b repo backup daily,manual:after-edit

step "backy status"
"$BACKY" -b repo status

step "Restore revision 1 (the first backup) and compare checksums"
"$BACKY" -b repo restore -r 1 restored.img
sha_restored=$(sha256sum < restored.img | cut -d' ' -f1)
echo "original  $sha_v1"
echo "restored  $sha_restored"
[ "$sha_v1" = "$sha_restored" ] || { echo "MISMATCH" >&2; exit 1; }

step "Read the original report back out of the restored image"
debugfs -R "cat /docs/report.txt" restored.img 2>/dev/null | head -3
debugfs -R "cat /docs/report.txt" restored.img 2>/dev/null | cmp - tree/docs/report.txt
echo "docs/report.txt is identical to the original"

step "Serve revision 1 over NBD; mount it read-only; read the file back"
"$BACKY" -b repo nbd-server --socket "$W/nbd.sock" &
server=$!
mkdir -p fuse mnt
cleanup_nbd() {
  umount "$W/mnt" 2>/dev/null || true
  [ -n "${loop:-}" ] && losetup -d "$loop" 2>/dev/null || true
  fusermount3 -u "$W/fuse" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
}
trap cleanup_nbd EXIT
for _ in $(seq 50); do [ -S nbd.sock ] && break; sleep 0.1; done
nbdinfo --list "nbd+unix:///?socket=$W/nbd.sock" | grep -E '^export|description'
nbdfuse -r fuse/disk "nbd+unix:///1?socket=$W/nbd.sock" &
for _ in $(seq 50); do [ -e fuse/disk ] && break; sleep 0.1; done
loop=$(losetup -r -f --show fuse/disk)
mount -o ro,noload "$loop" mnt
echo "mounted revision 1 at $W/mnt:"
ls mnt mnt/docs
head -2 mnt/docs/report.txt
cmp mnt/docs/report.txt tree/docs/report.txt && echo "docs/report.txt read over NBD is identical to the original"
cleanup_nbd
trap - EXIT

step "Stream the newest revision to stdout"
echo "$("$BACKY" -b repo restore -r last - | sha256sum | cut -d' ' -f1)  (restore -r last - | sha256sum)"
echo "$(sha256sum < vm.img | cut -d' ' -f1)  (current vm.img)"
printf '\nDemo OK. Everything is in %s\n' "$W"
