#!/bin/bash
# Colours and the progress line are for terminals: on a TTY (a pty from
# script(1)) log lines are coloured and the progress line is drawn; a
# non-empty NO_COLOR (no-color.org) turns the colours off but keeps the
# progress line; an empty one does not count; with stderr not a terminal
# there are no escape sequences at all.
. "$(dirname "$0")/lib.sh"
requires script openssl

rand_bytes colour 8 > "$T/vm.img"
"$BACKY" -b "$T/repo" init file "$T/vm.img" >/dev/null
ESC=$'\e'
colour_re="$ESC\\[[0-9;]*m"
progress_re="$ESC\\[K"

# on_tty OUT CMD...: runs CMD with its stdin, stdout and stderr on a pty.
on_tty() {
  local out=$1; shift
  script -qefc "$(printf '%q ' "$@")" /dev/null > "$out" < /dev/null
}

log "on a terminal: coloured log lines and the progress line"
on_tty "$T/tty" "$BACKY" -b "$T/repo" backup daily
grep -q "revision " "$T/tty" || fail "no revision line: $(cat -v "$T/tty")"
grep -q "$colour_re" "$T/tty" || fail "no colours on a terminal: $(cat -v "$T/tty")"
grep -q "$progress_re" "$T/tty" || fail "no progress line on a terminal: $(cat -v "$T/tty")"

log "NO_COLOR=1 on a terminal: no colours, the progress line stays"
NO_COLOR=1 on_tty "$T/nocolor" "$BACKY" -b "$T/repo" backup daily
grep -q "revision " "$T/nocolor" || fail "no revision line: $(cat -v "$T/nocolor")"
if grep -q "$colour_re" "$T/nocolor"; then fail "colours despite NO_COLOR: $(cat -v "$T/nocolor")"; fi
grep -q "$progress_re" "$T/nocolor" || fail "NO_COLOR removed the progress line: $(cat -v "$T/nocolor")"
# An error, too (printed by another path than the log lines).
NO_COLOR=yes on_tty "$T/nocolor-err" "$BACKY" -b "$T/missing" backup daily || true
grep -q "not a backy repository" "$T/nocolor-err" || fail "no error: $(cat -v "$T/nocolor-err")"
if grep -q "$ESC" "$T/nocolor-err"; then fail "escapes in an error with NO_COLOR: $(cat -v "$T/nocolor-err")"; fi

log "an empty NO_COLOR does not count"
NO_COLOR= on_tty "$T/empty" "$BACKY" -b "$T/repo" backup daily
grep -q "$colour_re" "$T/empty" || fail "an empty NO_COLOR turned colours off: $(cat -v "$T/empty")"

log "stderr not a terminal: no escape sequences"
"$BACKY" -b "$T/repo" backup daily > "$T/plain" 2>&1
grep -q "revision " "$T/plain" || fail "no revision line: $(cat -v "$T/plain")"
if grep -q "$ESC" "$T/plain"; then fail "escape sequences in a pipe: $(cat -v "$T/plain")"; fi
echo PASS
