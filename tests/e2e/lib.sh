# Shared helpers for the end-to-end tests. Source it first thing:
#   . "$(dirname "$0")/lib.sh"
# It sets -euo pipefail, makes $T (a temp dir removed on exit), and
# provides $BACKY (the binary under test).
set -euo pipefail

: "${BACKY:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/src/backup/backy}"
BACKY=$(readlink -f "$BACKY")
[ -x "$BACKY" ] || { echo "backy binary not found: $BACKY" >&2; exit 1; }

T=$(mktemp -d /tmp/backy-e2e.XXXXXX)
CLEANUPS=()
cleanup() {
  local rc=$?
  for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "--- $*" >&2; }

# requires CMD...: skip the test (exit 77) when a tool is missing.
requires() {
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c not installed" >&2; exit 77; }
  done
}

# needs_intruder: a second, unprivileged local user for the permission and
# symlink tests (made once; skips unless run as root). as_intruder CMD...
# runs CMD as that user.
needs_intruder() {
  requires setpriv useradd
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root" >&2; exit 77; }
  # Tests run in parallel (ctest -j) may create it at once: useradd fails
  # for the loser while the winner holds /etc/passwd's lock, so retry until
  # the user exists (bounded: 50 x 0.1 s).
  local i
  for i in $(seq 50); do
    id backy-intruder >/dev/null 2>&1 && return 0
    useradd -M -s /usr/sbin/nologin backy-intruder 2>/dev/null && return 0
    sleep 0.1
  done
  fail "cannot create the user backy-intruder"
}
as_intruder() {
  setpriv --reuid=backy-intruder --regid=backy-intruder --clear-groups -- "$@"
}

# expect_fail PATTERN CMD...: CMD must fail, and its stderr must match
# the extended regex PATTERN.
expect_fail() {
  local pattern=$1; shift
  local err rc=0
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] || fail "expected failure, got success: $*"
  echo "$err" | grep -Eq -- "$pattern" || fail "stderr of '$*' does not match /$pattern/: $err"
  log "failed as expected: $err"
}

# Deterministic pseudo-random bytes: rand_bytes SEED MIB > file
rand_bytes() {
  # openssl dies of SIGPIPE when head has enough; that is expected.
  { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 -in /dev/zero 2>/dev/null || true; } |
    head -c "$(( $2 * 1024 * 1024 ))"
}

# `status --yaml` prints one YAML list, a mapping per revision ("- format:
# 1", then "  id: ...", the other keys at the same indent, stats and
# verification nested below). The helpers read the item keys at indent 2.
# rev_ids REPO: the ids it lists (oldest first; damaged ones last).
rev_ids() {
  "$BACKY" -b "$1" status --yaml | awk '{ sub(/^- /, "  ") } /^  id: / { print $2 }'
}

# rev_field REPO SPEC FIELD: the first FIELD (a key at any depth, e.g.
# trust, bytes_written, chunks_new) of the revision SPEC.
rev_field() {
  local id
  id=$("$BACKY" -b "$1" find -r "$2")
  "$BACKY" -b "$1" status --yaml | awk -v id="$id" -v f="$3" '
    { sub(/^- /, "  ") }
    /^  id: / { cur = $2 }
    cur == id && $1 == f":" { print $2; exit }'
}

sha() { sha256sum | cut -d' ' -f1; }

# serve_nbd DIR SOCKET [ARGS...]: runs `backy -b DIR nbd-server --socket
# SOCKET ARGS...` in the background (stderr to $T/server.log), stopped when
# the test ends; sets $server; returns once the socket exists.
serve_nbd() {
  local dir=$1 sock=$2
  shift 2
  "$BACKY" -b "$dir" nbd-server --socket "$sock" "$@" 2>>"$T/server.log" &
  server=$!
  CLEANUPS+=("kill $server 2>/dev/null; wait $server 2>/dev/null")
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
}

# unit_exposure_below UNIT_FILE MAX: `systemd-analyze security` of the unit
# file rates it below MAX (fails naming the checks it misses otherwise).
unit_exposure_below() {
  local unit=$1 max=$2 name score
  name=$(basename "$unit")
  systemd-analyze security --offline=yes "$unit" > "$T/security" 2>&1 || true
  score=$(sed -n "s/.*Overall exposure level for $name: \([0-9.]*\).*/\1/p" "$T/security")
  [ -n "$score" ] || fail "no security score for $name: $(tail -5 "$T/security")"
  awk -v s="$score" -v m="$max" 'BEGIN { exit !(s < m) }' ||
    fail "$name: exposure $score, not below $max: $(grep '✗' "$T/security")"
  log "$name: exposure level $score"
}
