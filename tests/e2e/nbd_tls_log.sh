#!/bin/bash
# The connection log of nbd-server (info level, one line per connection at
# its end): peer (address:port, or uid/pid of a Unix-socket peer), TLS
# identity (PSK user, certificate CN), the export name and the revision it
# resolved to, bytes read, and how it ended (NBD_CMD_DISC, client gone,
# idle timeout, server shutdown, a refused handshake naming who tried).
# Never a key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires psktool nbdinfo nbdcopy nbdsh

make_mixed_repo
make_psk "$T/server.psk" alice
make_psk "$T/wrong.psk" alice
cp "$T/server.psk" "$T/alice.psk"
key=$(cut -d: -f2 "$T/server.psk")
psk() { echo "nbds://alice@127.0.0.1:$port/$1?tls-psk-file=$T/${2:-alice}.psk"; }
# line PATTERN: the log has a line matching the extended regex PATTERN.
line() { grep -Eq -- "$1" "$slog" || fail "no log line /$1/ in: $(cat "$slog")"; }

start_backy --tls-psk "$T/server.psk" --idle-timeout 2
bounded nbdcopy --connections=1 "$(psk "$REV1")" null: || fail "nbdcopy $REV1"
line "127\.0\.0\.1:[0-9]+, TLS 'alice', export '$REV1', 20971520 bytes read in [0-9.]+ s, ended: NBD_CMD_DISC"
bounded nbdcopy --connections=1 "$(psk last)" null: || fail "nbdcopy last"
line "TLS 'alice', export 'last' = '$REV0', 20971520 bytes read"
# Who tried: a wrong key is logged with the user name it claimed.
bounded nbdinfo "$(psk "$REV1" wrong)" >/dev/null 2>&1 && fail "the wrong key got in"
line "alice.*(handshake|refused|fail)"
# A client killed with -9 while it reads; one left idle past --idle-timeout.
cat > "$T/reader.py" <<PY
import nbd, sys, time
h = nbd.NBD()
h.set_tls(nbd.TLS_REQUIRE)
h.set_tls_psk_file("$T/alice.psk")
h.set_tls_username("alice")
h.set_export_name(sys.argv[1])
h.connect_tcp("127.0.0.1", "$port")
h.pread(4096, 0)
print("connected", flush=True)
time.sleep(30)
PY
nbdsh -c "import sys; sys.argv = ['', '$REV1']; exec(open('$T/reader.py').read())" >"$T/r1" 2>&1 &
r1=$!
CLEANUPS+=("kill -9 $r1 2>/dev/null")
for _ in $(seq 100); do grep -q connected "$T/r1" && break; sleep 0.1; done
grep -q connected "$T/r1" || fail "nbdsh did not connect: $(cat "$T/r1")"
sleep 4   # past --idle-timeout 2
line "export '$REV1', 4096 bytes read in [0-9.]+ s, ended: .*idle"
kill -9 $r1 2>/dev/null || true
wait $r1 2>/dev/null || true
grep -qi "$key" "$slog" && fail "the log shows alice's key"
stop_backy

# A Unix-socket peer is named by uid and pid; a server shutdown ends it.
sock=$T/nbd.sock
start_backy --socket "$sock" --tls-psk "$T/server.psk"
cat > "$T/unix.py" <<PY
import nbd, time
h = nbd.NBD()
h.set_tls(nbd.TLS_REQUIRE)
h.set_tls_psk_file("$T/alice.psk")
h.set_tls_username("alice")
h.set_export_name("daily")
h.connect_unix("$sock")
h.pread(65536, 0)
print("connected", flush=True)
time.sleep(30)
PY
nbdsh -c "exec(open('$T/unix.py').read())" >"$T/r2" 2>&1 &
r2=$!
CLEANUPS+=("kill -9 $r2 2>/dev/null")
for _ in $(seq 100); do grep -q connected "$T/r2" && break; sleep 0.1; done
grep -q connected "$T/r2" || fail "nbdsh did not connect over the socket: $(cat "$T/r2")"
stop_backy
line "uid $(id -u) pid [0-9]+, TLS 'alice', export 'daily' = '$REV1', 65536 bytes read in [0-9.]+ s, ended: .*shut"
kill -9 $r2 2>/dev/null || true
echo PASS
