#!/bin/bash
# nbd-server --tls-certificates (x509, TLS required by default) with the
# clients users have, over TCP and a Unix socket: nbdinfo (show, --list),
# nbdcopy (sha256 equal to `backy restore -r REV -`), qemu-img info and
# compare and qemu-io read -P through --object tls-creds-x509, and
# nbd-client -l with -cacertfile/-certfile/-keyfile. Every client must
# report TLS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires certtool nbdinfo nbdcopy qemu-img qemu-io

make_pki "$T/pki"
make_mixed_repo
CA=$T/pki/anon      # trusts the server's CA, has no client certificate
CL=$T/pki/client    # ... and a client certificate (CN alice)

log "TCP"
start_backy --tls-certificates "$T/pki/server"
check_libnbd "nbds://localhost:$port" "tls-certificates=$CA"
# By address: the certificate's IP SAN; with a client certificate.
check_libnbd "nbds://127.0.0.1:$port" "tls-certificates=$CL"
check_qemu "tls-creds-x509,id=tls0,dir=$CA,endpoint=client" "server.type=inet,server.host=localhost,server.port=$port"
# The log marks TLS (its other fields: nbd_tls_log.sh).
grep -q "TLS.*export '$REV1'" "$slog" || fail "the log lacks a TLS read of $REV1: $(cat "$slog")"

if command -v nbd-client >/dev/null; then
  bounded nbd-client -l localhost "$port" -cacertfile "$CA/ca-cert.pem" \
    -certfile "$CL/client-cert.pem" -keyfile "$CL/client-key.pem" \
    >"$T/nbdc" 2>&1 || fail "nbd-client -l over TLS: $(cat "$T/nbdc")"
  grep -q "$REV0" "$T/nbdc" || fail "nbd-client -l lacks $REV0: $(cat "$T/nbdc")"
  grep -q "$REV1" "$T/nbdc" || fail "nbd-client -l lacks $REV1: $(cat "$T/nbdc")"
  # nbd-client must check the certificate: one from another CA fails.
  if bounded nbd-client -l localhost "$port" \
    -cacertfile "$T/pki/other-trust/ca-cert.pem" >"$T/nbdc" 2>&1 &&
    grep -q "$REV0" "$T/nbdc"; then
    fail "nbd-client listed with a CA that did not sign the server"
  fi
else
  log "nbd-client not installed: its part skipped"
fi
# A raw client over TLS: LIST, a second STARTTLS refused, GO, a read.
bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" tls --ca "$CA/ca-cert.pem" \
  --export "$REV1" --expect "$T/rev1.img" || fail "raw TLS client"
alive
stop_backy

log "Unix socket"
sock=$T/nbd.sock
start_backy --socket "$sock" --tls-certificates "$T/pki/server"
check_libnbd "nbds+unix://" "socket=$sock&tls-certificates=$CA"
# qemu checks the certificate against tls-hostname (no host in a socket path).
check_qemu "tls-creds-x509,id=tls0,dir=$CA,endpoint=client" "server.type=unix,server.path=$sock,tls-hostname=localhost"
bounded python3 "$RAW_CLIENT" "unix:$sock" tls --ca "$CA/ca-cert.pem" \
  --export "$REV1" --expect "$T/rev1.img" || fail "raw TLS client on the socket"
alive
stop_backy
echo PASS
