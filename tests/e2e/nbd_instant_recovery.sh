#!/bin/bash
# Instant recovery: a qcow2 overlay whose backing file is a revision served
# over NBD. Writes land in the overlay, the repository stays unchanged, and
# the overlay becomes a standalone image equal to the revision with the
# writes applied: by `qemu-img convert`, by `qemu-img rebase -b ''`, and
# (when qemu-system-x86_64 is there) by QMP block-stream in a running VM.
. "$(dirname "$0")/lib.sh"
requires qemu-img qemu-io openssl

# The repository's content: names and bytes of every file, and the names
# in pins/ (a reader's pin is gone when it stops).
tree_sum() {
  (cd "$1" && find . -type f ! -path './pins/*' -print0 | sort -z | xargs -0 sha256sum
   ls -A pins 2>/dev/null || true) | sha256sum
}
# patch FILE OFFSET LENGTH BYTE: what a qemu-io `write -P BYTE` does.
patch() {
  head -c "$3" /dev/zero | tr '\0' "\\$(printf '%03o' "$4")" |
    dd of="$1" bs=64k seek="$2" oflag=seek_bytes conv=notrunc status=none
}

img=$T/vm.img
rand_bytes ir 40 > "$img"
truncate -s 64M "$img"  # and a tail of zero slots
"$BACKY" -b "$T/repo" init file "$img" >/dev/null
"$BACKY" -b "$T/repo" backup daily >/dev/null
before=$(tree_sum "$T/repo")

sock=$T/nbd.sock
serve_nbd "$T/repo" "$sock"
ov=$T/overlay.qcow2
qemu-img create -q -f qcow2 -b "nbd+unix:///last?socket=$sock" -F raw "$ov"
qemu-img info "$ov" | grep -q "backing file: nbd+unix:///last?socket=$sock" ||
  fail "overlay has no NBD backing file: $(qemu-img info "$ov")"
qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' "$ov" >/dev/null
qemu-io -f qcow2 -c 'read -P 0x5a 1M 64k' "$ov" | grep -q 'read 65536/65536' ||
  fail "the write did not land in the overlay"

expected=$T/expected.raw
cp "$img" "$expected"
patch "$expected" $((1024 * 1024)) 65536 0x5a
cmp "$img" "$expected" >/dev/null && fail "expected image equals the revision"

log "qemu-img convert of the overlay"
qemu-img convert -O raw "$ov" "$T/convert.raw"
cmp "$T/convert.raw" "$expected" || fail "converted overlay differs from the expected image"

log "qemu-img rebase -b '' of a copy"
cp "$ov" "$T/rebase.qcow2"
qemu-img rebase -f qcow2 -b '' "$T/rebase.qcow2"

stream=
if command -v qemu-system-x86_64 >/dev/null; then
  log "block-stream while a VM runs from the overlay"
  stream=$T/stream.qcow2
  cp "$ov" "$stream"
  accel=tcg
  [ -w /dev/kvm ] && accel=kvm:tcg
  qemu-system-x86_64 -machine "q35,accel=$accel" -m 64 -nodefaults -no-user-config \
    -display none -serial none \
    -drive "file=$stream,format=qcow2,if=virtio,id=disk0" \
    -qmp "unix:$T/qmp.sock,server=on,wait=off" >"$T/qemu.log" 2>&1 &
  vm=$!
  CLEANUPS+=("kill $vm 2>/dev/null; wait $vm 2>/dev/null")
  for _ in $(seq 100); do [ -S "$T/qmp.sock" ] && break; sleep 0.1; done
  /usr/bin/python3 - "$T/qmp.sock" <<'PY' || fail "block-stream: see above; $(cat "$T/qemu.log")"
import json, socket, sys, time

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting

def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "event" in m:
            continue
        if "error" in m:
            sys.exit(f"{name}: {m['error']}")
        return m["return"]

cmd("qmp_capabilities")
# A write while the VM runs, before the stream: it stays in the overlay
# (the final comparison checks it; HMP's qemu-io reports on qemu's stdout).
out = cmd("human-monitor-command",
          **{"command-line": 'qemu-io disk0 "write -P 0x33 8M 64k"'})
if out.strip():
    sys.exit(f"qemu-io in the VM: {out}")
cmd("block-stream", device="disk0", **{"job-id": "stream0"})
deadline = time.time() + 120
while time.time() < deadline:
    jobs = cmd("query-block-jobs")
    if not jobs:
        break
    time.sleep(0.2)
else:
    sys.exit("block-stream did not finish")
backing = [b for b in cmd("query-block") if b["device"] == "disk0"][0]
if "backing_file" in backing["inserted"]:
    sys.exit(f"still backed after block-stream: {backing['inserted']['backing_file']}")
cmd("quit")
PY
  wait $vm || true
fi

log "standalone without the server"
kill $server; wait $server 2>/dev/null || true
[ "$(tree_sum "$T/repo")" = "$before" ] || fail "the repository changed"
qemu-img info "$T/rebase.qcow2" | grep -q "backing file" && fail "rebase left a backing file"
qemu-img compare -f qcow2 -F raw "$T/rebase.qcow2" "$expected" || fail "rebased overlay differs"
if [ -n "$stream" ]; then
  qemu-img info "$stream" | grep -q "backing file" && fail "block-stream left a backing file"
  patch "$expected" $((8 * 1024 * 1024)) 65536 0x33
  qemu-img convert -O raw "$stream" "$T/stream.raw"
  cmp "$T/stream.raw" "$expected" || fail "streamed overlay differs from the expected image"
fi
