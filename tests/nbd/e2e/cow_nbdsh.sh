#!/bin/bash
# --cow: a client can write; it reads its own writes; other connections and
# later connections see the original image, which stays unchanged.
source "$(dirname "$0")/functions.sh"
requires nbdsh qemu-img sha256sum
make_image
before="$(sha256sum < "$IMG")"
start_server --file "disk=$IMG" --cow

nbdsh -u "$(uri)" -c '
assert not h.is_read_only()
assert not h.can_multi_conn()
assert h.can_zero() and h.can_trim() and h.can_flush()
orig = h.pread(8192, 1000)
h.pwrite(b"hello world" * 100, 1000)
assert h.pread(1100, 1000) == b"hello world" * 100
h.zero(65536, 3 * 1024 * 1024)
assert h.pread(4096, 3 * 1024 * 1024 + 100) == bytes(4096)
h.trim(4096, 0)
h.flush()

# A second connection meanwhile sees the original data.
import nbd
h2 = nbd.NBD()
h2.connect_uri(h.get_uri())
assert h2.pread(1100, 1000) != b"hello world" * 100
h2.shutdown()
'
qemu-img compare -f raw -F raw "$IMG" "$(uri)" || fail "overlay survived disconnect"
[ "$(sha256sum < "$IMG")" = "$before" ] || fail "the image itself was modified"
