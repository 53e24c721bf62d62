#!/bin/bash
# NBD_OPT_STARTTLS on the wire (tls_core_protocol.py, raw sockets and
# Python's ssl): --tls off answers ERR_POLICY; --tls on serves plaintext and
# TLS; --tls require answers ERR_TLS_REQD before TLS and hangs up on
# EXPORT_NAME; STARTTLS with data or twice is ERR_INVALID; plaintext behind
# STARTTLS, a garbage handshake and an abandoned one (dropped at the
# deadline) end those connections, and the server serves the next client.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/../../support/tls_credentials.sh"
requires certtool
/usr/bin/python3 -c 'import ssl' || { echo "SKIP: no python3 ssl" >&2; exit 77; }
make_image
make_x509 "$TMP/pki"
for mode in off on require; do
  creds=(--tls-certificates "$TMP/pki" --tls "$mode")
  [ "$mode" = off ] && creds=()
  start_server "${creds[@]}" --tls-handshake-timeout 1 --file "disk=$IMG"
  /usr/bin/python3 "$(dirname "$0")/tls_core_protocol.py" "$SOCK" "$mode" \
    "$TMP/pki" || fail "--tls $mode: $(cat "$TMP/server.log")"
  kill -0 "$SERVER_PID" || fail "server died with --tls $mode"
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
done
echo "PASS"
