#!/bin/bash
# backy nbd-server serves every revision: nbdinfo --list shows them all;
# nbdcopy of each equals `backy restore` of it; qemu-img compare against
# the original image; nbdinfo --map shows zero chunks as holes; SPECs (tags,
# numbers, empty name = last) resolve as in restore; nbd-client -l lists.
. "$(dirname "$0")/lib.sh"
requires openssl nbdinfo nbdcopy qemu-img

img=$T/vm.img
rand_bytes nbd1 24 > "$img"
truncate -s 64M "$img"                            # 40 MiB of holes
"$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
cp "$img" "$T/v1.img"
rand_bytes nbd2 4 | dd of="$img" bs=1M seek=40 conv=notrunc status=none
"$BACKY" -b "$T/repo" backup hourly
cp "$img" "$T/v2.img"
rand_bytes nbd3 1 | dd of="$img" bs=1M seek=2 conv=notrunc status=none
"$BACKY" -b "$T/repo" backup manual:x

sock=$T/nbd.sock
serve_nbd "$T/repo" "$sock"
uri() { echo "nbd+unix:///$1?socket=$sock"; }

list=$(nbdinfo --list "$(uri "")")
for id in $(rev_ids "$T/repo"); do
  grep -q "^export=\"$id\":" <<<"$list" || fail "revision $id not listed"
  want=$("$BACKY" -b "$T/repo" restore -r "$id" - | sha)
  got=$(nbdcopy "$(uri "$id")" - | sha)
  [ "$got" = "$want" ] || fail "nbdcopy of $id differs from restore"
done
[ "$(grep -c '^export=' <<<"$list")" = 3 ] || fail "expected 3 exports"
grep -q "tags daily, trusted" <<<"$list" || fail "description lacks tags/trust"

# SPECs as export names.
[ "$(nbdcopy "$(uri daily)" - | sha)" = "$(sha < "$T/v1.img")" ] || fail "export 'daily'"
[ "$(nbdcopy "$(uri 1)" - | sha)" = "$(sha < "$T/v2.img")" ] || fail "export '1'"
[ "$(nbdcopy "$(uri "")" - | sha)" = "$(sha < "$img")" ] || fail "empty export name"
qemu-img compare -f raw -F raw "$T/v2.img" "$(uri hourly)" || fail "qemu-img compare"
nbdcopy "$(uri last)" null: || fail "nbdcopy to null:"

# Unknown export: a clear error, and the server keeps serving.
if nbdinfo "$(uri nosuch)" 2>"$T/err"; then fail "unknown export opened"; fi
grep -q "nosuch" "$T/err" || fail "error does not name the export: $(cat "$T/err")"
nbdinfo "$(uri last)" >/dev/null || fail "server stopped serving"

# Zero chunks are holes: revision 1 has data in 0..24 MiB, holes after.
map=$(nbdinfo --map "$(uri daily)")
echo "$map"
grep -Eq "^ +25165824 +41943040 +3 +hole,zero" <<<"$map" || fail "holes not reported"
grep -Eq "^ +0 +25165824 +0 +data" <<<"$map" || fail "data not reported"

# nbd-client (the kernel client's tool) lists the exports over TCP.
# Tests run in parallel: a port found free may be taken before our server
# binds it, and nbd-client would then wait forever on a foreign listener
# (an HTTP server waits for the client to speak first). So nbd-client runs
# under a timeout, and a server that could not bind is started again.
if command -v nbd-client >/dev/null; then
  listed=0
  for attempt in 1 2 3 4 5; do
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$BACKY" -b "$T/repo" nbd-server -p "$port" 2>>"$T/server.log" &
    tcp=$!
    CLEANUPS+=("kill $tcp 2>/dev/null; wait $tcp 2>/dev/null")
    for _ in $(seq 50); do
      kill -0 $tcp 2>/dev/null || break   # could not bind: try another port
      if timeout 10 nbd-client -l 127.0.0.1 "$port" >"$T/l" 2>&1; then
        listed=1
        break
      fi
      sleep 0.1
    done
    kill $tcp 2>/dev/null; wait $tcp 2>/dev/null
    [ $listed = 1 ] && break
  done
  [ $listed = 1 ] || fail "nbd-client -l never listed: $(cat "$T/l")"
  grep -q "$("$BACKY" -b "$T/repo" find -r daily)" "$T/l" || fail "nbd-client -l: $(cat "$T/l")"
fi

# A clean shutdown on SIGTERM, within seconds.
kill -TERM $server
for _ in $(seq 100); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
kill -0 $server 2>/dev/null && fail "server still running 10 s after SIGTERM"
wait $server || fail "server exited non-zero on SIGTERM"
[ ! -e "$sock" ] || fail "socket not removed"
# A directory of repositories (the scheduler's base dir): names are JOB/SPEC.
mkdir "$T/base"
cp -a "$T/repo" "$T/base/vm1"                  # repositories move with cp/rsync
"$BACKY" -b "$T/base/vm2" init file "$T/v1.img"
"$BACKY" -b "$T/base/vm2" backup daily
serve_nbd "$T/base" "$sock"
list=$(nbdinfo --list "$(uri "")" 2>/dev/null || true)
[ "$(grep -c '^export="vm1/' <<<"$list")" = 3 ] || fail "vm1 exports missing: $list"
[ "$(grep -c '^export="vm2/' <<<"$list")" = 1 ] || fail "vm2 export missing"
[ "$(nbdcopy "$(uri vm1/daily)" - | sha)" = "$(sha < "$T/v1.img")" ] || fail "vm1/daily"
[ "$(nbdcopy "$(uri vm2/last)" - | sha)" = "$(sha < "$T/v1.img")" ] || fail "vm2/last"
[ "$(nbdcopy "$(uri vm1/)" - | sha)" = "$(sha < "$img")" ] || fail "vm1/ (empty SPEC = last)"
if nbdinfo "$(uri vm3/last)" 2>/dev/null; then fail "unknown job opened"; fi
echo PASS
