# shellcheck shell=bash
# Shared helpers for the tests of backy 2.x repositories read in place
# (legacy_*.sh). Source it after lib.sh. Sets $FIX (the genuine 2.x
# repositories, tests/data/legacy-backy), $WRITER (backy-test-legacy-writer,
# tests/support/legacy_writer.cc) and $EXPECTED (lines of expected.txt:
# folder uuid sha256 size tags).

: "${BACKY_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FIX=$BACKY_SOURCE_DIR/tests/data/legacy-backy
[ -d "$FIX/v243" ] && [ -d "$FIX/v253" ] || fail "no 2.x fixtures at $FIX"
: "${LEGACY_WRITER:=$(dirname "$BACKY")/../../tests/backy-test-legacy-writer}"
WRITER=$(readlink -f "$LEGACY_WRITER")
[ -x "$WRITER" ] || fail "backy-test-legacy-writer not built: $WRITER"
EXPECTED=$(cat "$FIX/expected.txt")
# nbdsh runs python3 from PATH; the Debian one has the nbd module.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }

# Checks that may fail independently record the failure and go on, so one
# run reports every broken thing; `finish` fails the test if any did.
FAILURES=()
check_fail() {
  echo "FAIL: $*" >&2
  FAILURES+=("$*")
}
finish() {
  if [ ${#FAILURES[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILURES[@]}" >&2
    fail "${#FAILURES[@]} checks failed"
  fi
  echo PASS
}

# tree_sum DIR: one checksum over every name, type, mode, size, mtime and
# symlink target under DIR, and every file's content.
tree_sum() {
  (
    cd "$1" &&
      find . -printf '%p|%y|%m|%s|%T@|%l\n' | LC_ALL=C sort &&
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -d' ' -f1
}

# fixture_copy NAME DEST: a private, writable copy of v243 or v253.
fixture_copy() {
  cp -a "$FIX/$1" "$2"
}

# expected_field FOLDER UUID N: field N (3 = sha256, 4 = size, 5 = tags).
expected_field() {
  awk -v d="$1" -v u="$2" -v n="$3" '$1 == d && $2 == u { print $n }' <<<"$EXPECTED"
}

# Checks on `status --yaml`: status_yaml_rows FILE prints "id trust tags"
# per revision (tags comma-joined), oldest first; a first line
# "DOCS <n> <list|maps>" says how the output was laid out.
status_yaml_rows() {
  /usr/bin/python3 - "$1" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
if len(docs) == 1 and isinstance(docs[0], list):
    print("DOCS 1 list")
    revs = docs[0]
else:
    print("DOCS %d maps" % len(docs))
    revs = [r for d in docs for r in (d if isinstance(d, list) else [d])]
for r in revs:
    rid = r.get("id", r.get("uuid"))
    missing = [k for k in ("uuid", "timestamp", "parent", "tags", "trust")
               if k not in r]
    stats = r.get("stats") or {}
    missing += ["stats." + k for k in ("bytes_written", "duration")
                if k not in stats]
    print(rid, r.get("trust"), ",".join(r.get("tags") or []) or "-",
          "uuid=%s" % r.get("uuid"), "missing=%s" % (",".join(missing) or "-"))
EOF
}

# free_port: a TCP port free right now.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
