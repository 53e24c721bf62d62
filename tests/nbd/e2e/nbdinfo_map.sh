#!/bin/bash
# nbdinfo --map shows exactly the all-zero 4 KiB blocks of the image as
# holes (type 3 = hole,zero) and everything else as data (type 0).
source "$(dirname "$0")/functions.sh"
requires nbdinfo jq /usr/bin/python3
make_image
start_server --file "disk=$IMG"

nbdinfo --map --json "$(uri)" |
  jq -r '.[] | "\(.offset) \(.length) \(.type)"' > "$TMP/got"
/usr/bin/python3 - "$IMG" > "$TMP/want" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
runs = []
for off in range(0, len(data), 4096):
    block = data[off:off + 4096]
    kind = 3 if block.count(0) == len(block) else 0
    if runs and runs[-1][2] == kind:
        runs[-1][1] += len(block)
    else:
        runs.append([off, len(block), kind])
for off, length, kind in runs:
    print(off, length, kind)
PY
cat "$TMP/got"
grep -q ' 3$' "$TMP/want" || fail "test image has no holes"
diff -u "$TMP/want" "$TMP/got" || fail "map differs from the image"
