#!/bin/bash
# Clients that misbehave around TLS, and the server survives each and
# serves the next client (and the ones it serves meanwhile):
# - garbage right after STARTTLS's ACK (a bogus record, plaintext NBD,
#   zeros): the connection is closed;
# - STARTTLS with data: ERR_INVALID; STARTTLS with TLS off: refused;
# - handshakes abandoned midway (a partial ClientHello, then silence): the
#   server serves other clients meanwhile, and closes them by its handshake
#   deadline, so they cannot hold connection slots (--max-connections);
# - a client that vanishes mid-record (half a request record, then RST), or
#   while a reply is being sent, or a real client (nbdsh) killed with -9.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires certtool nbdinfo nbdcopy nbdsh

make_pki "$T/pki"
make_mixed_repo
CA=$T/pki/anon
raw() { bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" "$@"; }
serves() {  # the server is up and serves exact data over TLS
  alive
  [ "$(bounded nbdcopy "nbds://localhost:$port/$REV1?tls-certificates=$CA" - | sha)" = "$SHA1" ] ||
    fail "nbdcopy after $1 differs or failed: $(tail -5 "$slog")"
}

start_backy --tls-certificates "$T/pki/server" --max-connections 4

log "garbage after STARTTLS"
for junk in random nbd zeros; do
  raw garbage --junk "$junk" --export "$REV1" || fail "garbage ($junk) after STARTTLS"
  serves "garbage ($junk)"
done
raw starttls-checks || fail "STARTTLS with data"
serves "STARTTLS with data"

log "handshakes abandoned midway"
pids=()
for i in 1 2 3; do
  python3 "$RAW_CLIENT" "127.0.0.1:$port" partial --hold 40 >"$T/partial$i" 2>&1 &
  pids+=($!)
  CLEANUPS+=("kill $! 2>/dev/null")
done
for _ in $(seq 100); do
  [ "$(grep -l "sent 60" "$T"/partial? 2>/dev/null | wc -l)" = 3 ] && break
  sleep 0.1
done
# Three of four slots held by half-done handshakes: the fourth serves.
serves "3 abandoned handshakes (while they hang)"
t0=$(date +%s)
for p in "${pids[@]}"; do wait "$p" || fail "partial client: $(cat "$T"/partial?)"; done
took=$(( $(date +%s) - t0 ))
for i in 1 2 3; do
  grep -q "closed after" "$T/partial$i" ||
    fail "an abandoned handshake was held for 40 s (no handshake deadline): $(cat "$T/partial$i")"
done
log "abandoned handshakes closed by the server within ${took} s"
serves "3 abandoned handshakes"
# All four slots taken by abandoned handshakes: the deadline frees them.
pids=()
for i in 1 2 3 4; do
  python3 "$RAW_CLIENT" "127.0.0.1:$port" partial --hold 40 >"$T/partial$i" 2>&1 &
  pids+=($!)
  CLEANUPS+=("kill $! 2>/dev/null")
done
for p in "${pids[@]}"; do wait "$p" || true; done
serves "4 abandoned handshakes filling --max-connections"

log "clients that vanish"
for i in 1 2 3; do
  raw vanish --how half --ca "$CA/ca-cert.pem" --export "$REV1" || fail "vanish mid-record"
  raw vanish --how reset --ca "$CA/ca-cert.pem" --export "$REV1" || fail "vanish mid-reply"
done
serves "clients vanishing mid-record"
# A real client, killed with -9 while it reads in a loop over TLS.
cat > "$T/reader.py" <<PY
import nbd
h = nbd.NBD()
h.set_tls(nbd.TLS_REQUIRE)
h.set_tls_certificates("$CA")
h.set_export_name("$REV1")
h.connect_tcp("localhost", "$port")
print("connected", flush=True)
bufs = [nbd.Buffer(1 << 20) for _ in range(8)]
while True:
    for off in range(0, h.get_size(), 1 << 20):
        h.aio_pread(bufs[(off >> 20) % 8], off)
        while h.aio_in_flight() >= 8:
            h.poll(-1)
PY
for i in 1 2 3; do
  nbdsh -c "exec(open('$T/reader.py').read())" >"$T/reader.out" 2>&1 &
  reader=$!
  CLEANUPS+=("kill -9 $reader 2>/dev/null")
  for _ in $(seq 100); do grep -q connected "$T/reader.out" && break; sleep 0.1; done
  grep -q connected "$T/reader.out" || fail "nbdsh reader did not connect: $(cat "$T/reader.out")"
  sleep 0.5
  kill -0 $reader 2>/dev/null || fail "nbdsh reader ended early: $(cat "$T/reader.out")"
  kill -9 $reader
  wait $reader 2>/dev/null || true
done
serves "nbdsh killed with -9 mid-read"
grep -q "bytes read" "$slog" || fail "no connection log lines"
stop_backy

log "STARTTLS against a server with TLS off"
start_backy
raw starttls-checks --tls-off --export "$REV1" || fail "STARTTLS with TLS off"
alive
stop_backy
echo PASS
