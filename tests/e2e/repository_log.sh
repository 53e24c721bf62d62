#!/bin/bash
# Commands run by hand with -b leave what they did in the repository's
# backy.log (issue 13): backup (revision id, tags, bytes, chunks), restore,
# forget, expire (the removed revisions), purge (chunks and bytes freed),
# verify (each revision's trust) — each line once, also with -l naming that
# log; dry runs and read-only commands add nothing. The log is owner-only
# and appended; a symlink planted in its place is refused, not followed.
. "$(dirname "$0")/lib.sh"
requires openssl

umask 022
repo=$T/repo
LOG=$repo/backy.log
img=$T/vm.img
rand_bytes r1 8 > "$img"
"$BACKY" -b "$repo" init file "$img" >/dev/null
cat >> "$repo/config" <<'YAML'
schedule:
  daily: {interval: 1d, keep: 1}
min-keep: 1
YAML

# lines PATTERN: how many lines of the log match the extended regex.
lines() { grep -Ec -- "$1" "$LOG" || true; }

log "backup: one line with the revision, its tags, bytes and chunks"
"$BACKY" -b "$repo" backup daily 2>/dev/null
r1=$("$BACKY" -b "$repo" find)
[ "$(lines "info backup daily: revision $r1 \(8\.0 MiB\): 8\.0 MiB read, 8\.0 MiB written, chunks 2 new / 0 reused")" = 1 ] ||
  fail "no backup line for $r1: $(cat "$LOG")"
[ "$(stat -c %a "$LOG")" = 600 ] || fail "the log is mode $(stat -c %a "$LOG")"

log "with -l naming the repository log, still one line"
rand_bytes r2 4 | dd of="$img" bs=1M conv=notrunc status=none
"$BACKY" -l "$LOG" -b "$repo" backup daily,manual:x 2>/dev/null
r2=$("$BACKY" -b "$repo" find)
[ "$(lines "backup daily,manual:x: revision $r2 ")" = 1 ] || fail "not one line for $r2: $(cat "$LOG")"

log "restore, verify"
"$BACKY" -b "$repo" restore -r "$r1" "$T/out.img" 2>/dev/null
[ "$(lines "info restored revision $r1 \(8\.0 MiB\) to $T/out.img$")" = 1 ] || fail "no restore line: $(tail -3 "$LOG")"
"$BACKY" -b "$repo" verify --all >/dev/null
[ "$(lines "info verify: revision $r1 verified; revision $r2 verified$")" = 1 ] || fail "no verify line: $(tail -3 "$LOG")"

log "read-only commands and dry runs add nothing"
before=$(wc -l < "$LOG")
"$BACKY" -b "$repo" status >/dev/null
"$BACKY" -b "$repo" find >/dev/null
"$BACKY" -b "$repo" expire --dry-run >/dev/null
"$BACKY" -b "$repo" purge --dry-run >/dev/null
[ "$(wc -l < "$LOG")" = "$before" ] || fail "they logged: $(tail -n +$((before + 1)) "$LOG")"

log "expire: the removed revision; purge: the chunks and bytes freed"
# keep 1 daily: r1 loses its tag and goes, r2 keeps manual:x and daily.
"$BACKY" -b "$repo" expire >/dev/null
[ "$(lines "info expire: removed revision $r1; 1 revisions kept$")" = 1 ] || fail "no expire line: $(tail -3 "$LOG")"
"$BACKY" -b "$repo" purge > "$T/purge.out"
freed=$(sed -n 's/^freed \([0-9]*\) of \([0-9]*\) chunks.*/\1 of \2/p' "$T/purge.out")
[ "$freed" = "1 of 3" ] || fail "purge freed $freed: $(cat "$T/purge.out")"
[ "$(lines "info purge: freed 1 of 3 chunks, 4\.0 MiB \([0-9]+ bytes\); 0 live pins, 0 stale pins removed$")" = 1 ] ||
  fail "no purge line: $(tail -3 "$LOG")"

log "forget"
"$BACKY" -b "$repo" forget -r "$r2" >/dev/null
[ "$(lines "info forgot revision $r2$")" = 1 ] || fail "no forget line: $(tail -3 "$LOG")"

log "a symlink planted as backy.log is refused, its target untouched"
echo precious > "$T/victim"
mv "$LOG" "$T/old.log"
ln -s "$T/victim" "$LOG"
"$BACKY" -b "$repo" backup daily 2> "$T/err" || fail "backup failed with a symlinked log: $(cat "$T/err")"
grep -q "backy: warning: cannot open log file $LOG: it is a symlink (refused)" "$T/err" ||
  fail "no warning naming the log: $(cat "$T/err")"
[ "$(cat "$T/victim")" = precious ] || fail "the symlink's target was written: $(cat "$T/victim")"
[ -L "$LOG" ] || fail "the symlink was replaced"
log "ok"
