#!/bin/bash
# The shipped systemd pair, man/backy-nbd.{socket,service}: systemd accepts
# both units, and the service's ExecStart line, run under socket
# activation the way systemd runs it (systemd-socket-activate passes the
# listening socket in LISTEN_FDS), serves a directory of repositories over
# TLS and nothing in clear text; systemd-analyze security rates the
# service below 2.5, and what the server does (strace -f) fits its
# SystemCallFilter= and RestrictAddressFamilies=. Paths of the unit as the
# build configured it (the installed backy, /srv/backy, /etc/backy) are
# replaced by the test's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires systemd-analyze systemd-socket-activate certtool nbdinfo nbdcopy strace /usr/bin/python3
: "${BACKY_BUILD_DIR:?the build directory (set by tests/e2e/CMakeLists.txt)}"

U=$BACKY_SOURCE_DIR/man
SERVICE=$BACKY_BUILD_DIR/man/backy-nbd.service  # configured from man/*.in
make_pki "$T/pki"
mkdir -p "$T/units" "$T/srv"
sed -e "s|^ExecStart=/[^ ]*/backy |ExecStart=$BACKY |" -e "s|/srv/backy|$T/srv|g" \
  -e "s|/etc/backy/nbd-tls|$T/pki/server|g" -e "s|/etc/backy|$T/pki|g" \
  "$SERVICE" > "$T/units/backy-nbd.service"
grep -q "^ExecStart=$BACKY " "$T/units/backy-nbd.service" ||
  fail "ExecStart is not the configured backy: $(grep ExecStart "$SERVICE")"
cp "$U/backy-nbd.socket" "$T/units/"

log "systemd-analyze verify accepts both units"
systemd-analyze verify --man=no "$T/units/backy-nbd.socket" \
  "$T/units/backy-nbd.service" > "$T/verify.out" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$T/verify.out")"
grep -q '^UMask=0077$' "$SERVICE" || fail "the service sets no UMask=0077"
unit_exposure_below "$T/units/backy-nbd.service" 2.5
grep -q '^ListenStream=10809$' "$U/backy-nbd.socket" || fail "the socket does not listen on 10809"

log "the service's ExecStart serves a base directory over TLS, socket-activated"
mixed_image "$T/vm.img" unit
"$BACKY" -b "$T/srv/vm1" init file "$T/vm.img" >/dev/null
"$BACKY" -b "$T/srv/vm1" backup daily >/dev/null
want=$(sha < "$T/vm.img")
exec_start=$(sed -n 's/^ExecStart=//p' "$T/units/backy-nbd.service")
[ -n "$exec_start" ] || fail "no ExecStart in the service"
port=$(free_port)
# The unit listens on every address; the test on loopback only.
read -r -a argv <<< "$exec_start"
# strace runs the activator, which execs the server (LISTEN_PID is its pid).
strace -f -qq -o "$T/trace" \
  systemd-socket-activate -l "127.0.0.1:$port" "${argv[@]}" > "$T/server.log" 2>&1 &
tracer=$!
CLEANUPS+=("pkill -KILL -P $tracer; kill -KILL $tracer 2>/dev/null")
uri="nbds://localhost:$port/vm1/last?tls-certificates=$T/pki/client"
ok=
for _ in $(seq 1 50); do
  # The first connection starts the server (as systemd would).
  if bounded nbdinfo --size "$uri" > "$T/size" 2>/dev/null; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "no TLS client got through: $(cat "$T/server.log")"
[ "$(cat "$T/size")" = "$(stat -c %s "$T/vm.img")" ] || fail "wrong size $(cat "$T/size")"
got=$(bounded nbdcopy "$uri" - | sha)
[ "$got" = "$want" ] || fail "nbdcopy through the unit's server read wrong data"
if bounded nbdinfo --size "nbd://localhost:$port/vm1/last" > /dev/null 2>&1; then
  fail "a plaintext client was served by the unit's server"
fi
grep -q "export 'vm1/last'" "$T/server.log" || fail "no connection log line: $(cat "$T/server.log")"
pkill -TERM -P "$tracer" || fail "no server under strace"
wait "$tracer" 2>/dev/null || true

log "the sandbox fits what the server did: system calls, socket families"
grep -q 'execve(.*nbd-server' "$T/trace" || fail "the trace has no nbd-server"
grep -q '^SystemCallFilter=@system-service$' "$SERVICE" ||
  fail "the unit's SystemCallFilter= changed: update this test"
# The trace includes systemd-socket-activate before its exec; it makes
# only calls the server could make, too.
refused=$(/usr/bin/python3 "$(dirname "$0")/unit_trace_check.py" "$T/trace" "$SERVICE") ||
  fail "unit_trace_check.py: $refused"
[ -z "$refused" ] || fail "the unit's sandbox would refuse: $refused"
log "ok"
