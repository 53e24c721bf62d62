#!/bin/bash
# SIGINT and SIGTERM shut the server down cleanly (exit 0, socket removed),
# also with a client connected and reading.
source "$(dirname "$0")/functions.sh"
requires nbdsh
make_image
for sig in INT TERM; do
  start_server --file "disk=$IMG"
  nbdsh -u "$(uri)" -c '
import time
for i in range(100):
    h.pread(65536, 0)
    time.sleep(0.02)
' >/dev/null 2>&1 &
  client=$!
  sleep 0.3
  kill -"$sig" "$SERVER_PID"
  status=0
  timeout 10 tail --pid="$SERVER_PID" -f /dev/null || fail "server ignored SIG$sig"
  wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  [ "$status" -eq 0 ] || fail "exit status $status after SIG$sig"
  [ ! -e "$SOCK" ] || fail "socket left behind after SIG$sig"
  wait "$client" 2>/dev/null || true  # the client sees the disconnect
done
