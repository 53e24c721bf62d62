#!/bin/bash
# backy nbd-server's TLS and listen options: a non-loopback address (a
# wildcard too) without TLS required is refused with one line unless
# --insecure; a Unix socket is 0600, or --socket-mode/--socket-group; a mode
# for others is refused; over PSK, nbdinfo reads a revision and the server's
# log (info, stderr) says who read which export.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/../../support/tls_credentials.sh"
: "${BACKY:?BACKY must point at the backy binary}"
requires nbdinfo nbdcopy psktool sha256sum
make_image
"$BACKY" -b "$TMP/repo" init file "$IMG" >/dev/null
"$BACKY" -b "$TMP/repo" backup daily >/dev/null 2>&1
make_psk "$TMP/keys.psk" alice

refused() {  # PATTERN ARGS...: backy nbd-server ARGS fails with one line
  local pattern=$1 err rc=0
  shift
  err=$(timeout 10 "$BACKY" -b "$TMP/repo" nbd-server "$@" 2>&1) || rc=$?
  [ $rc != 0 ] && [ $rc != 124 ] || fail "nbd-server $*: exit $rc: $err"
  [ "$(wc -l <<<"$err")" = 1 ] || fail "nbd-server $*: more than one line: $err"
  grep -Eq -- "$pattern" <<<"$err" || fail "nbd-server $*: /$pattern/ not in: $err"
}
# Refused before anything is bound: these never listen.
refused "non-loopback address without TLS.*0\.0\.0\.0:10809" -H 0.0.0.0
refused "non-loopback address without TLS.*\[::\]:10809" -H ::
refused "non-loopback.*not --tls on" -H 0.0.0.0 --tls on --tls-psk "$TMP/keys.psk"
refused "socket mode 0666" --socket "$TMP/open.sock" --socket-mode 0666
refused "--tls off" --tls off --tls-psk "$TMP/keys.psk"
refused "No such group|no such group" --socket "$TMP/g.sock" --socket-group no-such-group-here
[ ! -e "$TMP/open.sock" ] || fail "refused socket was created"

# Socket activation: a passed socket on a wildcard address is refused too
# (bound, never listening, so nobody could connect to it meanwhile).
activated() {  # ADDR ARGS...: backy nbd-server ARGS with one passed socket
  local addr=$1
  shift
  /usr/bin/python3 - "$addr" "$BACKY" -b "$TMP/repo" nbd-server "$@" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((sys.argv[1], 0))
os.dup2(s.fileno(), 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
PY
}
err=$(activated 0.0.0.0 2>&1) && fail "activated wildcard socket served"
grep -q "non-loopback address.*socket activation fd 3" <<<"$err" ||
  fail "activated wildcard socket: $err"

# Group socket for a restore group.
group=$(getent group daemon >/dev/null && echo daemon || id -gn)
"$BACKY" -b "$TMP/repo" nbd-server --socket "$SOCK" --socket-mode 0660 \
  --socket-group "$group" --tls-psk "$TMP/keys.psk" 2>"$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ "$(stat -c %a:%G "$SOCK")" = "660:$group" ] ||
  fail "socket is $(stat -c %a:%G "$SOCK"), want 660:$group"
ls -a "$TMP" | grep -q '^\.nbd\.' && fail "private bind directory left behind"
u="nbds+unix://alice@/last?socket=$SOCK&tls-psk-file=$TMP/keys.psk"
got=$(nbdcopy "$u" - | sha256sum)
[ "$got" = "$(sha256sum < "$IMG")" ] || fail "nbdcopy of last over TLS differs"
kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
[ ! -e "$SOCK" ] || fail "socket not removed on shutdown"
grep -Eq "^nbd\[[0-9]+\] uid $(id -u) pid [0-9]+, TLS 'alice', export 'last'.* [0-9]+ bytes read in .* ended: NBD_CMD_DISC" \
  "$TMP/server.log" || fail "no connection log line: $(cat "$TMP/server.log")"

# 0600 by default.
"$BACKY" -b "$TMP/repo" nbd-server --socket "$SOCK" 2>>"$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "default socket mode $(stat -c %a "$SOCK")"
echo "PASS"
