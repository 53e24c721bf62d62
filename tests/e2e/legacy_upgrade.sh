#!/bin/bash
# `backy upgrade` on copies of the genuine 2.x repositories (tests/data/
# legacy-backy): every revision restores to expected.txt's sha256 before and
# after, status keeps ids/tags/trust; kill -9 at each test point, then a
# rerun, gives the same result; a held 2.x lock refuses the upgrade and
# changes nothing; --dry-run changes nothing; a backup afterwards writes only
# the changed chunks; no 2.x file is left.
. "$(dirname "$0")/lib.sh"
requires flock sha256sum /usr/bin/python3 openssl

DATA=${BACKY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/data/legacy-backy
[ -f "$DATA/expected.txt" ] || fail "no fixtures at $DATA"

# fresh FOLDER: a private copy of a fixture, printed.
fresh() {
  local dir=$T/$1.$RANDOM$RANDOM
  cp -a "$DATA/$1" "$dir"
  echo "$dir"
}

# revisions DIR: one line per revision, oldest first: id tags trust parent
# timestamp (status --yaml: one document per revision, or one list).
revisions() {
  "$BACKY" -b "$1" status --yaml | /usr/bin/python3 -c '
import sys, yaml
revs = []
for d in yaml.safe_load_all(sys.stdin):
    if d is not None:
        revs.extend(d if isinstance(d, list) else [d])
for r in revs:
    print(r.get("id") or r["uuid"], ",".join(sorted(r["tags"])), r["trust"],
          r.get("parent") or "-", r["timestamp"])'
}

# stat_of DIR ID KEY: stats.KEY of revision ID.
stat_of() {
  "$BACKY" -b "$1" status --yaml | /usr/bin/python3 -c '
import sys, yaml
for d in yaml.safe_load_all(sys.stdin):
    for r in (d if isinstance(d, list) else [d]) if d is not None else []:
        if (r.get("id") or r.get("uuid")) == sys.argv[1]:
            print(r["stats"][sys.argv[2]])' "$2" "$3"
}

# check_restores DIR FOLDER: every revision of expected.txt restores to its
# sha256, to stdout and (exact size) to a file.
check_restores() {
  local dir=$1 folder=$2 f id hash size tags
  while read -r f id hash size tags; do
    [ "$f" = "$folder" ] || continue
    [ "$("$BACKY" -b "$dir" restore -r "$id" - 2>/dev/null | sha)" = "$hash" ] ||
      fail "$folder revision $id does not restore to its sha256 (stdout)"
    rm -f "$T/out.img"
    "$BACKY" -b "$dir" restore -r "$id" "$T/out.img" 2>/dev/null
    [ "$(stat -c %s "$T/out.img")" = "$size" ] || fail "$folder $id: wrong size"
    [ "$(sha < "$T/out.img")" = "$hash" ] || fail "$folder $id: wrong file"
  done < "$DATA/expected.txt"
}

# tree DIR: names, modes, link targets and contents of everything in DIR.
tree() {
  (cd "$1" && find . -printf '%p %m %l\n' | sort &&
    find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# no_legacy_files DIR: the layout of a `backy init` repository, nothing else.
no_legacy_files() {
  local left
  left=$(cd "$1" && find . -mindepth 1 \( -name '*.chunk.lzo' -o -path ./chunks/store \
    -o -name .backup -o -name .purge -o -name last -o -name last.rev \) -print;
    cd "$1" && find . -mindepth 1 -maxdepth 1 ! -name config ! -name lock \
      ! -name purge.lock ! -name chunks ! -name revisions ! -name tmp ! -name pins \
      ! -name backy.log -print)  # backy.log: what the commands did (backy(1) LOGS)
  [ -z "$left" ] || fail "2.x files left in $1: $left"
  [ "$(stat -c %a "$1")" = 700 ] || fail "$1 is not private"
}

# upgraded DIR FOLDER BEFORE: DIR was upgraded completely and keeps the
# revisions BEFORE (output of `revisions`).
upgraded() {
  check_restores "$1" "$2"
  [ "$(revisions "$1")" = "$3" ] || fail "revisions changed: $(revisions "$1") vs $3"
  grep -q '^format: 1' "$1/config" || fail "config not current"
  no_legacy_files "$1"
  "$BACKY" -b "$1" upgrade | grep -q "already a current" || fail "second upgrade not a no-op"
}

for folder in v243 v253; do
  log "$folder: plain upgrade"
  dir=$(fresh $folder)
  check_restores "$dir" $folder
  before=$(revisions "$dir")
  [ "$(echo "$before" | wc -l)" = 3 ] || fail "$folder: expected 3 revisions"
  [ "$(tree "$dir")" = "$(tree "$DATA/$folder")" ] || fail "reading changed $folder"

  # --dry-run: says what it would do, changes nothing.
  t0=$(tree "$dir")
  out=$("$BACKY" -b "$dir" upgrade --dry-run)
  echo "$out" | grep -q "convert 3 revisions" || fail "dry run: $out"
  echo "$out" | grep -q "peak extra space" || fail "dry run: $out"
  [ "$(tree "$dir")" = "$t0" ] || fail "--dry-run changed $folder"

  # A stand-in 2.x process holding each lock: refused at once, nothing changed.
  for lock in .backup .purge; do
    mode=-x
    [ $lock = .purge ] && mode=-s   # a 2.x restore holds .purge shared
    # The holder is the sleep itself (flock CMD would leave it holding
    # the lock after flock is killed).
    (exec 9<"$dir/$lock"; flock $mode 9; exec sleep 60) &
    holder=$!
    CLEANUPS+=("kill $holder 2>/dev/null")
    for _ in $(seq 50); do
      flock -n -x "$dir/$lock" true 2>/dev/null || break
      sleep 0.1
    done
    expect_fail "holds $dir/$lock; stop it and run upgrade again" \
      timeout 20 "$BACKY" -b "$dir" upgrade
    kill $holder; wait $holder 2>/dev/null || true
    [ "$(tree "$dir")" = "$t0" ] || fail "refused upgrade changed $folder"
  done

  out=$("$BACKY" -b "$dir" upgrade)
  log "$out"
  echo "$out" | grep -q "3 revisions converted" || fail "upgrade: $out"
  upgraded "$dir" $folder "$before"
done

# kill -9 at each test point (and at random moments), then a rerun.
for folder in v253 v243; do
  for point in index upgrade-published upgrade-config upgrade-removing; do
    log "$folder: kill -9 at $point"
    dir=$(fresh $folder)
    before=$(revisions "$dir")
    rc=0
    (BACKY_TEST_HOOK="$point:kill" exec "$BACKY" -b "$dir" upgrade >/dev/null 2>&1) || rc=$?
    [ $rc = 137 ] || fail "upgrade with hook $point exited $rc, expected 137"
    check_restores "$dir" $folder
    [ "$(revisions "$dir")" = "$before" ] || fail "revisions changed after kill at $point"
    "$BACKY" -b "$dir" upgrade >/dev/null
    upgraded "$dir" $folder "$before"
  done
done
for delay in 0.05 0.15 0.3; do
  log "v253: kill -9 after ${delay}s"
  dir=$(fresh v253)
  before=$(revisions "$dir")
  "$BACKY" -b "$dir" upgrade >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  check_restores "$dir" v253
  [ "$(revisions "$dir")" = "$before" ] || fail "revisions changed after kill at ${delay}s"
  "$BACKY" -b "$dir" upgrade >/dev/null
  upgraded "$dir" v253 "$before"
done

# A directory of repositories (the scheduler's base directory): each 2.x
# one is upgraded, a current one left as it is.
log "base directory"
base=$T/base
mkdir "$base"
cp -a "$DATA/v243" "$base/vm1"
cp -a "$DATA/v253" "$base/vm2"
rand_bytes cur 1 > "$T/cur.img"
"$BACKY" -b "$base/cur" init file "$T/cur.img" >/dev/null 2>&1
b1=$(revisions "$base/vm1")
b2=$(revisions "$base/vm2")
out=$("$BACKY" -b "$base" upgrade)
[ "$(grep -c "3 revisions converted" <<<"$out")" = 2 ] || fail "base dir upgrade: $out"
grep -q "$base/cur is already a current" <<<"$out" || fail "base dir upgrade: $out"
upgraded "$base/vm1" v243 "$b1"
upgraded "$base/vm2" v253 "$b2"
[ "$("$BACKY" -b "$base" upgrade | grep -c "already a current")" = 3 ] ||
  fail "second base dir upgrade not a no-op"

# Not enough space for the new chunks: refused up front, nothing changed;
# forced, it stops at the full disk with every revision still reading, and
# finishes once there is space. (Needs a tmpfs: root.)
small=$T/small
mkdir "$small"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=16m tmpfs "$small" 2>/dev/null; then
  CLEANUPS+=("umount '$small'")
  log "v253 on a 16 MiB tmpfs"
  cp -a "$DATA/v253" "$small/r"
  before=$(revisions "$small/r")
  t0=$(tree "$small/r")
  expect_fail "upgrade needs about .* of free space .* nothing was converted" \
    "$BACKY" -b "$small/r" upgrade
  # Only our lock files are new.
  [ "$(tree "$small/r" | grep -v -e '\./lock' -e '\./purge\.lock')" = "$t0" ] ||
    fail "the upgrade refused for lack of space changed the repository"
  out=$("$BACKY" -b "$small/r" upgrade --dry-run)
  echo "$out" | grep -q "peak extra space" || fail "dry run: $out"
  expect_fail "No space left on device" "$BACKY" -b "$small/r" upgrade --no-space-check
  check_restores "$small/r" v253
  [ "$(revisions "$small/r")" = "$before" ] || fail "revisions changed by a full disk"
  mount -o remount,size=64m "$small"
  "$BACKY" -b "$small/r" upgrade >/dev/null
  upgraded "$small/r" v253 "$before"
else
  log "SKIP: the full-disk part needs root to mount a tmpfs"
fi

# A backup after the upgrade continues from the newest revision: only the
# chunks that changed are written.
log "backup after upgrade"
dir=$(fresh v253)
"$BACKY" -b "$dir" upgrade >/dev/null
newest=$(revisions "$dir" | tail -1 | cut -d' ' -f1)
"$BACKY" -b "$dir" restore -r "$newest" "$T/vm.img" 2>/dev/null
# 3 KiB into the second chunk, and 2 KiB across the fourth/fifth border.
rand_bytes change 1 > "$T/change"
dd if="$T/change" of="$T/vm.img" bs=1 count=3072 seek=$((5 * 1024 * 1024 + 777)) \
  conv=notrunc status=none
dd if="$T/change" of="$T/vm.img" bs=1 skip=4096 count=2048 \
  seek=$((16 * 1024 * 1024 - 1024)) conv=notrunc status=none
sed -i "s|filename: .*|filename: $T/vm.img|" "$dir/config"
"$BACKY" -b "$dir" backup daily 2>/dev/null
id=$("$BACKY" -b "$dir" find)
[ "$id" != "$newest" ] || fail "no new revision"
[ "$(revisions "$dir" | tail -1 | cut -d' ' -f4)" = "$newest" ] ||
  fail "the new revision's parent is not $newest"
[ "$(stat_of "$dir" "$id" chunks_new)" = 3 ] ||
  fail "backup after upgrade wrote $(stat_of "$dir" "$id" chunks_new) chunks, expected 3"
[ "$("$BACKY" -b "$dir" restore -r "$id" - 2>/dev/null | sha)" = "$(sha < "$T/vm.img")" ] ||
  fail "the backup after the upgrade does not restore"
check_restores "$dir" v253
no_legacy_files "$dir"
log "all good"
