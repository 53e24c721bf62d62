#!/bin/bash
# TLS with x509 certificates (made with certtool, qemu's directory layout):
# nbdinfo and qemu-img compare read exact data; with --tls-verify-peer a
# client certificate from our CA is the identity (its common name, in the
# connection log), one from another CA or none at all is refused and logged;
# a missing server key and --tls-verify-peer without ca-cert.pem are
# one-line startup errors naming the file.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/../../support/tls_credentials.sh"
requires nbdinfo qemu-img certtool
make_image
make_x509 "$TMP/pki" alice
make_x509 "$TMP/other" mallory
mkdir "$TMP/intruder"  # our CA to check the server, another CA's client cert
cp "$TMP/pki/ca-cert.pem" "$TMP/intruder/"
cp "$TMP/other/client-cert.pem" "$TMP/other/client-key.pem" "$TMP/intruder/"
mkdir "$TMP/anonymous"  # no client certificate at all
cp "$TMP/pki/ca-cert.pem" "$TMP/anonymous/"

tls_uri() { echo "nbds+unix:///disk?socket=$SOCK&tls-certificates=$1"; }

# Without --tls-verify-peer: encrypted, no client identity.
start_server --tls-certificates "$TMP/pki" --log-connections \
  --file "disk=$IMG" >"$TMP/conn.log"
out=$(nbdinfo "$(tls_uri "$TMP/anonymous")") || fail "nbdinfo over x509"
grep -q "with TLS" <<<"$out" || fail "not TLS: $out"
qemu-img compare --image-opts "driver=file,filename=$IMG" \
  --object "tls-creds-x509,id=tls0,endpoint=client,dir=$TMP/anonymous" \
  "driver=nbd,path=$SOCK,export=disk,tls-creds=tls0,tls-hostname=localhost" ||
  fail "qemu-img compare over x509"
kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
grep -q "TLS (no client identity), export 'disk', opened" "$TMP/conn.log" ||
  fail "no anonymous TLS line: $(cat "$TMP/conn.log")"

# --tls-verify-peer: our client certificate only.
start_server --tls-certificates "$TMP/pki" --tls-verify-peer \
  --log-connections --file "disk=$IMG" >"$TMP/conn.log"
got=$(nbdcopy "$(tls_uri "$TMP/pki")" - | sha256sum)
[ "$got" = "$(sha256sum < "$IMG")" ] || fail "nbdcopy with a client certificate"
if nbdinfo "$(tls_uri "$TMP/intruder")" >/dev/null 2>&1; then
  fail "client certificate of another CA accepted"
fi
if nbdinfo "$(tls_uri "$TMP/anonymous")" >/dev/null 2>&1; then
  fail "client without a certificate accepted"
fi
nbdinfo "$(tls_uri "$TMP/pki")" >/dev/null || fail "server stopped serving"
kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
log=$(cat "$TMP/conn.log")
grep -q "TLS 'alice', export 'disk', [0-9]* bytes read" <<<"$log" ||
  fail "certificate CN not the identity: $log"
grep -q "refused certificate CN=mallory.*issuer is unknown" <<<"$log" ||
  fail "other CA's certificate not logged: $log"
grep -q "ended: TLS handshake failed: .*[Cc]ertificate is required" <<<"$log" ||
  fail "missing client certificate not logged: $log"

bad() {  # PATTERN ARGS...
  local pattern=$1 err rc=0
  shift
  err=$("$NBD_TEST_SERVER" --socket "$TMP/bad.sock" "$@" --file "disk=$IMG" 2>&1) || rc=$?
  [ $rc = 1 ] || fail "server with $*: exit $rc: $err"
  [ "$(wc -l <<<"$err")" = 1 ] || fail "more than one line: $err"
  grep -Eq -- "$pattern" <<<"$err" || fail "error for $* does not match /$pattern/: $err"
}
cp -r "$TMP/pki" "$TMP/nokey"; rm "$TMP/nokey/server-key.pem"
bad "No such file.*nokey/server-key.pem" --tls-certificates "$TMP/nokey"
cp -r "$TMP/pki" "$TMP/noca"; rm "$TMP/noca/ca-cert.pem"
bad "verify-peer.*noca/ca-cert.pem" --tls-certificates "$TMP/noca" --tls-verify-peer
cp -r "$TMP/pki" "$TMP/mismatch"; cp "$TMP/other/server-key.pem" "$TMP/mismatch/"
bad "bad server certificate or key.*mismatch/server-cert.pem" --tls-certificates "$TMP/mismatch"
cp -r "$TMP/pki" "$TMP/garbled"; echo garbage > "$TMP/garbled/server-cert.pem"
bad "bad server certificate or key.*garbled/server-cert.pem" --tls-certificates "$TMP/garbled"
bad "needs --tls-certificates" --tls-psk /dev/null --tls-verify-peer
bad "--tls off" --tls off --tls-certificates "$TMP/pki"
bad "needs --tls-certificates or --tls-psk" --tls require
echo "PASS"
