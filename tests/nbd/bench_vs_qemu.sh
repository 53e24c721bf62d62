#!/bin/bash
# Manual benchmark (not a CTest test): nbd_test_server vs qemu-nbd serving
# the same raw file, server pinned to CPU 0 and client to CPU 1.
#   bench_vs_qemu.sh NBD_TEST_SERVER [IMAGE_SIZE_MIB]
# Sequential: nbdcopy URI null: (3 runs); random 4 KiB reads: fio
# --ioengine=nbd at queue depth 1 and 32. Needs nbdcopy, fio, qemu-nbd, bc.
set -u
SERVER="${1:?usage: bench_vs_qemu.sh NBD_TEST_SERVER [SIZE_MIB]}"
SIZE_MIB="${2:-2048}"
TMP="$(mktemp -d "${TMPDIR:-/var/tmp}/nbd-bench.XXXXXX")"
IMG="$TMP/img"
S="$TMP/s.sock"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT

head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$IMG"
cat "$IMG" > /dev/null  # warm the page cache

bench() {  # NAME URI
  local name=$1 uri=$2
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    taskset -c 1 nbdcopy "$uri" null:
    t1=$(date +%s.%N)
    echo "$name seq nbdcopy: $(echo "$SIZE_MIB / ($t1 - $t0)" | bc -l | cut -c1-7) MiB/s"
  done
  for qd in 1 32; do
    taskset -c 1 fio --name=r --ioengine=nbd --uri="$uri" --rw=randread \
      --bs=4k --iodepth="$qd" --runtime=8 --time_based \
      --size="${SIZE_MIB}M" 2>&1 |
      grep -o 'IOPS=[^,]*' | sed "s/^/$name randread 4k qd$qd: /"
  done
}

serve() {  # NAME COMMAND...
  local name=$1
  shift
  taskset -c 0 "$@" &
  PID=$!
  for _ in $(seq 1 200); do [ -S "$S" ] && break; sleep 0.05; done
  sleep 0.2
  bench "$name" "nbd+unix:///disk?socket=$S"
  kill "$PID"
  wait "$PID" 2>/dev/null
  PID=""
  rm -f "$S"
}

serve backy "$SERVER" --socket "$S" --file "disk=$IMG"
serve qemu-nbd qemu-nbd -r -t -e 8 -f raw -k "$S" -x disk "$IMG"
