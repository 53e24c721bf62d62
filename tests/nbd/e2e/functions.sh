# Shared helpers for the NBD end-to-end tests (sourced, not run).
#
# Each test: `source functions.sh`, `requires TOOL...`, `make_image`,
# `start_server ARGS...`; cleanup runs from an EXIT trap. Exit 77 = skipped
# (a tool is missing on this machine; CI installs them all).
set -euo pipefail

: "${NBD_TEST_SERVER:?NBD_TEST_SERVER must point at nbd_test_server}"
# Debian's python3 modules (nbdsh) live under /usr/bin/python3.
export PATH="/usr/bin:$PATH"
export LIBNBD_DEBUG="${LIBNBD_DEBUG:-0}"
export MALLOC_PERTURB_="${MALLOC_PERTURB_:-$((RANDOM % 255 + 1))}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/nbd-e2e.XXXXXX")"
SERVER_PID=""
SOCK="$TMP/nbd.sock"
IMG="$TMP/disk.img"

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

requires() {
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "SKIP: $tool not installed" >&2
      exit 77
    fi
  done
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A 6 MiB + 512 byte image of random data with zero regions (whole 4 KiB
# blocks and an unaligned run) at known places.
make_image() {
  head -c $((6 * 1024 * 1024 + 512)) /dev/urandom > "$IMG"
  dd if=/dev/zero of="$IMG" bs=64K seek=2 count=3 conv=notrunc status=none
  dd if=/dev/zero of="$IMG" bs=4K seek=300 count=1 conv=notrunc status=none
  dd if=/dev/zero of="$IMG" bs=1 seek=2000000 count=10000 conv=notrunc \
    status=none
  dd if=/dev/zero of="$IMG" bs=1M seek=5 count=1 conv=notrunc status=none
}

# start_server ARGS...: serves on $SOCK unless ARGS choose otherwise, and
# waits until the server accepts connections.
start_server() {
  "$NBD_TEST_SERVER" --socket "$SOCK" "$@" 2>"$TMP/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    if [ -S "$SOCK" ]; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited: $(cat "$TMP/server.log")"
    sleep 0.05
  done
  fail "server did not create $SOCK"
}

uri() { echo "nbd+unix:///${1:-disk}?socket=$SOCK"; }
