#!/bin/bash
# nbd-client -l lists the exports over TCP (the kernel module is not
# needed for the handshake).
source "$(dirname "$0")/functions.sh"
requires nbd-client /usr/bin/python3
make_image
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$NBD_TEST_SERVER" --host 127.0.0.1 --port "$port" --file "disk=$IMG" \
  --file "other=$IMG" 2>"$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 1 200); do
  nbdinfo --size "nbd://127.0.0.1:$port/disk" >/dev/null 2>&1 && break
  sleep 0.05
done
out="$(nbd-client -l 127.0.0.1 "$port")"
echo "$out"
grep -q '^disk\b' <<<"$out" || fail "disk not listed"
grep -q '^other\b' <<<"$out" || fail "other not listed"
