#!/bin/bash
# qemu-img compares the export equal to the image, and unequal to a
# modified copy (so the comparison can fail).
source "$(dirname "$0")/functions.sh"
requires qemu-img
make_image
start_server --file "disk=$IMG"

qemu-img compare -f raw -F raw "$IMG" "$(uri)" || fail "export differs"
cp "$IMG" "$TMP/changed.img"
printf 'X' | dd of="$TMP/changed.img" bs=1 seek=3000000 conv=notrunc status=none
if qemu-img compare -q -f raw -F raw "$TMP/changed.img" "$(uri)"; then
  fail "qemu-img did not notice a changed byte"
fi
qemu-img info "$(uri)" | grep -q "virtual size: .*($(stat -c %s "$IMG") bytes)" ||
  fail "qemu-img info shows the wrong size"
