#!/bin/bash
# Damaged and hostile repository files (issue 9 items 5-8, 13): crafted
# with valid checksums, oversized, FIFOs, symlinks to devices. Each is a
# Corruption error (exit 1) naming the file, in bounded memory and time;
# a damaged revision is listed by status and skipped by everything else,
# and purge keeps its chunks.
. "$(dirname "$0")/lib.sh"
requires openssl xxhsum nbdsh nbdinfo timeout

M=$((1024 * 1024))
# nbdsh runs python3 from PATH; the Debian one has the nbd module.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }
# Commands run with at most 2 GiB of address space and 30 s: reading a
# damaged file whole, or waiting on a FIFO, fails these.
bounded() { (ulimit -v $((2 * 1024 * 1024)); exec timeout 30 "$@"); }
# expect_rc RC CMD...: CMD exits with RC (stdout to $T/out, stderr to $T/err).
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = "$want" ] || fail "exit $rc (want $want): $*: $(cat "$T/err")"
}
# le64 N: the 8 little-endian bytes of N, as printf escapes.
le64() { printf '%016x' "$1" | sed 's/../&\n/g' | tac | tr -d '\n' | sed 's/../\\x&/g'; }
le32() { printf '%08x' "$1" | sed 's/../&\n/g' | tac | tr -d '\n' | sed 's/../\\x&/g'; }
# put FILE OFFSET ESCAPES: overwrite bytes in place.
put() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# rechecksum FILE PREFIX: the XXH3-64 at offset 56 over bytes [0, 56) and
# [64, PREFIX) of an index or chunk file, as man/backy-store.5 defines it.
rechecksum() {
  local h
  h=$({ head -c 56 "$1"; head -c "$2" "$1" | tail -c +65; } | xxhsum -H3 | awk '{print $NF}')
  put "$1" 56 "$(echo "$h" | sed 's/../&\n/g' | tac | tr -d '\n' | sed 's/../\\x&/g')"
}

# Slot 0 random (raw blocks), slot 1 text (zstd blocks), slot 2 random.
img=$T/vm.img
{ rand_bytes a 4; { yes 'a line of compressible text' || true; } | head -c $((4 * M)); rand_bytes b 4; } > "$img"
base=$T/base/vm
"$BACKY" -b "$base" init file "$img"
"$BACKY" -b "$base" backup daily
A=$("$BACKY" -b "$base" find)
sha_a=$(sha < "$img")
rand_bytes c 4 | dd of="$img" bs=1M seek=8 conv=notrunc status=none  # B's own chunk
"$BACKY" -b "$base" backup daily
B=$("$BACKY" -b "$base" find)
sha_b=$(sha < "$img")
rand_bytes d 4 | dd of="$img" bs=1M seek=8 conv=notrunc status=none
"$BACKY" -b "$base" backup daily
C=$("$BACKY" -b "$base" find)
sha_c=$(sha < "$img")

# The checksum helper reproduces what backy wrote.
cp "$base/revisions/$A.index" "$T/idx"
put "$T/idx" 56 '\0\0\0\0\0\0\0\0'
rechecksum "$T/idx" "$(stat -c %s "$T/idx")"
cmp -s "$T/idx" "$base/revisions/$A.index" || fail "rechecksum does not reproduce backy's index checksum"

# damage KIND PATH: replaces revision B's metadata at PATH by a damaged one.
damage() {
  rm -f "$2"
  case $1 in
    yaml) echo "id: [broken" > "$2" ;;
    huge) truncate -s 100G "$2" ;;
    fifo) mkfifo "$2" ;;
    devzero) ln -s /dev/zero "$2" ;;
    dir) mkdir "$2" ;;
    trustmap) sed 's/^trust: .*/trust: {a: 1}/' "$base/revisions/$B.rev" > "$2" ;;
    tagscalar) sed 's/^tags: .*/tags: daily/' "$base/revisions/$B.rev" > "$2" ;;
    timestamp) sed 's/^timestamp: .*/timestamp: 0000-13-45T99:99:99Z/' "$base/revisions/$B.rev" > "$2" ;;
    trust) sed 's/^trust: .*/trust: bogus/' "$base/revisions/$B.rev" > "$2" ;;
  esac
}
fresh() { rm -rf "$T/r"; mkdir -p "$T/r"; cp -a "$base" "$T/r/vm"; R=$T/r/vm; }

log "item 5: an index whose image size is 2^64-1 (valid checksum) is Corruption"
fresh
idx=$R/revisions/$B.index
put "$idx" 16 "$(le64 18446744073709551615)"
put "$idx" 24 "$(le64 0)"
truncate -s 64 "$idx"
rechecksum "$idx" 64
sed -i 's/^size: .*/size: 18446744073709551615/' "$R/revisions/$B.rev"
expect_rc 1 bounded "$BACKY" -b "$R" restore -r "$B" -
grep -q "index image size 18446744073709551615 is impossible .*$B.index" "$T/err" || fail "restore: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "restore of an impossible index wrote data"
serve_nbd "$R" "$T/s5"
nbdsh -u "nbd+unix:///$B?socket=$T/s5" -c 'h.pread(4096, 0)' 2>/dev/null && fail "nbd read of an impossible index succeeded"
kill -0 "$server" || fail "nbd-server died on an impossible index: $(cat "$T/server.log")"
[ "$(nbdcopy "nbd+unix:///$A?socket=$T/s5" - | sha)" = "$sha_a" ] || fail "nbd-server stopped serving A"
kill "$server"; wait "$server" 2>/dev/null || true

log "item 6: huge stored sizes in a block table (valid checksum) fail only that chunk"
fresh
# Slot 1 of A is the text chunk: its digest is bytes 80..95 of A's index.
digest=$(od -An -tx1 -j $((64 + 16)) -N 16 "$R/revisions/$A.index" | tr -d ' \n')
chunk=$R/chunks/${digest:0:2}/$digest.chunk
[ -f "$chunk" ] || fail "no chunk file $chunk"
blocks=$(od -An -tu4 -j 20 -N 4 "$chunk" | tr -d ' ')
[ "$blocks" -gt 1 ] || fail "the text chunk has $blocks blocks"
for ((i = 0; i < blocks; i++)); do
  put "$chunk" $((64 + 16 * i)) "$(le32 4026531840)"   # 0xF0000000
  put "$chunk" $((64 + 16 * i + 4)) "$(le32 1)"        # zstd
done
rechecksum "$chunk" $((64 + 16 * blocks))
serve_nbd "$R" "$T/s6"
# A read of the whole slot once made the server allocate 8 x 3.75 GiB.
for r in '4096, 4 * 1024 * 1024 + 100' '4 * 1024 * 1024, 4 * 1024 * 1024'; do
  nbdsh -u "nbd+unix:///$A?socket=$T/s6" -c "h.pread($r)" 2>/dev/null &&
    fail "nbd read ($r) of a chunk with huge stored sizes succeeded"
done
kill -0 "$server" || fail "nbd-server died on huge stored sizes: $(cat "$T/server.log")"
grep -q "stored size" "$T/server.log" || fail "server log does not say why: $(cat "$T/server.log")"
nbdsh -u "nbd+unix:///$A?socket=$T/s6" \
  -c 'assert len(h.pread(4 * 1024 * 1024, 0)) == 4 * 1024 * 1024' \
  -c 'assert len(h.pread(4096, 8 * 1024 * 1024)) == 4096' || fail "nbd-server stopped serving healthy slots"
kill "$server"; wait "$server" 2>/dev/null || true
expect_rc 1 bounded "$BACKY" -b "$R" restore -r "$A" -
grep -q "Corruption: .*$digest" "$T/err" || fail "restore: $(cat "$T/err")"

log "item 7: a 50 GiB (sparse) chunk file is Corruption, read in bounded memory"
fresh
digest=$(od -An -tx1 -j 64 -N 16 "$R/revisions/$A.index" | tr -d ' \n')
chunk=$R/chunks/${digest:0:2}/$digest.chunk
truncate -s 50G "$chunk"
expect_rc 1 bounded "$BACKY" -b "$R" restore -r "$A" "$T/out.img"
grep -q "Corruption: .*$digest" "$T/err" || fail "restore: $(cat "$T/err")"
[ ! -e "$T/out.img" ] || fail "a failed restore left its target"
ls -A "$T" | grep -q backy-restore && fail "a failed restore left a temp file"
expect_rc 1 bounded "$BACKY" -b "$R" verify --all
[ -e "$R/quarantine/$digest.chunk" ] || fail "verify --all did not quarantine the oversized chunk: $(cat "$T/out" "$T/err")"

log "items 7, 8, 13: damaged .rev files are listed, skipped, exit 1"
for kind in yaml huge fifo devzero dir trustmap tagscalar timestamp trust; do
  log "damaged .rev: $kind"
  fresh
  damage "$kind" "$R/revisions/$B.rev"
  expect_rc 1 bounded "$BACKY" -b "$R" status
  grep -q "$B.rev" "$T/err" || fail "$kind: status error does not name $B.rev: $(cat "$T/err")"
  grep -q "^DAMAGED .*$B" "$T/out" || fail "$kind: status does not list $B as damaged: $(cat "$T/out")"
  grep -q "$A" "$T/out" && grep -q "$C" "$T/out" || fail "$kind: status lost healthy revisions: $(cat "$T/out")"
  expect_rc 1 bounded "$BACKY" -b "$R" status --yaml
  grep -q "^  damaged: .*$B.rev" "$T/out" || fail "$kind: status --yaml: $(cat "$T/out")"
  [ "$(bounded "$BACKY" -b "$R" restore -r "$A" - | sha)" = "$sha_a" ] || fail "$kind: restore of A"
  [ "$(bounded "$BACKY" -b "$R" restore - | sha)" = "$sha_c" ] || fail "$kind: restore of the newest"
  expect_rc 1 bounded "$BACKY" -b "$R" restore -r "$B" -
  grep -q "revision $B is damaged" "$T/err" || fail "$kind: restore -r of the damaged id: $(cat "$T/err")"
done
# The keys named for wrong YAML types and impossible values.
for kind in trustmap:trust tagscalar:tags timestamp:timestamp trust:trust; do
  fresh
  damage "${kind%%:*}" "$R/revisions/$B.rev"
  expect_rc 1 "$BACKY" -b "$R" status
  grep -q "Corruption: .*'${kind##*:}'" "$T/err" || fail "$kind: error does not name the key: $(cat "$T/err")"
done

log "item 8: with a damaged .rev, verify, backup and purge go on; purge keeps its chunks"
fresh
cp "$R/revisions/$B.rev" "$T/B.rev"
damage yaml "$R/revisions/$B.rev"
expect_rc 0 "$BACKY" -b "$R" verify --all
grep -q "revision $A: verified" "$T/out" && grep -q "revision $C: verified" "$T/out" || fail "verify: $(cat "$T/out")"
expect_rc 0 "$BACKY" -b "$R" backup daily
D=$("$BACKY" -b "$R" find 2>/dev/null)
[ "$D" != "$C" ] || fail "backup did not add a revision"
grep -q "^parent: $C" "$R/revisions/$D.rev" || fail "the new backup's parent is not $C: $(cat "$R/revisions/$D.rev")"
"$BACKY" -b "$R" forget -r "$A" >/dev/null 2>&1
"$BACKY" -b "$R" forget -r "$C" >/dev/null 2>&1
expect_rc 0 "$BACKY" -b "$R" purge
# Repairing the metadata brings B back whole: purge kept its chunks.
cp "$T/B.rev" "$R/revisions/$B.rev"
[ "$("$BACKY" -b "$R" restore -r "$B" - | sha)" = "$sha_b" ] || fail "purge deleted chunks of the damaged revision"
# An unreadable index refuses the purge instead of guessing.
damage yaml "$R/revisions/$B.rev"
echo junk >> "$R/revisions/$B.index"
expect_rc 1 "$BACKY" -b "$R" purge
grep -q "cannot purge.*$B" "$T/err" || fail "purge: $(cat "$T/err")"
# A damaged revision is forgotten by its id.
expect_rc 0 "$BACKY" -b "$R" forget -r "$B"
[ ! -e "$R/revisions/$B.rev" ] || fail "forget left the damaged .rev"
expect_rc 0 "$BACKY" -b "$R" status

log "item 8: nbdinfo --list in directory mode lists every healthy revision"
fresh
cp -a "$base" "$T/r/vm2"
damage yaml "$R/revisions/$B.rev"
serve_nbd "$T/r" "$T/s8"
timeout 30 nbdinfo --list "nbd+unix:///?socket=$T/s8" > "$T/list" || fail "nbdinfo --list failed: $(cat "$T/server.log")"
for e in "vm/$A" "vm/$C" "vm2/$A" "vm2/$B" "vm2/$C"; do
  grep -q "$e" "$T/list" || fail "export $e not listed: $(cat "$T/list")"
done
grep -q "vm/$B" "$T/list" && fail "the damaged revision is listed"
[ "$(nbdcopy "nbd+unix:///vm/$A?socket=$T/s8" - | sha)" = "$sha_a" ] || fail "vm/$A over NBD"
kill "$server"; wait "$server" 2>/dev/null || true

log "item 8: backy check warns about a damaged revision"
fresh
damage yaml "$R/revisions/$B.rev"
cat > "$T/check.conf" <<EOF
global: {base-dir: $T/r}
api: {token: test-token-$$}
schedules:
  s: {daily: {interval: 1d, keep: 5}}
jobs:
  vm: {schedule: s, source: {type: file, filename: $img}}
EOF
touch "$T/r/status"
expect_rc 1 "$BACKY" check -c "$T/check.conf"
head -1 "$T/out" | grep -q "^WARNING" || fail "check: $(cat "$T/out")"
grep -q "^vm: damaged revision $B: .*$B.rev" "$T/out" || fail "check does not name the damaged revision: $(cat "$T/out")"

log "item 13: data errors exit 1, not 2"
expect_rc 1 "$BACKY" -b /etc/passwd status
fresh
printf 'format: 1\nsource: [x]\n' > "$R/config"
expect_rc 1 "$BACKY" -b "$R" status
echo PASS
