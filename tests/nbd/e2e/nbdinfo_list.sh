#!/bin/bash
# nbdinfo --list shows every export with its description.
source "$(dirname "$0")/functions.sh"
requires nbdinfo
make_image
start_server --file "disk=$IMG=first disk" --file "second=$IMG=second disk" \
  --mem "scratch=1048576"

out="$(nbdinfo --list "$(uri "")")"
echo "$out"
for name in disk second scratch; do
  grep -q "^export=\"$name\":" <<<"$out" || fail "export $name not listed"
done
grep -q "description: first disk" <<<"$out" || fail "description missing"
grep -q "description: second disk" <<<"$out" || fail "description missing"
[ "$(grep -c '^export=' <<<"$out")" -eq 3 ] || fail "wrong number of exports"
