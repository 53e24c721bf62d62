#!/bin/bash
# Restoring a sparse image: runs of zero slots before, between and after
# the data slots (and a short last slot) come out right in a sparse file,
# on stdout and over NBD; a 1 TiB image with 12 MiB of data restores to a
# file that stays sparse and holds exactly the source's bytes.
. "$(dirname "$0")/lib.sh"

# put IMG MIB_OFFSET SEED: 1 MiB of random data at MIB_OFFSET MiB.
put() { rand_bytes "$3" 1 | dd of="$1" bs=1M seek="$2" conv=notrunc status=none; }

log "1 GiB + 12345 bytes, data in a few slots"
img=$T/small.img
truncate -s $((1024 * 1024 * 1024 + 12345)) "$img"
put "$img" 5 1        # slot 1
put "$img" 500 2      # the middle
put "$img" 501 3      # the same slot, another MiB of it
printf 'tail' | dd of="$img" bs=1 seek=$((1024 * 1024 * 1024 + 100)) conv=notrunc status=none
"$BACKY" -b "$T/small" init file "$img" >/dev/null
"$BACKY" -b "$T/small" backup daily >/dev/null
"$BACKY" -b "$T/small" restore "$T/small.out"
cmp "$img" "$T/small.out" || fail "restored file differs"
used=$(du -k "$T/small.out" | cut -f1)
[ "$used" -lt 20480 ] || fail "restored file is not sparse: $used KiB used"
"$BACKY" -b "$T/small" restore - | cmp - "$img" || fail "stdout stream differs"

log "1 TiB, 12 MiB of data at scattered offsets"
big=$T/big.img
truncate -s 1T "$big" 2>/dev/null || { echo "SKIP: no 1 TiB sparse files in $T" >&2; exit 77; }
for i in $(seq 0 11); do put "$big" $((i * 87381 + 3)) $((10 + i)); done
"$BACKY" -b "$T/big" init file "$big" >/dev/null
"$BACKY" -b "$T/big" backup daily >/dev/null
"$BACKY" -b "$T/big" restore "$T/big.out"
[ "$(stat -c %s "$T/big.out")" = "$(stat -c %s "$big")" ] || fail "restored size differs"
used=$(du -k "$T/big.out" | cut -f1)
[ "$used" -lt 65536 ] || fail "restored 1 TiB file is not sparse: $used KiB used"
# Equal when each file's data extents hold the same bytes in the other
# (everything else is a hole in both, and reads as zeros).
cat >"$T/same_data.py" <<'PY'
import os, sys

def extents(fd):
    size, pos = os.fstat(fd).st_size, 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end

a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
checked = 0
for x, y in ((a, b), (b, a)):
    for start, end in extents(x):
        for off in range(start, end, 1 << 20):
            n = min(1 << 20, end - off)
            if os.pread(x, n, off) != os.pread(y, n, off):
                sys.exit(f"differs at {off}")
            checked += n
if checked < 2 * 12 << 20:
    sys.exit(f"only {checked} bytes of data found")
PY
/usr/bin/python3 "$T/same_data.py" "$big" "$T/big.out" || fail "restored 1 TiB file differs"

log "the 1 TiB revision over NBD"
if command -v nbdcopy >/dev/null; then
  sock=$T/nbd.sock
  serve_nbd "$T/big" "$sock"
  nbdcopy "nbd+unix:///?socket=$sock" "$T/nbd.out"
  /usr/bin/python3 "$T/same_data.py" "$big" "$T/nbd.out" || fail "nbdcopy of the 1 TiB revision differs"
fi
