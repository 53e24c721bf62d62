#!/bin/bash
# backy upgrade --to: the genuine 2.x repositories (v243, v253) converted
# into repositories in a RADOS pool of a throwaway cluster, and into a
# directory: every revision restores to the image 2.x backed up (sha256 of
# expected.txt), ids, tags and trust kept; the 2.x repository is left as it
# was; a second run converts nothing; a run killed after its first published
# revision is completed by the next; a current repository is refused.
. "$(dirname "$0")/rbd_lib.sh"
. "$(dirname "$0")/legacy_lib.sh"

start_cluster
ceph osd pool create backups 8 >/dev/null 2>&1 || fail "pool create"

for v in v243 v253; do
  log "$v into rados:backups/$v"
  fixture_copy "$v" "$T/$v"
  before=$(tree_sum "$T/$v")
  "$BACKY" -b "$T/$v" upgrade --to "rados:backups/$v" >"$T/out" 2>&1 ||
    { cat "$T/out"; fail "upgrade --to of $v"; }
  grep -q "3 revisions converted (0 there already)" "$T/out" ||
    { cat "$T/out"; fail "summary of $v"; }
  [ "$(tree_sum "$T/$v")" = "$before" ] || fail "$v was changed by upgrade --to"
  "$BACKY" -b "rados:backups/$v" status --yaml >"$T/st.yaml" || fail "status"
  "$BACKY" -b "$T/$v" status --yaml >"$T/st2.yaml" || fail "status of 2.x"
  [ "$(status_yaml_rows "$T/st.yaml")" = "$(status_yaml_rows "$T/st2.yaml")" ] ||
    fail "$v: ids, trust or tags differ"
  while read -r folder uuid sum size tags; do
    [ "$folder" = "$v" ] || continue
    got=$("$BACKY" -b "rados:backups/$v" restore -r "$uuid" - 2>/dev/null | sha)
    [ "$got" = "$sum" ] || fail "$v $uuid restores to $got, 2.x backed up $sum"
  done <<<"$EXPECTED"
  "$BACKY" -b "rados:backups/$v" verify --all >/dev/null 2>&1 ||
    fail "$v: verify --all in the pool"
  "$BACKY" -b "$T/$v" upgrade --to "rados:backups/$v" >"$T/out" 2>&1 ||
    fail "second upgrade --to"
  grep -q "0 revisions converted (3 there already)" "$T/out" ||
    { cat "$T/out"; fail "second run converted again"; }
done

log "a run killed after its first revision is completed by the next"
fixture_copy v253 "$T/k"
export BACKY_RADOS_LEASE_SECONDS=3
BACKY_TEST_HOOK="upgrade-published:kill" "$BACKY" -b "$T/k" upgrade \
  --to rados:backups/killed >/dev/null 2>&1 && fail "the hook did not kill"
# Its writer lock is held until the lease runs out.
expect_fail "repository is locked" \
  "$BACKY" -b "$T/k" upgrade --to rados:backups/killed
sleep 4
"$BACKY" -b "$T/k" upgrade --to rados:backups/killed >"$T/out" 2>&1 ||
  { cat "$T/out"; fail "rerun after kill"; }
grep -q "2 revisions converted (1 there already)" "$T/out" ||
  { cat "$T/out"; fail "rerun did not resume"; }

log "into a directory too; a current repository is refused"
fixture_copy v243 "$T/d"
"$BACKY" -b "$T/d" upgrade --to "$T/d-new" >/dev/null || fail "upgrade --to DIR"
"$BACKY" -b "$T/d-new" verify --all >/dev/null 2>&1 || fail "verify of DIR"
expect_fail "not a backy 2.x repository" \
  "$BACKY" -b "$T/d-new" upgrade --to rados:backups/again
log "OK"
