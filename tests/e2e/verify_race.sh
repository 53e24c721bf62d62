#!/bin/bash
# verify --all racing forget: a revision forgotten after verify listed it
# is skipped with a note, never reported as damage (no "index ... is
# missing", exit 0, no revision distrusted). Bounded: a few rounds.
. "$(dirname "$0")/lib.sh"
requires openssl

# The oldest revision is large, so verify spends a while on it while the
# newer (small) ones it listed are forgotten.
rand_bytes big 64 > "$T/big.img"
rand_bytes small 1 > "$T/small.img"
cp "$T/big.img" "$T/vm.img"
"$BACKY" -b "$T/repo" init file "$T/vm.img"
revs=8
for round in 1 2 3 4 5; do
  cp "$T/big.img" "$T/vm.img"
  "$BACKY" -b "$T/repo" backup daily 2>/dev/null
  cp "$T/small.img" "$T/vm.img"
  for _ in $(seq $revs); do "$BACKY" -b "$T/repo" backup daily 2>/dev/null; done
  ids=$(rev_ids "$T/repo")
  rc=0
  "$BACKY" -b "$T/repo" verify --all >"$T/out" 2>"$T/err" & verify=$!
  # Verify goes oldest first: forget from the newest end while it runs.
  for id in $(echo "$ids" | tac | head -$revs); do
    for _ in $(seq 200); do  # forget is Busy while verify updates a revision
      "$BACKY" -b "$T/repo" forget -r "$id" 2>/dev/null && break
      kill -0 $verify 2>/dev/null || break
    done
  done
  wait $verify || rc=$?
  log "round $round: verify exit $rc; $(grep -c 'removed meanwhile' "$T/out" || true) skipped"
  grep -q "is missing" "$T/err" "$T/out" && fail "round $round: false damage: $(cat "$T/err")"
  [ $rc -eq 0 ] || fail "round $round: verify --all failed ($rc): $(cat "$T/err")"
  "$BACKY" -b "$T/repo" status | grep -q distrusted && fail "round $round: a revision was distrusted"
  # Start the next round from an empty repository.
  for id in $(rev_ids "$T/repo"); do
    "$BACKY" -b "$T/repo" forget -r "$id" >/dev/null
  done
done
log "ok"
