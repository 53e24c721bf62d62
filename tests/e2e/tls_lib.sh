# Shared helpers for the TLS tests of `backy nbd-server` (nbd_tls_*.sh).
# Source it after lib.sh:
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/tls_lib.sh"
#
# make_pki DIR        certificates made with certtool (gnutls-bin):
#   DIR/server/       ca-cert.pem server-cert.pem server-key.pem (CA "A";
#                     CN and SAN localhost, SAN IP 127.0.0.1): --tls-certificates
#   DIR/client/       ca-cert.pem client-cert.pem client-key.pem (CN alice,
#                     signed by CA A): libnbd's tls-certificates= and qemu's
#                     tls-creds-x509 dir for a client with a certificate
#   DIR/anon/         ca-cert.pem only: a client that trusts A, has no cert
#   DIR/rogue/        ca-cert.pem of A, client-cert.pem/key of CN mallory
#                     signed by CA "B": a client certificate from another CA
#   DIR/other-server/ a server certificate (CN localhost) signed by CA B
#   DIR/other-trust/  ca-cert.pem of B only: a client that trusts B, not A
# make_psk FILE USER... psktool key file with a fresh key per user.
# make_mixed_repo     $T/repo with two revisions of mixed data (random,
#                     text, written zeros, holes); sets REV0/REV1 (ids of
#                     the newest and the one before) and SHA0/SHA1 (sha256
#                     of `backy restore -r ID -`), and $T/rev1.img.
# check_libnbd, check_qemu   the interop checks of nbd_tls_x509/psk.sh
# start_backy [ARGS]  backy -b ${REPO:-$T/repo} nbd-server on a free
#                     loopback port (or ARGS' --socket); sets $server, $port
#                     and $slog (its log); alive fails if it died.
# Clients run under `bounded` (timeout $CLIENT_TIMEOUT s): a server that
# stops answering fails the test instead of hanging it.
set -euo pipefail

export PATH="/usr/bin:$PATH"  # Debian's python3 (ssl, nbd modules)
TLS_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RAW_CLIENT="$TLS_E2E_DIR/nbd_raw_client.py"
# Every client call is bounded: a server that stops answering fails the
# test instead of hanging it.
: "${CLIENT_TIMEOUT:=60}"
bounded() { timeout -k 5 "$CLIENT_TIMEOUT" "$@"; }

. "$TLS_E2E_DIR/../support/tls_credentials.sh"

# ---- data -----------------------------------------------------------------------
# mixed_image FILE SEED: 24 MiB: 0-8 MiB random, 8-12 text, 12-15 written
# zeros, 15-16 bytes 0xa5 (for qemu-io read -P), 16-20 random, 20-24 never
# written (a hole).
mixed_image() {
  local f=$1 s=$2
  rm -f "$f"
  { rand_bytes "$s-a" 8
    { seq 1 1000000 | sed "s/^/$s line /" || true; } | head -c $((4 * 1024 * 1024))
    head -c $((3 * 1024 * 1024)) /dev/zero
    head -c $((1024 * 1024)) /dev/zero | tr '\0' '\245'
    rand_bytes "$s-b" 4
  } > "$f"
  truncate -s 24M "$f"
}

make_mixed_repo() {
  mixed_image "$T/vm.img" tls1
  "$BACKY" -b "$T/repo" init file "$T/vm.img" >/dev/null
  "$BACKY" -b "$T/repo" backup daily >/dev/null
  cp "$T/vm.img" "$T/rev1.img"
  rand_bytes tls2 2 | dd of="$T/vm.img" bs=1M seek=9 conv=notrunc status=none
  "$BACKY" -b "$T/repo" backup hourly >/dev/null
  REV1=$("$BACKY" -b "$T/repo" find -r 1)
  REV0=$("$BACKY" -b "$T/repo" find -r 0)
  SHA1=$("$BACKY" -b "$T/repo" restore -r "$REV1" - | sha)
  SHA0=$("$BACKY" -b "$T/repo" restore -r "$REV0" - | sha)
  [ "$SHA1" = "$(sha < "$T/rev1.img")" ] || fail "restore of revision 1 differs"
  [ "$SHA0" != "$SHA1" ] || fail "the two revisions are equal"
}

# ---- clients ----------------------------------------------------------------------
# check_libnbd URI_PREFIX QUERY: nbdinfo (show, --list) and nbdcopy of
# make_mixed_repo's revisions (by id, last, tag; 1 and 4 connections)
# through one transport.
check_libnbd() {
  local base=$1 q=$2 out
  out=$(bounded nbdinfo "$base/$REV1?$q") || fail "nbdinfo $base/$REV1"
  grep -q "with TLS" <<<"$out" || fail "nbdinfo did not use TLS: $out"
  grep -q "export-size: 25165824" <<<"$out" || fail "nbdinfo size: $out"
  out=$(bounded nbdinfo --list "$base/?$q") || fail "nbdinfo --list $base"
  grep -q "^export=\"$REV0\":" <<<"$out" || fail "list lacks $REV0: $out"
  grep -q "^export=\"$REV1\":" <<<"$out" || fail "list lacks $REV1: $out"
  [ "$(bounded nbdcopy "$base/$REV1?$q" - | sha)" = "$SHA1" ] ||
    fail "nbdcopy of $REV1 over $base differs from restore"
  [ "$(bounded nbdcopy "$base/last?$q" - | sha)" = "$SHA0" ] ||
    fail "nbdcopy of last over $base differs from restore"
  # nbdcopy's default: 4 connections, all TLS.
  [ "$(bounded nbdcopy --connections=4 "$base/daily?$q" - | sha)" = "$SHA1" ] ||
    fail "nbdcopy --connections=4 of daily over $base differs"
}

# check_qemu OBJECT OPTS: qemu-img info and compare and qemu-io read -P on
# the export $REV1 (OBJECT: the --object tls-creds-* with id=tls0; OPTS:
# the --image-opts server part).
check_qemu() {
  local obj=$1 opts=$2 out
  out=$(bounded qemu-img info --object "$obj" --image-opts \
    "driver=nbd,$opts,export=$REV1,tls-creds=tls0") || fail "qemu-img info ($opts)"
  grep -q "25165824 bytes" <<<"$out" || fail "qemu-img info: $out"
  bounded qemu-img compare --object "$obj" --image-opts \
    "driver=file,filename=$T/rev1.img" \
    "driver=nbd,$opts,export=$REV1,tls-creds=tls0" ||
    fail "qemu-img compare of $REV1 ($opts)"
  # Different revisions must compare different (the compare can fail).
  if bounded qemu-img compare --object "$obj" --image-opts \
    "driver=file,filename=$T/rev1.img" \
    "driver=nbd,$opts,export=$REV0,tls-creds=tls0" >/dev/null 2>&1; then
    fail "qemu-img compare found revision 0 equal to revision 1"
  fi
  bounded qemu-io -r --object "$obj" --image-opts \
    "driver=nbd,$opts,export=$REV1,tls-creds=tls0" \
    -c "read -P 0xa5 15M 1M" -c "read -P 0 12M 3M" -c "read -P 0 20M 4M" \
    >"$T/qio" 2>&1 || fail "qemu-io read -P ($opts): $(cat "$T/qio")"
  grep -q "Pattern verification failed" "$T/qio" && fail "qemu-io: $(cat "$T/qio")"
  if bounded qemu-io -r --object "$obj" --image-opts \
    "driver=nbd,$opts,export=$REV1,tls-creds=tls0" -c "read -P 0xa5 0 64k" \
    >/dev/null 2>&1; then
    fail "qemu-io read -P 0xa5 of random data succeeded"
  fi
}

# ---- servers --------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _wait_ready PID LOG: 0 once LOG says "serving on", 1 if PID exits first.
_wait_ready() {
  local i
  for i in $(seq 200); do
    grep -q "serving on" "$2" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.05
  done
  fail "server did not get ready in 10 s: $(cat "$2")"
}

# start_backy ARGS...: backy -b ${REPO:-$T/repo} nbd-server ARGS; TCP on
# 127.0.0.1 (or ARGS' -H) and a free port unless ARGS has --socket. A port
# taken in between (tests run in parallel) is retried with another one.
# Sets $server, $port and $slog (its log file).
SERVERS_STARTED=0
start_backy() {
  local attempt tcp=1 a
  for a in "$@"; do [ "$a" = --socket ] && tcp=0; done
  for attempt in 1 2 3 4 5; do
    SERVERS_STARTED=$((SERVERS_STARTED + 1))
    slog=$T/server$SERVERS_STARTED.log
    if [ $tcp = 1 ]; then
      port=$(free_port)
      "$BACKY" -b "${REPO:-$T/repo}" nbd-server -p "$port" "$@" 2>"$slog" &
    else
      port=""
      "$BACKY" -b "${REPO:-$T/repo}" nbd-server "$@" 2>"$slog" &
    fi
    server=$!
    CLEANUPS+=("kill $server 2>/dev/null; wait $server 2>/dev/null")
    _wait_ready $server "$slog" && return 0
    wait $server 2>/dev/null || true
    [ $tcp = 1 ] && grep -qi "in use" "$slog" && continue
    fail "nbd-server $* did not start: $(cat "$slog")"
  done
  fail "no free port after 5 attempts"
}

stop_backy() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

# alive: the server process still runs.
alive() { kill -0 "$server" 2>/dev/null || fail "the server died: $(cat "$slog")"; }
