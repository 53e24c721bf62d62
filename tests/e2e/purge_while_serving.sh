#!/bin/bash
# Purge while readers run (issue 12): a libnbd client reads a revision from
# `backy nbd-server`, the revision is forgotten, `backy purge` succeeds
# meanwhile and keeps its chunks, and the client goes on reading exact
# data; once it disconnects, purge frees them. kill -9 of the server, and of
# a restore, leaves a stale pin that the next purge removes. A restore
# reading a revision forgotten and purged under it still writes it whole.
. "$(dirname "$0")/lib.sh"
requires openssl nbdinfo
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd" >&2; exit 77; }

img=$T/vm.img
repo=$T/repo
chunks() { find "$repo/chunks" -name '*.chunk' | wc -l; }
pins() { find "$repo/pins" -name '*.pin' 2>/dev/null | wc -l; }
pins_are() { [ "$(pins)" = "$1" ]; }
# wait_for CMD...: until CMD succeeds (bounded: 20 s).
wait_for() {
  for _ in $(seq 200); do "$@" && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}

# Three revisions sharing no chunk: 12 MiB (3 chunks) each.
rand_bytes pin1 12 > "$img"
"$BACKY" -b "$repo" init file "$img"
for n in 1 2 3; do
  rand_bytes "pin$n" 12 > "$img"
  "$BACKY" -b "$repo" backup daily 2>/dev/null
done
read -r r1 r2 r3 <<<"$(rev_ids "$repo" | tr '\n' ' ')"
for id in $r1 $r2 $r3; do "$BACKY" -b "$repo" restore -r "$id" "$T/$id.img"; done
[ "$(chunks)" = 9 ] || fail "expected 9 chunks, found $(chunks)"

sock=$T/nbd.sock
serve_nbd "$repo" "$sock"

# client EXPORT: opens the export, checks its first 4 MiB against
# $T/EXPORT.img, touches $T/read-1, waits for $T/go, then checks all of it
# (reading twice as much as before, from the start) and disconnects.
client() {
  /usr/bin/python3 - "$1" "$sock" "$T" <<'EOF'
import os, sys, time, nbd
export, sock, t = sys.argv[1:]
want = open(os.path.join(t, export + '.img'), 'rb').read()
h = nbd.NBD()
h.set_export_name(export)
h.connect_unix(sock)
step = 1 << 20
def check(start, end):
    for o in range(start, end, step):
        n = min(step, end - o)
        if h.pread(n, o) != want[o:o + n]:
            sys.exit('%s: mismatch at %d' % (export, o))
check(0, 4 << 20)
open(os.path.join(t, 'read-1'), 'w').close()
deadline = time.time() + 60
while not os.path.exists(os.path.join(t, 'go')):
    if time.time() > deadline:
        sys.exit('no go')
    time.sleep(0.05)
check(0, len(want))
h.shutdown()
EOF
}

log "a client reads r1; r1 is forgotten and purged meanwhile"
client "$r1" 2>"$T/client.err" &
cl=$!
wait_for test -e "$T/read-1"
[ "$(pins)" = 1 ] || fail "the open export holds $(pins) pins, not 1"
"$BACKY" -b "$repo" forget -r "$r1"
"$BACKY" -b "$repo" purge | tee "$T/purge.out" || fail "purge failed while a server runs"
grep -q "freed 0 of 9 chunks" "$T/purge.out" || fail "purge freed chunks of the served revision"
grep -q "pins: 1 live, of 1 revision(s) (1 forgotten" "$T/purge.out" || fail "purge output: $(cat "$T/purge.out")"
[ "$(chunks)" = 9 ] || fail "chunks of the served revision were deleted"
touch "$T/go"
wait $cl || fail "the client read wrong data after the purge: $(cat "$T/client.err")"
rm -f "$T/go" "$T/read-1"

log "once the client is gone, purge frees r1's chunks"
wait_for pins_are 0
before=$(du -sk "$repo/chunks" | cut -f1)
"$BACKY" -b "$repo" purge | tee "$T/purge.out"
grep -q "freed 3 of 9 chunks, 12 MiB" "$T/purge.out" || fail "purge after disconnect: $(cat "$T/purge.out")"
[ "$(chunks)" = 6 ] || fail "expected 6 chunks, found $(chunks)"
after=$(du -sk "$repo/chunks" | cut -f1)
[ "$after" -lt "$before" ] || fail "du did not shrink: $before KiB -> $after KiB"

log "kill -9 of the server while it serves r2: the next purge is not blocked"
client "$r2" 2>"$T/client.err" &
cl=$!
wait_for test -e "$T/read-1"
kill -9 "$server"
wait "$server" 2>/dev/null || true
touch "$T/go"
wait $cl 2>/dev/null || true  # its server is gone
[ "$(pins)" = 1 ] || fail "expected the killed server's pin to be left, found $(pins)"
"$BACKY" -b "$repo" forget -r "$r2"
"$BACKY" -b "$repo" purge --dry-run | tee "$T/purge.out"
grep -q "would remove 1 stale" "$T/purge.out" || fail "dry run: $(cat "$T/purge.out")"
[ "$(pins)" = 1 ] || fail "the dry run removed a pin"
"$BACKY" -b "$repo" purge | tee "$T/purge.out"
grep -q "freed 3 of 6 chunks" "$T/purge.out" || fail "purge after kill -9: $(cat "$T/purge.out")"
grep -q "pins: 0 live.*removed 1 stale" "$T/purge.out" || fail "stale pin: $(cat "$T/purge.out")"
[ -z "$(ls -A "$repo/pins")" ] || fail "pins/ not empty: $(ls -A "$repo/pins")"
rm -f "$T/read-1" "$T/go"

log "a restore reads r3 whole while r3 is forgotten and purged under it"
rand_bytes pin4 12 > "$img"
"$BACKY" -b "$repo" backup daily 2>/dev/null
BACKY_TEST_HOOK=restore-pinned:sleep=3 "$BACKY" -b "$repo" restore -r "$r3" "$T/during.img" 2>"$T/restore.err" &
rs=$!
wait_for pins_are 1
"$BACKY" -b "$repo" forget -r "$r3"
"$BACKY" -b "$repo" purge | tee "$T/purge.out"
grep -q "freed 0 of 6 chunks" "$T/purge.out" || fail "purge freed the restore's chunks: $(cat "$T/purge.out")"
wait $rs || fail "restore failed: $(cat "$T/restore.err")"
cmp "$T/during.img" "$T/$r3.img" || fail "the restore differs"
"$BACKY" -b "$repo" purge | grep -q "freed 3 of 6 chunks" || fail "r3's chunks not freed after the restore"

log "kill -9 of a restore: its pin is stale and removed"
r4=$("$BACKY" -b "$repo" find -r last)
BACKY_TEST_HOOK=restore-pinned:sleep=30 "$BACKY" -b "$repo" restore -r "$r4" "$T/killed.img" 2>/dev/null &
rs=$!
wait_for pins_are 1
"$BACKY" -b "$repo" purge | grep -q "pins: 1 live" || fail "the restore's pin is not live"
kill -9 $rs
wait $rs 2>/dev/null || true
"$BACKY" -b "$repo" purge | tee "$T/purge.out"
grep -q "freed 0 of 3 chunks.*" "$T/purge.out" || fail "purge after a killed restore: $(cat "$T/purge.out")"
grep -q "removed 1 stale" "$T/purge.out" || fail "the killed restore's pin: $(cat "$T/purge.out")"
[ "$(pins)" = 0 ] || fail "stale pin left"
[ "$("$BACKY" -b "$repo" restore -r "$r4" - | sha)" = "$(sha < "$img")" ] || fail "r4 damaged"
echo PASS
