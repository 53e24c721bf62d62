#!/bin/bash
# Values a careless operator types: refused at once with a usage error
# (exit 2) naming the option, or, for init, a one-line error naming the
# path — not at the first backup.
. "$(dirname "$0")/lib.sh"
requires openssl

rand_bytes cli 1 > "$T/vm.img"
"$BACKY" -b "$T/repo" init file "$T/vm.img"
"$BACKY" -b "$T/repo" backup daily

# expect_usage PATTERN ARGS...: nbd-server ARGS must exit 2 at once (a
# server that starts instead is stopped by the timeout: rc 124).
expect_usage() {
  local pattern=$1 rc=0 err
  shift
  err=$(timeout 10 "$BACKY" -b "$T/repo" nbd-server --socket "$T/sock" "$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -eq 2 ] || fail "nbd-server $*: exit $rc, not 2: $err"
  echo "$err" | grep -Eq -- "$pattern" || fail "nbd-server $*: '$err' does not match /$pattern/"
  log "refused: $*: $(echo "$err" | head -1)"
}
log "nbd-server sizes and counts"
for v in -1 +1 " 1" 1x 2T 99999999999G 18446744073709551617 ""; do
  expect_usage "--cache-size" --cache-size "$v"
  expect_usage "--disk-cache-size" --disk-cache-size "$v"
done
expect_usage "--threads" --threads 0
expect_usage "--max-connections" --max-connections 0
expect_usage "--idle-timeout" --idle-timeout -5

log "init refuses sources that cannot be backed up"
: > "$T/empty.img"
mkdir "$T/dir"
mkfifo "$T/fifo"
expect_fail "init: source image must be a regular file or a block device \(/dev/null\)" \
  "$BACKY" -b "$T/r1" init file /dev/null
expect_fail "init: source image is a directory \($T/dir\)" "$BACKY" -b "$T/r2" init file "$T/dir"
expect_fail "init: source image is empty \($T/empty.img\)" "$BACKY" -b "$T/r3" init file "$T/empty.img"
expect_fail "init: source image must be a regular file or a block device \($T/fifo\)" \
  timeout 10 "$BACKY" -b "$T/r4" init file "$T/fifo"
for r in r1 r2 r3 r4; do
  [ ! -e "$T/$r/config" ] || fail "init created $T/$r despite the error"
done
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  id backy-intruder >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin backy-intruder
  chmod 755 "$T"
  chmod 600 "$T/vm.img"
  mkdir "$T/r5" && chown backy-intruder "$T/r5"
  expect_fail "init: open source image: Permission denied \($T/vm.img\)" \
    setpriv --reuid=backy-intruder --regid=backy-intruder --clear-groups -- \
    "$BACKY" -b "$T/r5" init file "$T/vm.img"
fi
log "ok"
