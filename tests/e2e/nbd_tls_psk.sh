#!/bin/bash
# nbd-server --tls-psk (psktool's key file, TLS required by default) with
# the clients users have, over TCP and a Unix socket: nbdinfo and nbdcopy
# (tls-psk-file=, the username in the URI), qemu-img and qemu-io through
# --object tls-creds-psk. Each client holds only its own key; the server
# log names the PSK user and never the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires psktool nbdinfo nbdcopy qemu-img qemu-io

make_mixed_repo
make_psk "$T/server.psk" alice bob
mkdir -m 0700 "$T/alice" "$T/bob"
grep '^alice:' "$T/server.psk" > "$T/alice/keys.psk"   # qemu wants DIR/keys.psk
grep '^bob:' "$T/server.psk" > "$T/bob/keys.psk"
chmod 0600 "$T"/*/keys.psk

log "TCP"
start_backy --tls-psk "$T/server.psk"
check_libnbd "nbds://alice@localhost:$port" "tls-psk-file=$T/alice/keys.psk"
check_libnbd "nbds://bob@127.0.0.1:$port" "tls-psk-file=$T/bob/keys.psk"
check_qemu "tls-creds-psk,id=tls0,dir=$T/alice,username=alice,endpoint=client" \
  "server.type=inet,server.host=127.0.0.1,server.port=$port"
grep -q "TLS 'alice'.*export '$REV1'" "$slog" || fail "the log lacks alice's read of $REV1: $(cat "$slog")"
grep -q "TLS 'bob'" "$slog" || fail "the log lacks bob: $(cat "$slog")"
for u in alice bob; do
  key=$(grep "^$u:" "$T/server.psk" | cut -d: -f2)
  grep -qi "$key" "$slog" && fail "the log shows $u's key"
done
alive
stop_backy

log "Unix socket"
sock=$T/nbd.sock
start_backy --socket "$sock" --tls-psk "$T/server.psk"
check_libnbd "nbds+unix://alice@" "socket=$sock&tls-psk-file=$T/alice/keys.psk"
check_qemu "tls-creds-psk,id=tls0,dir=$T/bob,username=bob,endpoint=client" \
  "server.type=unix,server.path=$sock"
grep -q "TLS 'bob'.*export '$REV1'" "$slog" || fail "the log lacks bob's read over the socket: $(cat "$slog")"
alive
stop_backy
echo PASS
