#!/bin/bash
# nbd-server --tls-certificates --tls-verify-peer: only clients with a
# certificate signed by ca-cert.pem get in. alice's certificate works with
# nbdinfo, nbdcopy, qemu-img and nbd-client, and the log names her CN;
# no client certificate, or one from another CA (mallory), fails the
# handshake, leaves no data with the client, is logged, and the server
# serves the next client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires certtool nbdinfo nbdcopy qemu-img

make_pki "$T/pki"
make_mixed_repo
CL=$T/pki/client

start_backy --tls-certificates "$T/pki/server" --tls-verify-peer
u="nbds://localhost:$port"

out=$(bounded nbdinfo "$u/$REV1?tls-certificates=$CL") || fail "nbdinfo with alice's certificate"
grep -q "export-size: 25165824" <<<"$out" || fail "nbdinfo: $out"
[ "$(bounded nbdcopy "$u/$REV1?tls-certificates=$CL" - | sha)" = "$SHA1" ] ||
  fail "nbdcopy with alice's certificate differs from restore"
bounded qemu-img compare --object "tls-creds-x509,id=tls0,dir=$CL,endpoint=client" \
  --image-opts "driver=file,filename=$T/rev1.img" \
  "driver=nbd,server.type=inet,server.host=localhost,server.port=$port,export=$REV1,tls-creds=tls0" ||
  fail "qemu-img compare with alice's certificate"
grep -q "TLS 'alice'.*export '$REV1'" "$slog" ||
  fail "the log does not name alice (the certificate's CN): $(cat "$slog")"

# refused WHO DIR: nbdinfo, nbdcopy and qemu-img with DIR's credentials fail
# and get no data; the server stays up.
refused() {
  local who=$1 dir=$2
  if bounded nbdinfo "$u/$REV1?tls-certificates=$dir" >"$T/out" 2>&1; then
    fail "nbdinfo $who got in: $(cat "$T/out")"
  fi
  grep -q "export-size" "$T/out" && fail "nbdinfo $who learnt the size: $(cat "$T/out")"
  if bounded nbdinfo --list "$u/?tls-certificates=$dir" >"$T/out" 2>&1; then
    fail "nbdinfo --list $who got in"
  fi
  grep -q "$REV0" "$T/out" && fail "nbdinfo --list $who saw $REV0"
  [ -z "$(bounded nbdcopy "$u/$REV1?tls-certificates=$dir" - 2>/dev/null | head -c 1)" ] ||
    fail "nbdcopy $who got data"
  if bounded qemu-img info --object "tls-creds-x509,id=tls0,dir=$dir,endpoint=client" \
    --image-opts "driver=nbd,server.type=inet,server.host=localhost,server.port=$port,export=$REV1,tls-creds=tls0" \
    >/dev/null 2>&1; then
    fail "qemu-img $who got in"
  fi
  if bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" tls --ca "$dir/ca-cert.pem" \
    ${3:+--cert "$dir"} --export "$REV1" >"$T/out" 2>&1; then
    fail "raw TLS client $who got in: $(cat "$T/out")"
  fi
  grep -q "^read:" "$T/out" && fail "raw TLS client $who read data"
  alive
  [ "$(bounded nbdcopy "$u/$REV1?tls-certificates=$CL" - | sha)" = "$SHA1" ] ||
    fail "alice cannot read after $who was refused"
}
refused "without a client certificate" "$T/pki/anon"
refused "with a certificate from another CA" "$T/pki/rogue" cert
grep -Eqi "mallory|handshake|certificate" "$slog" ||
  fail "the refused handshakes are not logged: $(cat "$slog")"

if command -v nbd-client >/dev/null; then
  bounded nbd-client -l localhost "$port" -cacertfile "$CL/ca-cert.pem" \
    -certfile "$CL/client-cert.pem" -keyfile "$CL/client-key.pem" >"$T/nbdc" 2>&1 ||
    fail "nbd-client -l with alice's certificate: $(cat "$T/nbdc")"
  grep -q "$REV1" "$T/nbdc" || fail "nbd-client -l lacks $REV1: $(cat "$T/nbdc")"
  if bounded nbd-client -l localhost "$port" -cacertfile "$CL/ca-cert.pem" \
    -certfile "$T/pki/rogue/client-cert.pem" -keyfile "$T/pki/rogue/client-key.pem" \
    >"$T/nbdc" 2>&1 && grep -q "$REV1" "$T/nbdc"; then
    fail "nbd-client -l with mallory's certificate listed: $(cat "$T/nbdc")"
  fi
  alive
fi
stop_backy

echo PASS
