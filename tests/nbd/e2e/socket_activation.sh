#!/bin/bash
# systemd-style socket activation: nbdinfo -- [ server ] passes a listening
# socket in LISTEN_FDS; the empty export name opens the default export.
source "$(dirname "$0")/functions.sh"
requires nbdinfo nbdcopy sha256sum
make_image
out="$(nbdinfo --size -- [ "$NBD_TEST_SERVER" --file "disk=$IMG" ])"
[ "$out" = "$(stat -c %s "$IMG")" ] || fail "size $out"
got="$(nbdcopy -- [ "$NBD_TEST_SERVER" --file "disk=$IMG" ] - | sha256sum)"
[ "$got" = "$(sha256sum < "$IMG")" ] || fail "content differs"
