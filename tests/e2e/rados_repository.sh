#!/bin/bash
# A repository in a RADOS pool end to end, on a throwaway one-node cluster:
# backups of a changing image restore byte for byte; status, find and
# verify; a corrupt chunk object is found, refused and rewritten; kill -9
# at test points and at random moments leaves only complete revisions and
# the next backup proceeds once the lease runs out; two writers contend;
# purge runs alongside backups and an NBD server without losing a chunk;
# an unreachable cluster and a missing pool fail quickly in one line.
. "$(dirname "$0")/rados_lib.sh"
requires nbdcopy
export BACKY_RADOS_LEASE_SECONDS=3
start_cluster
R=rados:$POOL/vm1
M=$((1024 * 1024))
img=$T/vm.img
SHAS=$T/shas  # "sha" of the image at each backup, one a line

# change SEED: rewrites a few MiB of the image at places chosen by SEED,
# zeroes one MiB, and records nothing (the caller records after backup).
change() {
  local s=$1
  rand_bytes "c$s" 3 | dd of="$img" bs=$M seek=$(( (s * 7) % 60 )) conv=notrunc status=none
  dd if=/dev/zero of="$img" bs=$M seek=$(( (s * 13) % 60 )) count=1 conv=notrunc status=none
}
backup() { "$BACKY" -b "$R" backup "$@" >/dev/null; sha < "$img" >> "$SHAS"; }
# check_all: every listed revision restores to an image some backup read
# and verifies.
check_all() {
  local id got n=0
  for id in $(rev_ids "$R"); do
    got=$("$BACKY" -b "$R" restore -r "$id" - | sha)
    grep -qx "$got" "$SHAS" || fail "revision $id restores to $got, which no backup read"
    n=$((n + 1))
  done
  "$BACKY" -b "$R" verify --all >"$T/verify.out" 2>&1 || fail "verify --all: $(cat "$T/verify.out")"
  log "$n revisions restore and verify"
}

log "init, backups of a changing image, restore of each"
{ rand_bytes base 40; head -c $((16 * M)) /dev/zero; rand_bytes tail 8; } > "$img"
"$BACKY" -b "$R" init file "$img" >/dev/null
expect_fail "already a repository.*$R" "$BACKY" -b "$R" init file "$img"
declare -A want
for i in 1 2 3 4; do
  change "$i"
  backup "r$i,daily"
  want[r$i]=$(sha < "$img")
done
for i in 1 2 3 4; do
  got=$("$BACKY" -b "$R" restore -r "r$i" - | sha)
  [ "$got" = "${want[r$i]}" ] || fail "revision r$i restores to $got, want ${want[r$i]}"
done
"$BACKY" -b "$R" restore -r r2 "$T/out.img"
[ "$(sha < "$T/out.img")" = "${want[r2]}" ] || fail "restore to a file differs"
rm "$T/out.img"
[ "$(rev_ids "$R" | wc -l)" = 4 ] || fail "status lists $(rev_ids "$R" | wc -l) revisions, not 4"
"$BACKY" -b "$R" status | grep -q "4 revisions" || fail "status: $("$BACKY" -b "$R" status)"
[ "$("$BACKY" -b "$R" find -r r3)" = "$(rev_ids "$R" | sed -n 3p)" ] || fail "find -r r3"
[ "$("$BACKY" -b "$R" find -r daily)" = "$(rev_ids "$R" | tail -1)" ] || fail "find -r daily"
[ "$(rev_field "$R" r1 chunks_zero)" -ge 3 ] || fail "the zeros were stored as chunks"
"$BACKY" -b "$R" verify --all >/dev/null || fail "verify --all of a healthy repository"

log "a corrupt chunk object: verify distrusts, restore refuses naming it, backup rewrites"
oid=$(chunk_oids vm1 | head -1)
digest=${oid##*/}
corrupt_object "$oid" 100000
# The revisions holding it fail to restore, naming it; the others restore.
bad=0
for i in 1 2 3 4; do
  if ! err=$("$BACKY" -b "$R" restore -r "r$i" - 2>&1 >/dev/null); then
    grep -q "Corruption: .*$digest" <<<"$err" || fail "restore of r$i: $err"
    bad=$((bad + 1))
  fi
done
[ $bad -gt 0 ] || fail "no revision's restore found the corrupt chunk $digest"
expect_fail "damaged chunks" "$BACKY" -b "$R" verify --all
[ "$("$BACKY" -b "$R" status --yaml | grep -c 'trust: distrusted')" = $bad ] ||
  fail "verify did not distrust the $bad revisions holding $digest"
backup after-corruption
rados -p "$POOL" stat "$oid" >/dev/null || fail "the next backup did not rewrite $oid"
check_all

log "kill -9 at test points: nothing half published, the next backup waits out the lease"
for point in chunks index published synced; do
  before=$(rev_ids "$R" | wc -l)
  change "$((RANDOM % 50 + 10))"
  rc=0; BACKY_TEST_HOOK="$point:kill" "$BACKY" -b "$R" backup crash >/dev/null 2>&1 || rc=$?
  [ $rc = 137 ] || fail "backup with $point:kill exited $rc"
  after=$(rev_ids "$R" | wc -l)
  case $point in
    chunks|synced|index) [ "$after" = "$before" ] || fail "kill at $point published a revision" ;;
    *) [ "$after" = $((before + 1)) ] || fail "kill at $point lost the revision"
       sha < "$img" >> "$SHAS" ;;
  esac
  start=$SECONDS
  retry_busy 20 "$BACKY" -b "$R" backup after-crash
  sha < "$img" >> "$SHAS"
  log "kill at $point: next backup after $((SECONDS - start)) s"
done
check_all

log "kill -9 at random moments of ~10 backups of a 96 MiB image"
rand_bytes big 96 > "$img"
for i in $(seq 10); do
  change "$((i + 100))"
  before=$(rev_ids "$R")
  "$BACKY" -b "$R" backup random >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  new=$(comm -13 <(sort <<<"$before") <(rev_ids "$R" | sort))
  if [ -n "$new" ]; then
    got=$("$BACKY" -b "$R" restore -r "$new" - | sha)
    [ "$got" = "$(sha < "$img")" ] || fail "revision $new of killed backup $i is not its image"
    sha < "$img" >> "$SHAS"
  fi
  retry_busy 20 "$BACKY" -b "$R" backup random-after
  sha < "$img" >> "$SHAS"
done
check_all

log "two writers: one works, the other is Busy in one line"
BACKY_TEST_HOOK="chunks:sleep=4" "$BACKY" -b "$R" backup slow >/dev/null 2>"$T/slow.err" &
slow=$!
sleep 1.5  # it holds the writer lock while it sleeps at "chunks"
rc=0; err=$("$BACKY" -b "$R" backup second 2>&1 >/dev/null) || rc=$?
[ $rc = 1 ] || fail "second backup exited $rc: $err"
[ "$(wc -l <<<"$err")" = 1 ] || fail "second backup's error is not one line: $err"
grep -Eq "locked by backup \(pid $slow\)" <<<"$err" || fail "second backup: $err"
wait "$slow" || fail "the first backup failed: $(cat "$T/slow.err")"
sha < "$img" >> "$SHAS"

log "purge in a loop, with a backup loop and nbdcopy of 'last' from an NBD server"
"$BACKY" -b "$R" nbd-server --socket "$T/nbd.sock" 2>>"$T/server.log" &
server=$!
CLEANUPS+=("kill $server 2>/dev/null; wait $server 2>/dev/null")
for _ in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
[ -S "$T/nbd.sock" ] || fail "nbd-server did not start: $(cat "$T/server.log")"
(
  for i in $(seq 6); do
    # Forgetting makes purge work: the oldest goes each round.
    change "$((i + 200))"
    backup loop || exit 1
    old=$(rev_ids "$R" | head -1)
    "$BACKY" -b "$R" forget -r "$old" >/dev/null || exit 1
  done
) 2>"$T/backups.err" &
backups=$!
(
  while kill -0 "$backups" 2>/dev/null; do
    if ! out=$("$BACKY" -b "$R" purge 2>&1); then
      grep -q "in use" <<<"$out" || { echo "purge: $out"; exit 1; }
    fi
    sleep 0.2
  done
) >"$T/purges.err" 2>&1 &
purges=$!
copies=0
while kill -0 "$backups" 2>/dev/null; do
  got=$(nbdcopy "nbd+unix:///last?socket=$T/nbd.sock" - | sha) || fail "nbdcopy failed"
  grep -qx "$got" "$SHAS" || fail "nbdcopy of last gave $got, which no backup read"
  copies=$((copies + 1))
done
wait "$backups" || fail "backup loop: $(cat "$T/backups.err")"
wait "$purges" || fail "purge loop: $(cat "$T/purges.err")"
[ "$copies" -ge 2 ] || fail "only $copies nbdcopy runs overlapped the backups"
"$BACKY" -b "$R" purge >/dev/null
check_all
log "$copies nbdcopy runs matched a revision"

log "an unreachable cluster fails in < 35 s naming the monitor"
printf '[global]\nmon_host = 127.0.0.1:1\nauth_client_required = none\n' > "$T/closed.conf"
start=$SECONDS
rc=0; err=$(timeout 40 "$BACKY" --ceph-conf "$T/closed.conf" -b "$R" status 2>&1 >/dev/null) || rc=$?
took=$((SECONDS - start))
[ $rc = 1 ] || fail "unreachable cluster: exit $rc after $took s: $err"
[ $took -lt 35 ] || fail "unreachable cluster took $took s"
[ "$(wc -l <<<"$err")" = 1 ] || fail "not one line: $err"
grep -q "127.0.0.1:1" <<<"$err" || fail "does not name the monitor: $err"
log "unreachable after $took s: $err"

log "a missing pool: one line naming it"
rc=0; err=$(timeout 40 "$BACKY" -b rados:nosuchpool/vm1 status 2>&1 >/dev/null) || rc=$?
[ $rc = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] || fail "missing pool: exit $rc: $err"
grep -q "nosuchpool" <<<"$err" || fail "does not name the pool: $err"
echo PASS
