#!/bin/bash
# The NBD server's disk cache (issue 14): with no memory cache, random reads
# of a compressed revision are exact, also once served from the unnamed
# block file; the file leaves no name behind; a --disk-cache-dir that cannot
# hold it is an error naming it, the default place only a warning.
. "$(dirname "$0")/lib.sh"
requires nbdinfo
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd" >&2; exit 77; }

img=$T/vm.img
repo=$T/repo
# 16 MiB of compressible text: every chunk is zstd blocks.
/usr/bin/python3 "$BACKY_SOURCE_DIR/tests/bench/gen_image.py" text "$img" 16 e2e >/dev/null
"$BACKY" -b "$repo" init file "$img"
"$BACKY" -b "$repo" backup daily 2>/dev/null
mkdir -m 0700 "$T/dc"
sock=$T/nbd.sock
serve_nbd "$repo" "$sock" --cache-size 0 --disk-cache-size 16M --disk-cache-dir "$T/dc"
[ -S "$sock" ] || fail "the server did not start: $(cat "$T/server.log")"

log "random reads, twice over the same blocks, equal the image"
/usr/bin/python3 - "$sock" "$img" <<'PY' || fail "reads through the disk cache differ"
import random, sys, nbd
sock, img = sys.argv[1:]
want = open(img, 'rb').read()
h = nbd.NBD()
h.connect_unix(sock)
r = random.Random(7)
offs = [r.randrange(0, len(want) - 4096) for _ in range(300)]
for o in offs + offs:
    if h.pread(4096, o) != want[o:o + 4096]:
        sys.exit('mismatch at %d' % o)
h.shutdown()
PY
[ -z "$(ls -A "$T/dc")" ] || fail "the disk cache left a name: $(ls -A "$T/dc")"
grep -q "disk cache" "$T/server.log" && fail "warning: $(cat "$T/server.log")"

log "a --disk-cache-dir that does not exist is an error naming it"
rc=0
err=$(timeout 10 "$BACKY" -b "$repo" nbd-server --socket "$T/s2" --disk-cache-dir "$T/nope" 2>&1) || rc=$?
[ $rc = 1 ] || fail "exit $rc: $err"
echo "$err" | grep -q -- "--disk-cache-dir.*$T/nope" || fail "message: $err"
log "refused: $err"

log "the default place unusable: a warning, and the server serves"
TMPDIR=$T/nope "$BACKY" -b "$repo" nbd-server --socket "$T/s3" 2>"$T/s3.log" &
pid=$!
CLEANUPS+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null")
for _ in $(seq 50); do [ -S "$T/s3" ] && break; sleep 0.1; done
[ "$(nbdinfo --size "nbd+unix:///?socket=$T/s3")" = "$(stat -c %s "$img")" ] || fail "not served"
grep -q "no disk cache" "$T/s3.log" || fail "no warning: $(cat "$T/s3.log")"
echo PASS
