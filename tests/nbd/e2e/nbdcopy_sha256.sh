#!/bin/bash
# nbdcopy streams the export byte-for-byte (several connections, since the
# export allows multi-conn), and to null: without errors.
source "$(dirname "$0")/functions.sh"
requires nbdcopy sha256sum
make_image
start_server --file "disk=$IMG"

want="$(sha256sum < "$IMG" | cut -d' ' -f1)"
for conns in 1 4; do
  got="$(nbdcopy --connections="$conns" "$(uri)" - | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$want" ] || fail "sha256 with $conns connections: $got != $want"
done
nbdcopy --request-size=4096 --requests=64 "$(uri)" "$TMP/copy.img"
cmp "$IMG" "$TMP/copy.img" || fail "4 KiB-request copy differs"
nbdcopy "$(uri)" null: || fail "copy to null: failed"
