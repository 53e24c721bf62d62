#!/bin/bash
# kill -9 a backup at several points: status shows only complete
# revisions, every one restores correctly, and the next backup succeeds.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes crash0 64 > "$img"
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
declare -A expect   # revision id -> sha256 of the image it holds
expect[$("$BACKY" -b "$T/repo" find)]=$(sha < "$img")

check_repo() {
  local ids
  ids=$(rev_ids "$T/repo")
  for id in $ids; do
    [ -n "${expect[$id]:-}" ] || fail "revision $id appeared after a crash"
    [ "$("$BACKY" -b "$T/repo" restore -r "$id" - | sha)" = "${expect[$id]}" ] ||
      fail "revision $id does not restore correctly"
  done
  [ "$(echo "$ids" | wc -w)" = "${#expect[@]}" ] || fail "a revision was lost"
}

n=0
for point in chunks synced index; do
  n=$((n + 1))
  rand_bytes "crash$n" 4 | dd of="$img" bs=1M seek=$((n * 8)) conv=notrunc status=none
  rc=0
  BACKY_TEST_HOOK="$point:kill" "$BACKY" -b "$T/repo" backup daily 2>/dev/null || rc=$?
  [ $rc = 137 ] || fail "backup with hook $point exited $rc, expected 137 (SIGKILL)"
  log "killed at $point"
  check_repo
done

# Killed right after publishing the metadata: the revision is complete.
n=$((n + 1))
rand_bytes "crash$n" 4 | dd of="$img" bs=1M seek=$((n * 8)) conv=notrunc status=none
rc=0
BACKY_TEST_HOOK="published:kill" "$BACKY" -b "$T/repo" backup daily 2>/dev/null || rc=$?
[ $rc = 137 ] || fail "backup with hook published exited $rc"
expect[$("$BACKY" -b "$T/repo" find)]=$(sha < "$img")
check_repo

# Kills at random moments, with real timing.
for delay in 0.05 0.1 0.2 0.3; do
  n=$((n + 1))
  rand_bytes "crash$n" 8 | dd of="$img" bs=1M seek=$((n * 4 % 56)) conv=notrunc status=none
  "$BACKY" -b "$T/repo" backup daily 2>/dev/null &
  pid=$!
  sleep $delay
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  # If it finished before the kill, its revision is complete and counts.
  last=$("$BACKY" -b "$T/repo" find)
  [ -n "${expect[$last]:-}" ] || expect[$last]=$(sha < "$img")
  check_repo
done

# The next backup works and cleans up leftovers of the crashed ones.
"$BACKY" -b "$T/repo" backup daily
expect[$("$BACKY" -b "$T/repo" find)]=$(sha < "$img")
check_repo
[ -z "$(ls -A "$T/repo/tmp")" ] || fail "tmp/ not cleaned up"
[ "$(ls "$T/repo/revisions" | grep -c '\.index$')" = "${#expect[@]}" ] || fail "orphan index left"

# A second backup while one runs is refused with a clear message.
BACKY_TEST_HOOK="synced:sleep=3" "$BACKY" -b "$T/repo" backup daily 2>/dev/null &
pid=$!
sleep 1
expect_fail "locked by backup \(pid $pid\)" "$BACKY" -b "$T/repo" backup daily
wait $pid
echo PASS
