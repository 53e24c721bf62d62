#!/bin/bash
# One revision per name (issue 12): connections that open "last" while
# another connection to it is open read the same revision, even when a
# backup publishes a new one between their opens; a multi-connection
# nbdcopy of "last" while backups run in a loop always copies exactly one
# revision's bytes; listing 1000 revisions is fast (it was quadratic).
. "$(dirname "$0")/lib.sh"
requires openssl nbdinfo nbdcopy
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd" >&2; exit 77; }

img=$T/vm.img
repo=$T/repo
# Three images sharing no byte pattern: 12 MiB (3 chunks) each.
for n in 1 2 3; do rand_bytes "one$n" 12 > "$T/img$n"; done
cp "$T/img1" "$img"
"$BACKY" -b "$repo" init file "$img"
"$BACKY" -b "$repo" backup daily 2>/dev/null
sock=$T/nbd.sock
serve_nbd "$repo" "$sock"

log "two connections to 'last' across a backup read one revision"
/usr/bin/python3 - "$sock" "$T" "$BACKY" "$repo" <<'PY'
import os, shutil, subprocess, sys, nbd
sock, t, backy, repo = sys.argv[1:]
want = [open(os.path.join(t, 'img%d' % n), 'rb').read() for n in (1, 2)]
def connect():
    h = nbd.NBD()
    h.set_export_name('last')
    h.set_full_info(True)
    h.connect_unix(sock)
    return h
def image_of(h):
    data = h.pread(len(want[0]), 0)
    return next((n for n, w in enumerate(want, 1) if w == data), None)
a = connect()
if image_of(a) != 1:
    sys.exit('first connection does not read revision 1')
shutil.copyfile(os.path.join(t, 'img2'), os.path.join(t, 'vm.img'))
subprocess.run([backy, '-b', repo, 'backup', 'daily'], check=True,
               stderr=subprocess.DEVNULL)
b = connect()
if image_of(b) != 1:
    sys.exit('second connection to "last" read another revision than the first')
if a.get_canonical_export_name() != b.get_canonical_export_name():
    sys.exit('the connections were told different revision ids')
new = connect()
new.shutdown()
a.shutdown()
b.shutdown()
c = connect()
if image_of(c) != 2:
    sys.exit('once no connection held "last", it did not name the new revision')
if c.get_canonical_export_name() == a.get_canonical_export_name():
    sys.exit('NBD_INFO_NAME did not change with the revision')
c.shutdown()
PY
[ $? = 0 ] || fail "one revision per name"

log "nbdcopy -C 4 of 'last' while backups run in a loop: one revision each time"
sha1=$(sha <"$T/img1"); sha2=$(sha <"$T/img2"); sha3=$(sha <"$T/img3")
(
  trap 'exit 0' TERM
  n=0
  while [ ! -e "$T/stop" ]; do
    cp "$T/img$(( n % 3 + 1 ))" "$img.new" && mv "$img.new" "$img"
    "$BACKY" -b "$repo" backup daily 2>/dev/null || exit 1
    n=$(( n + 1 ))
  done
) &
loop=$!
CLEANUPS+=("touch $T/stop; kill $loop 2>/dev/null; wait $loop 2>/dev/null")
declare -A seen
for i in $(seq 12); do
  nbdcopy -C 4 --request-size=1048576 "nbd+unix:///last?socket=$sock" "$T/copy.img" ||
    fail "nbdcopy $i failed"
  s=$(sha <"$T/copy.img")
  case $s in
    "$sha1") seen[1]=1 ;; "$sha2") seen[2]=1 ;; "$sha3") seen[3]=1 ;;
    *) fail "copy $i is not any one revision's image (mixed from several?)" ;;
  esac
done
touch "$T/stop"
wait $loop || fail "a backup in the loop failed"
log "copies were of revisions: ${!seen[*]}"
revs=$("$BACKY" -b "$repo" status --yaml | grep -c '^- ')
[ "$revs" -gt 3 ] || fail "the backup loop made only $revs revisions: nothing raced"

log "listing 1000 revisions is fast"
/usr/bin/python3 "$BACKY_SOURCE_DIR/tests/support/clone_revisions.py" "$repo" 1000
want=$(( revs + 1000 ))
start=$(date +%s%N)
n=$(nbdinfo --list "nbd+unix:///?socket=$sock" | grep -c '^export=')
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$n" = "$want" ] || fail "listed $n exports, not $want"
log "listed $n exports in $ms ms"
# Generous (the benchmark has the real figure; it took 112 s before): the
# first listing reads every revision's metadata once, and a listing within
# seconds of a change re-reads it per export.
[ "$ms" -lt 20000 ] || fail "listing 1000 revisions took $ms ms"
start=$(date +%s%N)
nbdinfo --list "nbd+unix:///?socket=$sock" >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "listed again in $ms ms"
[ "$ms" -lt 10000 ] || fail "listing 1000 revisions again took $ms ms"
echo PASS
