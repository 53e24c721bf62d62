#!/bin/bash
# TLS with a PSK file (psktool's format): nbdinfo and nbdcopy over
# nbds+unix:// read exact data; TLS is required once credentials are given
# (a plaintext client gets nothing); a wrong key and an unknown user are
# refused and logged with the username they tried; the connection log names
# the PSK identity and the bytes read; the socket is created 0600; bad PSK
# files are one-line startup errors naming the file, never showing a key.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/../../support/tls_credentials.sh"
requires nbdinfo nbdcopy psktool sha256sum
make_image
make_psk "$TMP/keys.psk" alice bob
key=$(grep '^alice:' "$TMP/keys.psk" | cut -d: -f2)

# nbd_test_server logs (spdlog's default logger) to stdout.
start_server --tls-psk "$TMP/keys.psk" --log-connections --file "disk=$IMG" \
  >"$TMP/conn.log"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK")"
tls_uri() { echo "nbds+unix://$1@/disk?socket=$SOCK&tls-psk-file=$2"; }

out=$(nbdinfo "$(tls_uri alice "$TMP/keys.psk")")
grep -q "with TLS" <<<"$out" || fail "not TLS: $out"
got=$(nbdcopy "$(tls_uri bob "$TMP/keys.psk")" - | sha256sum)
[ "$got" = "$(sha256sum < "$IMG")" ] || fail "nbdcopy over TLS differs"

# Plaintext: refused (TLS_REQD), no export listed or opened.
if nbdinfo "$(uri disk)" >/dev/null 2>&1; then fail "plaintext client served"; fi
if nbdinfo --list "nbd+unix:///?socket=$SOCK" 2>/dev/null | grep -q disk; then
  fail "plaintext client listed exports"
fi

# Wrong key for alice; a user the file does not have.
echo "alice:$(printf '%s' "$key" | tr 0-9a-f 1-9a-f0)" > "$TMP/wrong.psk"
chmod 600 "$TMP/wrong.psk"
if nbdinfo "$(tls_uri alice "$TMP/wrong.psk")" >/dev/null 2>&1; then
  fail "wrong PSK accepted"
fi
echo "mallory:$key" > "$TMP/mallory.psk"
chmod 600 "$TMP/mallory.psk"
if nbdinfo "$(tls_uri mallory "$TMP/mallory.psk")" >/dev/null 2>&1; then
  fail "unknown PSK user accepted"
fi
nbdinfo "$(tls_uri alice "$TMP/keys.psk")" >/dev/null || fail "server stopped serving"

kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
log=$(cat "$TMP/conn.log")
grep -q "TLS 'alice', export 'disk', opened" <<<"$log" || fail "no open line for alice: $log"
# nbdcopy skips the zero extents (block status): less than the size.
grep -Eq "TLS 'bob', export 'disk', [1-9][0-9]{6} bytes read in .*ended: NBD_CMD_DISC" <<<"$log" ||
  fail "no end line for bob's nbdcopy: $log"
grep -q "refused PSK user 'alice'.*TLS handshake failed" <<<"$log" || fail "wrong key not logged: $log"
grep -q "refused PSK user 'mallory'.*TLS handshake failed" <<<"$log" || fail "unknown user not logged: $log"
grep -q "uid $(id -u) pid [0-9]" <<<"$log" || fail "peer credentials not logged"
! grep -q "$key" "$TMP/conn.log" "$TMP/server.log" || fail "a PSK key is in the log"

# Bad PSK files: one line naming the file, exit 1, no key in the message.
bad() {  # FILE PATTERN
  local err rc=0
  err=$("$NBD_TEST_SERVER" --socket "$TMP/bad.sock" --tls-psk "$1" --file "disk=$IMG" 2>&1) || rc=$?
  [ $rc = 1 ] || fail "server with $1: exit $rc: $err"
  [ "$(wc -l <<<"$err")" = 1 ] || fail "more than one line: $err"
  grep -q -- "$1" <<<"$err" || fail "error does not name $1: $err"
  grep -Eq -- "$2" <<<"$err" || fail "error for $1 does not match /$2/: $err"
  ! grep -q "$key" <<<"$err" || fail "key in the error: $err"
  [ ! -e "$TMP/bad.sock" ] || fail "socket created despite bad credentials"
}
bad "$TMP/missing.psk" "No such file"
printf 'alice %s\n' "$key" > "$TMP/nocolon.psk"; chmod 600 "$TMP/nocolon.psk"
bad "$TMP/nocolon.psk" "username:hexkey.*line 1"
printf 'bob:%s\nalice:%szz\n' "$key" "$key" > "$TMP/nothex.psk"; chmod 600 "$TMP/nothex.psk"
bad "$TMP/nothex.psk" "not hexadecimal.*line 2"
cp "$TMP/keys.psk" "$TMP/open.psk"; chmod 604 "$TMP/open.psk"
bad "$TMP/open.psk" "accessible by others"
ln -s "$TMP/keys.psk" "$TMP/link.psk"
bad "$TMP/link.psk" "symbolic link"
: > "$TMP/empty.psk"; chmod 600 "$TMP/empty.psk"
bad "$TMP/empty.psk" "no keys"
echo "PASS"
