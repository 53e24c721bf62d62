#!/bin/bash
# The command line: every command has --help; usage errors exit 2 with
# "backy: COMMAND: ..."; find/forget/status behave as documented.
. "$(dirname "$0")/lib.sh"
requires openssl

"$BACKY" --help | grep -q "backup" || fail "--help lists no commands"
for cmd in init backup restore status find forget; do
  "$BACKY" $cmd --help > "$T/help" || fail "$cmd --help failed"
  grep -qi "usage" "$T/help" || fail "$cmd --help has no usage"
done
"$BACKY" restore --help | grep -q -- "--force" || fail "restore --help lacks --force"
"$BACKY" --version | grep -q "backy" || fail "--version"

rc=0; "$BACKY" 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "no command: exit $rc"
rc=0; "$BACKY" frobnicate 2>"$T/err" || rc=$?
[ $rc = 2 ] || fail "unknown command: exit $rc"
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
"$BACKY" status | grep "$first" | grep -q "daily" || fail "status tags"
"$BACKY" forget -r daily | grep -q "$first" || fail "forget output"
[ "$("$BACKY" find -r 0)" = "$second" ] || fail "after forget"
[ ! -e "revisions/$first.index" ] || fail "forgotten index remains"
cd /
echo PASS
