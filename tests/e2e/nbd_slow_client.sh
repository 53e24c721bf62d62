#!/bin/bash
# A client that pipelines many large reads and then reads its socket slowly:
# the server's socket fills, so replies it was sending straight from chunk
# files (sendfile) must be finished from copies, and later ones queued. Every
# byte must still equal the image; a client that hangs up with replies
# pending must not disturb the server.
. "$(dirname "$0")/lib.sh"
requires openssl /usr/bin/python3
/usr/bin/python3 -c "import nbd" 2>/dev/null || { echo "SKIP: python3-libnbd missing" >&2; exit 77; }

img=$T/vm.img
rand_bytes slow1 64 > "$img"    # random: raw chunk blocks, sent with sendfile
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily

sock=$T/nbd.sock
serve_nbd "$T/repo" "$sock"
uri="nbd+unix:///last?socket=$sock"

cat > "$T/slow.py" <<'PY'
import random, sys, time
import nbd

uri, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
h = nbd.NBD()
h.connect_uri(uri)
random.seed(7)
n, length = 48, 1 << 20
size = h.get_size()
offs = [random.randrange(0, size - length - 8) + (7 if i % 3 == 0 else 0)
        for i in range(n)]
bufs = [nbd.Buffer(length) for _ in range(n)]
for i in range(n):
    h.aio_pread(bufs[i], offs[i])
time.sleep(1.0)              # the server's socket fills meanwhile
if mode == "abort":
    sys.exit(0)              # hang up with replies pending
while h.aio_in_flight() > 0:
    h.poll(-1)
    time.sleep(0.005)        # drain slowly
bad = 0
with open(path, "rb") as f:
    for i in range(n):
        f.seek(offs[i])
        if bufs[i].to_bytearray() != f.read(length):
            bad += 1
print(f"{n} reads of {length} bytes, {bad} wrong")
sys.exit(1 if bad else 0)
PY

# Warm the page cache (the zero-copy path serves data in memory).
nbdcopy "$uri" - | sha >/dev/null || fail "nbdcopy"
/usr/bin/python3 "$T/slow.py" "$uri" "$img" abort || fail "aborting client"
/usr/bin/python3 "$T/slow.py" "$uri" "$img" check || fail "slow client got wrong data"
/usr/bin/python3 "$T/slow.py" "$uri" "$img" check || fail "slow client got wrong data (2)"
[ "$(nbdcopy "$uri" - | sha)" = "$(sha < "$img")" ] || fail "server stopped serving correctly"
kill -0 $server || fail "server died"
echo "slow and vanishing clients: ok"
