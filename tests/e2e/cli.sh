#!/bin/bash
# The command line: every command has --help; usage errors exit 2 with
# "backy: COMMAND: ..." (an unknown command or option named); find/forget/
# status behave as documented; TAGS with an empty item or a bare manual:
# are refused; -b naming a file fails like a missing repository; a missing
# scheduler config exits 2.
. "$(dirname "$0")/lib.sh"
requires openssl

"$BACKY" --help | grep -q "backup" || fail "--help lists no commands"
for cmd in init backup restore status find forget; do
  "$BACKY" $cmd --help > "$T/help" || fail "$cmd --help failed"
  grep -qi "usage" "$T/help" || fail "$cmd --help has no usage"
done
"$BACKY" restore --help | grep -q -- "--force" || fail "restore --help lacks --force"
"$BACKY" --version | grep -q "backy" || fail "--version"

rc=0; "$BACKY" 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "^backy: a command is required$" "$T/err" ||
  fail "no command: exit $rc, $(cat "$T/err")"
rc=0; "$BACKY" frobnicate 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "^backy: unknown command 'frobnicate'$" "$T/err" ||
  fail "unknown command: exit $rc, $(cat "$T/err")"
rc=0; "$BACKY" -v -b "$T" frobnicate --x 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "^backy: unknown command 'frobnicate'$" "$T/err" ||
  fail "unknown command after global options: exit $rc, $(cat "$T/err")"
rc=0; "$BACKY" --frobnicate 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "^backy: unknown option '--frobnicate'$" "$T/err" ||
  fail "unknown option: exit $rc, $(cat "$T/err")"
rc=0; "$BACKY" restore 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "^backy: restore: " "$T/err" || fail "missing TARGET: exit $rc, $(cat "$T/err")"

img=$T/vm.img
rand_bytes cli 4 > "$img"
cd "$T"
mkdir repo && cd repo
"$BACKY" init file ../vm.img           # -b defaults to the current directory
"$BACKY" backup daily
"$BACKY" backup weekly,manual:x
first=$("$BACKY" find -r 1)
second=$("$BACKY" find)
[ "$("$BACKY" find -r daily)" = "$first" ] || fail "find by tag"
[ "$("$BACKY" find -r "$first")" = "$first" ] || fail "find by id"
[ "$("$BACKY" find -r latest)" = "$second" ] || fail "find latest"
"$BACKY" status | grep -q "2 revisions" || fail "status totals"
# Size is the image's size, Written what the backup stored (2.x's Size).
"$BACKY" status | head -1 | grep -q "Size *Written" || fail "status has no Written column"
"$BACKY" status | grep -q "^Size: the image's size; Written:" || fail "status footer names no columns"
"$BACKY" status | grep "$first" | grep -q "daily" || fail "status tags"
"$BACKY" forget -r daily | grep -q "$first" || fail "forget output"
[ "$("$BACKY" find -r 0)" = "$second" ] || fail "after forget"
[ ! -e "revisions/$first.index" ] || fail "forgotten index remains"

log "empty tags and a bare manual: are refused (exit 2), and nothing is published"
before=$("$BACKY" status --yaml | grep -c '^- ' || true)
for tags in 'daily,,weekly' ',daily' 'daily,' 'manual:' 'daily,manual:' ''; do
  rc=0; "$BACKY" backup "$tags" 2>"$T/err" || rc=$?
  [ $rc = 2 ] || fail "backup '$tags': exit $rc, $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" = 1 ] && grep -Eq "^backy: backup: (empty tag|a manual: tag)" "$T/err" ||
    fail "backup '$tags': $(cat "$T/err")"
done
[ "$("$BACKY" status --yaml | grep -c '^- ' || true)" = "$before" ] ||
  fail "a refused backup published a revision"
grep -q "(daily,,weekly)" <("$BACKY" backup daily,,weekly 2>&1) || fail "the error does not name TAGS"
"$BACKY" backup manual:x,daily 2>/dev/null || fail "manual:x,daily refused"
cd /

log "-b naming a file: exit 1 and one line naming it, like a missing repository"
: > "$T/afile"
for args in status find "backup daily" "restore $T/out" "forget -r last" expire purge \
    verify "distrust -r last" upgrade "nbd-server --socket $T/nbd.sock"; do
  for dir in "$T/afile" "$T/missing"; do
    rc=0; timeout 10 "$BACKY" -b "$dir" $args 2>"$T/err" || rc=$?
    [ $rc = 1 ] || fail "-b $dir $args: exit $rc, $(cat "$T/err")"
    [ "$(wc -l < "$T/err")" = 1 ] && grep -q "^backy: ${args%% *}: .*($dir)$" "$T/err" ||
      fail "-b $dir $args: $(cat "$T/err")"
  done
done
[ ! -e "$T/missing" ] || fail "a command created the missing repository"

log "a missing scheduler config: exit 2 (backy(1): a config error at start), one line"
rc=0; "$BACKY" scheduler -c "$T/no-such.conf" 2>"$T/err" || rc=$?
[ $rc = 2 ] || fail "scheduler -c missing: exit $rc, $(cat "$T/err")"
[ "$(wc -l < "$T/err")" = 1 ] && grep -q "^backy: scheduler: .*($T/no-such.conf)$" "$T/err" ||
  fail "scheduler -c missing: $(cat "$T/err")"
echo PASS
