#!/bin/bash
# Damaged backy 2.x repositories (issue 11), on copies of the genuine 2.5.3
# one: a flipped byte in an LZO chunk, a truncated chunk, a missing chunk,
# a broken .rev, broken JSON mappings (not JSON, a hash that is not hex, a
# slot past the size, a size over the limit) each give a one-line error
# naming the object from restore, verify and status, exit non-zero, and
# never wrong data; over NBD the bad slot reads EIO while other reads keep
# working. A `.purge` held exclusively by a stand-in 2.x purge makes restore
# wait (and say so) until it is released; reading holds `.purge` shared.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/legacy_lib.sh"
requires nbdsh nbdcopy flock mkfifo

# v253's revisions: R1 and R2 share slots 2, 3, 5 with R3; slots 0, 1, 4 of
# R3 are its own chunks.
R1=89tFbaqKqpCNiD4LjjZTdF
R2=bRE8tzxPYvk9V64VpALFMo
R3=57j9s64BLJy5eRB52bv3nq
C0=9a5540867be0aed89f57280044c4843d   # R3 slot 0
C1=d9aa0b0e47f9164827208d9194bfe0f3   # R3 slot 1
C4=1eaab26a8cac1dcd1aea2b2772098b0f   # R3 slot 4
MiB=$((1024 * 1024))

# The right images, from an undamaged copy.
fixture_copy v253 "$T/good"
for id in $R1 $R2 $R3; do
  "$BACKY" -b "$T/good" restore -r "$id" "$T/$id.img" 2>"$T/err" ||
    fail "restore of the undamaged $id: $(cat "$T/err")"
  [ "$(sha <"$T/$id.img")" = "$(expected_field v253 "$id" 3)" ] || fail "undamaged $id: sha256"
done

chunk() { echo "$1/chunks/${2:0:2}/$2.chunk.lzo"; }

# expect_clean_error WHAT PATTERN CMD...: CMD exits non-zero with exactly
# one line on stderr matching PATTERN; its stdout is left in $T/stdout.
expect_clean_error() {
  local what=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
  if [ $rc -eq 0 ]; then
    check_fail "$what: succeeded: $*"
    return
  fi
  local lines
  lines=$(grep -c '' "$T/stderr" || true)
  [ "$lines" = 1 ] || check_fail "$what: $lines lines on stderr: $(cat "$T/stderr")"
  grep -Eq -- "$pattern" "$T/stderr" ||
    check_fail "$what: stderr does not match /$pattern/: $(cat "$T/stderr")"
  log "$what: $(head -1 "$T/stderr")"
}

# stdout_is_prefix WHAT IMG: what a failed restore wrote to stdout is a
# proper prefix of the right image (never wrong bytes, never all of it).
stdout_is_prefix() {
  local n
  n=$(stat -c %s "$T/stdout")
  [ "$n" -lt "$(stat -c %s "$2")" ] || check_fail "$1: a failed restore wrote the whole image"
  cmp -s -n "$n" "$T/stdout" "$2" || check_fail "$1: a failed restore wrote wrong bytes"
}

# others_restore REPO WHAT: the undamaged revisions still restore exactly.
others_restore() {
  local id
  for id in "${@:3}"; do
    [ "$("$BACKY" -b "$1" restore -r "$id" - 2>/dev/null | sha)" = "$(sha <"$T/$id.img")" ] ||
      check_fail "$2: revision $id no longer restores"
  done
}

sock=$T/nbd.sock
uri() { echo "nbd+unix:///$1?socket=$sock"; }

# nbd_bad_slot REPO WHAT ID OFFSET: over NBD, a read at OFFSET fails with
# EIO (twice: a failure is not cached as data), while reads elsewhere in
# the export and other exports keep working.
nbd_bad_slot() {
  local repo=$1 what=$2 id=$3 off=$4
  rm -f "$sock"
  serve_nbd "$repo" "$sock"
  [ -S "$sock" ] || { check_fail "$what: nbd-server did not start: $(tail -1 "$T/server.log")"; return; }
  nbdsh -u "$(uri "$id")" -c "
import errno, sys
import nbd
data = open('$T/$id.img', 'rb').read()
for attempt in range(2):
    try:
        h.pread(4096, $off)
    except nbd.Error as e:
        if e.errnum != errno.EIO:
            sys.exit('bad slot: errno %s, want EIO: %s' % (e.errnum, e))
    else:
        sys.exit('the bad slot read without an error')
for o in (2 * $MiB + 100, 8 * $MiB, 12 * $MiB + 4096, len(data) - 4096):
    if o // (4 * $MiB) == $off // (4 * $MiB):
        continue
    if h.pread(4096, o) != data[o:o + 4096]:
        sys.exit('read at %d after the error differs' % o)
" 2>"$T/err" || check_fail "$what: NBD: $(tail -1 "$T/err")"
  [ "$(nbdcopy "$(uri $R1)" - | sha)" = "$(sha <"$T/$R1.img")" ] ||
    check_fail "$what: NBD: another export stopped working"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

# --- Chunk damage: flipped byte, truncated, missing; each on its own copy.
damage_chunk() {  # damage_chunk NAME HASH SLOT ACTION
  local name=$1 hash=$2 slot=$3 action=$4 repo=$T/$1
  fixture_copy v253 "$repo"
  local f
  f=$(chunk "$repo" "$hash")
  chmod u+w "$f"
  case $action in
    flip) printf '\x5a' | dd of="$f" bs=1 seek=2000 conv=notrunc status=none ;;
    truncate) truncate -s $(($(stat -c %s "$f") / 2)) "$f" ;;
    remove) rm "$f" ;;
  esac
  expect_clean_error "$name: restore -" "$hash" "$BACKY" -b "$repo" restore -r $R3 -
  stdout_is_prefix "$name: restore -" "$T/$R3.img"
  rm -f "$T/out.img"
  expect_clean_error "$name: restore FILE" "$hash" "$BACKY" -b "$repo" restore -r $R3 "$T/out.img"
  if [ -e "$T/out.img" ] && cmp -s "$T/out.img" "$T/$R3.img"; then
    check_fail "$name: restore FILE failed but wrote the image?"
  fi
  local rc=0
  "$BACKY" -b "$repo" verify --all >"$T/verify" 2>&1 || rc=$?
  [ $rc -ne 0 ] || check_fail "$name: verify --all passed"
  grep -q "$hash" "$T/verify" || check_fail "$name: verify does not name $hash: $(cat "$T/verify")"
  # status reads no chunk: it lists all three and exits 0.
  "$BACKY" -b "$repo" status >"$T/status" 2>&1 || check_fail "$name: status failed: $(cat "$T/status")"
  others_restore "$repo" "$name" $R1 $R2
  nbd_bad_slot "$repo" "$name" $R3 $((slot * 4 * MiB + 4096))
}
damage_chunk flipped $C0 0 flip
damage_chunk truncated $C1 1 truncate
damage_chunk missing $C4 4 remove

# verify reports each bad chunk, not only the first.
fixture_copy v253 "$T/two"
chmod u+w "$(chunk "$T/two" $C0)" "$(chunk "$T/two" $C4)"
printf '\x5a' | dd of="$(chunk "$T/two" $C0)" bs=1 seek=3000 conv=notrunc status=none
rm "$(chunk "$T/two" $C4)"
"$BACKY" -b "$T/two" verify --all >"$T/verify" 2>&1 && check_fail "two bad chunks: verify passed"
for h in $C0 $C4; do
  grep -q "$h" "$T/verify" || check_fail "two bad chunks: verify does not name $h: $(cat "$T/verify")"
done

# --- Broken metadata of R2: its .rev, its mapping.
# damage_meta NAME FILE CONTENT [deep]: "deep" damage is inside a mapping
# that status need not parse (it reads the size at its end): status may
# list the revision; restore and verify must find it.
damage_meta() {
  local name=$1 repo=$T/$1 file=$2 deep=${4:-}
  fixture_copy v253 "$repo"
  chmod u+w "$repo/$file"
  printf '%s' "$3" >"$repo/$file"
  # Damage is Corruption naming the file (so the revision too).
  local says="Corruption.*$repo/$R2"
  expect_clean_error "$name: restore" "$says" "$BACKY" -b "$repo" restore -r $R2 -
  stdout_is_prefix "$name: restore" "$T/$R2.img"
  if [ -z "$deep" ]; then
    expect_clean_error "$name: status" "$says" "$BACKY" -b "$repo" status
  else
    "$BACKY" -b "$repo" status >"$T/stdout" 2>"$T/stderr" || true
  fi
  grep -q "$R1" "$T/stdout" && grep -q "$R3" "$T/stdout" ||
    check_fail "$name: status does not list the others: $(cat "$T/stdout")"
  # verify skips a revision the listing found damaged, as for our own
  # repositories, but names it; damage it finds itself fails it.
  local rc=0
  "$BACKY" -b "$repo" verify --all >"$T/verify" 2>&1 || rc=$?
  grep -q "$R2" "$T/verify" || check_fail "$name: verify does not name $R2: $(cat "$T/verify")"
  if [ -n "$deep" ]; then
    [ $rc -ne 0 ] || check_fail "$name: verify --all passed: $(cat "$T/verify")"
    grep -q "$repo/$R2" "$T/verify" || check_fail "$name: verify does not name the mapping: $(cat "$T/verify")"
  fi
  others_restore "$repo" "$name" $R1 $R3
}
rev_text=$(cat "$FIX/v253/$R2.rev")
map_text=$(cat "$FIX/v253/$R2")
damage_meta rev-garbage "$R2.rev" $'{{{ not: [yaml\n'
damage_meta rev-truncated "$R2.rev" "${rev_text:0:60}"
damage_meta rev-timestamp "$R2.rev" "${rev_text/timestamp: 2026-12-01/timestamp: yesterday}"
damage_meta rev-uuid-mismatch "$R2.rev" "${rev_text/uuid: $R2/uuid: $R1}"
damage_meta rev-cowfile "$R2.rev" "${rev_text/backend_type: chunked/backend_type: cowfile}"
damage_meta map-not-json "$R2" 'this is not JSON'
damage_meta map-truncated "$R2" "${map_text:0:100}"
damage_meta map-not-hex "$R2" "${map_text/0ac73b3abc1f8c3f62237fd8556ef186/0ac73b3abc1f8c3f62237fd8556efxyz}" deep
damage_meta map-slot-past-size "$R2" "${map_text/\"5\": /\"99\": \"47e3e53870e592dbbb6a35fc5d0c0f13\", \"5\": }" deep
damage_meta map-size-over-limit "$R2" "${map_text/\"size\": 23592960/\"size\": 18446744073709551616}"
damage_meta map-size-negative "$R2" "${map_text/\"size\": 23592960/\"size\": -4096}"
damage_meta map-missing "$R2" ''

# hold_lock FILE: a stand-in 2.x process holds FILE exclusively (fd 9)
# until a line comes through $T/release; killing it releases everything.
# Sets $holder, and returns once the lock is held.
hold_lock() {
  (
    exec 9<"$1"
    flock -x 9
    read -r _ <"$T/release"
  ) &
  holder=$!
  CLEANUPS+=("kill $holder 2>/dev/null")
  for _ in $(seq 100); do
    flock -n -s "$1" true || break
    sleep 0.05
  done
  flock -n -s "$1" true && fail "the stand-in 2.x process does not hold $1"
  return 0
}

# --- A stand-in 2.x purge holds .purge exclusively: restore waits, says
# so, and proceeds when it is released.
fixture_copy v253 "$T/locked"
mkfifo "$T/release"
hold_lock "$T/locked/.purge"
"$BACKY" -b "$T/locked" restore -r $R1 "$T/waited.img" 2>"$T/wait.err" &
restorer=$!
said=0
for _ in $(seq 100); do
  if [ -s "$T/wait.err" ]; then said=1; break; fi
  kill -0 $restorer 2>/dev/null || break
  sleep 0.1
done
kill -0 $restorer 2>/dev/null || check_fail "restore did not wait for the 2.x purge: $(cat "$T/wait.err")"
[ $said = 1 ] && grep -qi "wait" "$T/wait.err" && grep -qi "purge" "$T/wait.err" ||
  check_fail "restore does not say it waits for the purge: $(cat "$T/wait.err")"
echo go >"$T/release"
wait $holder || true
rc=0
wait $restorer || rc=$?
[ $rc = 0 ] || check_fail "restore after the purge released: exit $rc: $(cat "$T/wait.err")"
cmp -s "$T/waited.img" "$T/$R1.img" || check_fail "restore after waiting: wrong image"

# --- A stand-in 2.x backup holds .backup exclusively: distrust and forget
# fail at once, saying why, and change nothing; reading goes on.
fixture_copy v253 "$T/busy"
before=$(tree_sum "$T/busy")
hold_lock "$T/busy/.backup"
for cmd in "distrust -r $R1" "forget -r $R1"; do
  # shellcheck disable=SC2086
  expect_clean_error "2.x backup running: $cmd" "\.backup|busy|running|locked" \
    timeout 20 "$BACKY" -b "$T/busy" $cmd
done
[ "$(tree_sum "$T/busy")" = "$before" ] || check_fail "distrust/forget changed a repository a 2.x backup holds"
[ "$("$BACKY" -b "$T/busy" restore -r $R1 - 2>/dev/null | sha)" = "$(sha <"$T/$R1.img")" ] ||
  check_fail "restore while a 2.x backup runs"
echo go >"$T/release"
wait $holder || true

# --- Reading holds .purge shared: a 2.x purge (flock -x) cannot start
# while an NBD server runs; it can once the server is gone.
rm -f "$sock"
serve_nbd "$T/good" "$sock"
if flock -n -x "$T/good/.purge" true; then check_fail "nbd-server does not hold .purge shared"; fi
flock -n -s "$T/good/.purge" true || check_fail "nbd-server holds .purge exclusively"
kill "$server"
wait "$server" 2>/dev/null || true
flock -n -x "$T/good/.purge" true || check_fail ".purge still held after nbd-server ended"

finish
