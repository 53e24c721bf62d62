#!/bin/bash
# backy reads backy 2.x repositories in place (issue 11): every revision of
# the genuine 2.4.3 and 2.5.3 repositories (tests/data/legacy-backy)
# restores to its recorded sha256, to stdout, to a file (exact size, the
# short last chunk) and over NBD (whole and by random 4 KiB reads); status,
# status --yaml, find by tag/number/last and verify work; all of it on a
# read-only copy whose tree checksum (names, modes, mtimes, content) does
# not change. A base directory mixing 2.x and current repositories serves
# JOB/SPEC exports. distrust and forget on a copy write what 2.5 writes.
# Revisions the helper writes (tests/support/legacy_writer.cc): one that
# never completed is neither listed nor served; shrunk images restore
# exactly; and the helper, fed the restored images, writes the genuine
# mapping and chunk files again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/legacy_lib.sh"
requires nbdinfo nbdcopy nbdsh flock

mkdir "$T/out"
chmod 777 "$T/out"
# Reading as someone who cannot write: as root, chmod a-w stops nobody, so
# the read-only copy is read by an unprivileged user; otherwise by us.
# RO is a command prefix (not a function, so that `"${RO[@]}" CMD &`
# gives CMD's own pid, which execs in place).
RO=()
if [ "$(id -u)" -eq 0 ]; then
  needs_intruder
  chmod 711 "$T"
  RO=(setpriv --reuid=backy-intruder --regid=backy-intruder --clear-groups --)
fi
as_ro() { "${RO[@]}" "$@"; }
cp -a "$FIX" "$T/ro"
chmod -R a-w "$T/ro"
CLEANUPS+=("chmod -R u+w '$T/ro'")
ro_sum=$(tree_sum "$T/ro")

sock=$T/out/nbd.sock
uri() { echo "nbd+unix:///$1?socket=$sock"; }
# serve DIR [ARGS...]: nbd-server on $sock (as the read-only user for the
# read-only copy).
serve() {
  local dir=$1 run=()
  shift
  rm -f "$sock"
  case $dir in "$T/ro"/*) run=("${RO[@]}") ;; esac
  "${run[@]}" "$BACKY" -b "$dir" nbd-server --socket "$sock" "$@" 2>>"$T/server.log" &
  server=$!
  CLEANUPS+=("kill $server 2>/dev/null; wait $server 2>/dev/null")
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || {
    check_fail "nbd-server on $dir did not start: $(tail -1 "$T/server.log")"
    return 1
  }
}
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

# --- Every revision restores: stdout and file, exact size and sha256.
while read -r folder id sum size tags <&3; do
  repo=$T/ro/$folder
  got=$(as_ro "$BACKY" -b "$repo" restore -r "$id" - 2>"$T/err" | sha) ||
    check_fail "restore $folder $id to stdout: $(cat "$T/err")"
  [ "$got" = "$sum" ] || check_fail "restore $folder $id - : sha256 $got, want $sum"
  out=$T/out/$folder-$id.img
  if as_ro "$BACKY" -b "$repo" restore -r "$id" "$out" 2>"$T/err"; then
    [ "$(stat -c %s "$out")" = "$size" ] ||
      check_fail "restore $folder $id FILE: size $(stat -c %s "$out"), want $size"
    [ "$(sha < "$out")" = "$sum" ] || check_fail "restore $folder $id FILE: sha256 differs"
  else
    check_fail "restore $folder $id FILE: $(cat "$T/err")"
  fi
done 3<<<"$EXPECTED"

# --- A block device gets the image (and --force is needed), as for ours.
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  rand_bytes garbage 24 >"$T/dev.img"
  dev=$(losetup -f --show "$T/dev.img")
  CLEANUPS+=("losetup -d $dev")
  for r in v243:G3zAdqRFrQ3QFmQydJtaN4 v253:57j9s64BLJy5eRB52bv3nq; do
    folder=${r%%:*} id=${r#*:}
    "$BACKY" -b "$T/ro/$folder" restore -r "$id" --force "$dev" 2>"$T/err" ||
      { check_fail "restore $folder $id to a block device: $(cat "$T/err")"; continue; }
    [ "$(head -c "$(expected_field "$folder" "$id" 4)" "$dev" | sha)" = "$(expected_field "$folder" "$id" 3)" ] ||
      check_fail "restore $folder $id to a block device: sha256 differs"
  done
fi

# --- status: every uuid, the distrusted one distrusted, nothing else.
for folder in v243 v253; do
  repo=$T/ro/$folder
  if ! as_ro "$BACKY" -b "$repo" status >"$T/status" 2>"$T/err"; then
    check_fail "status $folder: $(cat "$T/err")"
    continue
  fi
  cat "$T/status"
  while read -r f id sum size tags <&3; do
    [ "$f" = "$folder" ] || continue
    line=$(grep -F "$id" "$T/status") || { check_fail "status $folder lacks $id"; continue; }
    want=trusted
    [ "$id" = bRE8tzxPYvk9V64VpALFMo ] && want=distrusted
    grep -qw "$want" <<<"$line" || check_fail "status $folder: $id not $want: $line"
    for t in ${tags//,/ }; do
      grep -qF "$t" <<<"$line" || check_fail "status $folder: $id lacks tag $t: $line"
    done
  done 3<<<"$EXPECTED"
  grep -q "^3 revisions" "$T/status" || check_fail "status $folder: not 3 revisions"
  if grep -Eq "last|DAMAGED" "$T/status"; then check_fail "status $folder lists last/last.rev or damage"; fi

  if ! as_ro "$BACKY" -b "$repo" status --yaml >"$T/yaml" 2>"$T/err"; then
    check_fail "status --yaml $folder: $(cat "$T/err")"
    continue
  fi
  rows=$(status_yaml_rows "$T/yaml") || { check_fail "status --yaml $folder: not YAML"; continue; }
  echo "$rows"
  head -1 <<<"$rows" | grep -q "^DOCS 1 list" ||
    check_fail "status --yaml $folder: not one YAML document holding a list ($(head -1 <<<"$rows"))"
  want_ids=$(awk -v d="$folder" '$1 == d { print $2 }' <<<"$EXPECTED")
  [ "$(tail -n +2 <<<"$rows" | awk '{ print $1 }')" = "$want_ids" ] ||
    check_fail "status --yaml $folder: ids (oldest first) are not the 2.x uuids"
  while read -r id trust tags uuid missing <&3; do
    want=trusted
    [ "$id" = bRE8tzxPYvk9V64VpALFMo ] && want=distrusted
    [ "$trust" = "$want" ] || check_fail "status --yaml $folder: $id trust $trust, want $want"
    [ "$tags" = "$(expected_field "$folder" "$id" 5)" ] ||
      check_fail "status --yaml $folder: $id tags $tags"
    [ "$uuid" = "uuid=$id" ] || check_fail "status --yaml $folder: $id has $uuid"
    [ "$missing" = "missing=-" ] || check_fail "status --yaml $folder: $id lacks 2.x keys: $missing"
  done 3< <(tail -n +2 <<<"$rows")
done

# --- find: by tag, by number, last; the id is the 2.x uuid.
find_is() {  # find_is FOLDER SPEC WANT
  local got
  got=$(as_ro "$BACKY" -b "$T/ro/$1" find -r "$2" 2>"$T/err") ||
    { check_fail "find -r $2 in $1: $(cat "$T/err")"; return; }
  [ "$got" = "$3" ] || check_fail "find -r $2 in $1: $got, want $3"
}
find_is v243 daily m2QuChRHZgh9XmDM54T46x
find_is v243 weekly m2QuChRHZgh9XmDM54T46x
find_is v243 manual:before-upgrade JensP9UhQaqULF9Weon7tM
find_is v243 1 m2QuChRHZgh9XmDM54T46x
find_is v243 2 G3zAdqRFrQ3QFmQydJtaN4
find_is v243 last JensP9UhQaqULF9Weon7tM
find_is v243 0 JensP9UhQaqULF9Weon7tM
find_is v243 G3zAdqRFrQ3QFmQydJtaN4 G3zAdqRFrQ3QFmQydJtaN4
find_is v253 daily bRE8tzxPYvk9V64VpALFMo
find_is v253 1 bRE8tzxPYvk9V64VpALFMo
find_is v253 last 57j9s64BLJy5eRB52bv3nq
find_is v253 89tFbaqKqpCNiD4LjjZTdF 89tFbaqKqpCNiD4LjjZTdF
got=$(as_ro "$BACKY" -b "$T/ro/v253" find 2>&1) && [ "$got" = 57j9s64BLJy5eRB52bv3nq ] ||
  check_fail "find (no SPEC) in v253: $got"
for spec in 3 last.rev nosuch; do
  if as_ro "$BACKY" -b "$T/ro/v243" find -r "$spec" >/dev/null 2>&1; then
    check_fail "find -r $spec in v243 found something"
  fi
done

# --- NBD: every revision listed and served; whole copies, exact size,
# random 4 KiB reads (and the short tail) against the restored images.
for folder in v243 v253; do
  serve "$T/ro/$folder" || continue
  list=$(nbdinfo --list "$(uri "")" 2>&1) || check_fail "nbdinfo --list $folder: $list"
  [ "$(grep -c '^export=' <<<"$list")" = 3 ] ||
    check_fail "nbd $folder: not 3 exports: $(grep '^export=' <<<"$list" | tr '\n' ' ')"
  while read -r f id sum size tags <&3; do
    [ "$f" = "$folder" ] || continue
    grep -q "^export=\"$id\":" <<<"$list" || check_fail "nbd $folder: $id not listed"
    [ "$(nbdinfo --size "$(uri "$id")" 2>&1)" = "$size" ] || check_fail "nbd $folder/$id: size"
    [ "$(nbdcopy "$(uri "$id")" - | sha)" = "$sum" ] || check_fail "nbdcopy $folder/$id: sha256"
    nbdsh -u "$(uri "$id")" -c "
import random, sys
data = open('$T/out/$folder-$id.img', 'rb').read()
size = h.get_size()
assert size == len(data), (size, len(data))
rng = random.Random(11)
offs = [0, size - 4096, size - 1000, 20 * 1024 * 1024 - 2048]
offs += [rng.randrange(0, size - 4096) for _ in range(300)]
for o in offs:
    n = min(4096, size - o)
    if h.pread(n, o) != data[o:o + n]:
        sys.exit('mismatch at %d' % o)
" 2>"$T/err" || check_fail "nbd random reads $folder/$id: $(tail -2 "$T/err")"
  done 3<<<"$EXPECTED"
  sum=$(expected_field "$folder" "$(as_ro "$BACKY" -b "$T/ro/$folder" find 2>/dev/null)" 3)
  [ -n "$sum" ] && [ "$(nbdcopy "$(uri "")" - | sha)" = "$sum" ] || check_fail "nbd $folder: empty name is not the last"
  [ "$(nbdcopy "$(uri daily)" - | sha)" = "$(expected_field "$folder" "$(as_ro "$BACKY" -b "$T/ro/$folder" find -r daily 2>/dev/null)" 3)" ] ||
    check_fail "nbd $folder: export 'daily'"
  # Reading holds .purge shared, as 2.x did: a 2.x purge cannot start.
  if flock -n -x "$T/ro/$folder/.purge" true; then
    check_fail "nbd-server on $folder does not hold .purge shared"
  fi
  stop
done

# --- Reading changed nothing.
[ "$(tree_sum "$T/ro")" = "$ro_sum" ] || {
  check_fail "reading changed the read-only copy"
  diff <(cd "$FIX" && find . -printf '%p %m %s %T@\n' | sort) \
    <(cd "$T/ro" && find . -printf '%p %m %s %T@\n' | sort) >&2 || true
}

# --- verify on a writable copy passes, and touches no chunk or mapping.
for folder in v243 v253; do
  fixture_copy "$folder" "$T/$folder"
  # The .rev files may get the trust verify found (rewritten atomically,
  # so the folder's mtime changes too); the lock files are not data.
  data_sum() {
    (cd "$1" && find . -mindepth 1 \( -name '*.rev' -o -name .backup -o -name .purge \) -prune -o \
      -printf '%p|%m|%s|%T@\n' | LC_ALL=C sort) | sha
  }
  before=$(data_sum "$T/$folder")
  "$BACKY" -b "$T/$folder" verify --all >"$T/verify" 2>&1 ||
    check_fail "verify --all $folder: $(cat "$T/verify")"
  cat "$T/verify"
  "$BACKY" -b "$T/$folder" verify >"$T/verify" 2>&1 ||
    check_fail "verify $folder: $(cat "$T/verify")"
  [ "$(data_sum "$T/$folder")" = "$before" ] || check_fail "verify $folder changed more than .rev files"
done

# --- A base directory: 2.x and current repositories side by side.
mkdir "$T/base"
fixture_copy v243 "$T/base/v243"
fixture_copy v253 "$T/base/v253"
rand_bytes cur 9 >"$T/cur.img"
"$BACKY" -b "$T/base/cur" init file "$T/cur.img" >/dev/null
"$BACKY" -b "$T/base/cur" backup daily 2>/dev/null
serve "$T/base" && {
list=$(nbdinfo --list "$(uri "")" 2>&1) || check_fail "base dir: nbdinfo --list: $list"
[ "$(grep -c '^export="v243/' <<<"$list")" = 3 ] || check_fail "base dir: v243 exports"
[ "$(grep -c '^export="v253/' <<<"$list")" = 3 ] || check_fail "base dir: v253 exports"
[ "$(grep -c '^export="cur/' <<<"$list")" = 1 ] || check_fail "base dir: cur export"
[ "$(nbdcopy "$(uri v243/G3zAdqRFrQ3QFmQydJtaN4)" - | sha)" = "$(expected_field v243 G3zAdqRFrQ3QFmQydJtaN4 3)" ] ||
  check_fail "base dir: v243/<uuid>"
[ "$(nbdcopy "$(uri v253/daily)" - | sha)" = "$(expected_field v253 bRE8tzxPYvk9V64VpALFMo 3)" ] ||
  check_fail "base dir: v253/daily"
[ "$(nbdcopy "$(uri v253/1)" - | sha)" = "$(expected_field v253 bRE8tzxPYvk9V64VpALFMo 3)" ] ||
  check_fail "base dir: v253/1"
[ "$(nbdcopy "$(uri v243/)" - | sha)" = "$(expected_field v243 JensP9UhQaqULF9Weon7tM 3)" ] ||
  check_fail "base dir: v243/ (empty SPEC = last)"
[ "$(nbdcopy "$(uri cur/last)" - | sha)" = "$(sha <"$T/cur.img")" ] || check_fail "base dir: cur/last"
if nbdinfo "$(uri v243/last.rev)" >/dev/null 2>&1; then check_fail "base dir: v243/last.rev served"; fi
}
stop

# --- distrust and forget on a copy.
fixture_copy v253 "$T/d253"
"$BACKY" -b "$T/d253" distrust -r 89tFbaqKqpCNiD4LjjZTdF >"$T/err" 2>&1 ||
  check_fail "distrust v253: $(cat "$T/err")"
"$BACKY" -b "$T/d253" status | grep 89tFbaqKqpCNiD4LjjZTdF | grep -qw distrusted ||
  check_fail "distrust v253: status does not show it"
fixture_copy v243 "$T/d243"
"$BACKY" -b "$T/d243" distrust -r G3zAdqRFrQ3QFmQydJtaN4 >"$T/err" 2>&1 ||
  check_fail "distrust v243: $(cat "$T/err")"
# The .rev as 2.5 writes it on distrust: trust: distrusted, every other key
# as it was (YAML-equal; 2.5 writes '' for no parent where 2.4 wrote null).
for r in v253/89tFbaqKqpCNiD4LjjZTdF v243/G3zAdqRFrQ3QFmQydJtaN4; do
  /usr/bin/python3 - "$FIX/$r.rev" "$T/d${r#v}.rev" <<'EOF' ||
import sys, yaml
a, b = (yaml.safe_load(open(p)) for p in sys.argv[1:])
assert b["trust"] == "distrusted", b
a["trust"] = "distrusted"
a["parent"] = a["parent"] or ""
b["parent"] = b["parent"] or ""
assert a == b, (a, b)
EOF
    check_fail "distrust: $r.rev differs beyond trust: $(cat "$T/d${r#v}.rev")"
done

"$BACKY" -b "$T/d243" forget -r JensP9UhQaqULF9Weon7tM >"$T/err" 2>&1 ||
  check_fail "forget v243: $(cat "$T/err")"
[ ! -e "$T/d243/JensP9UhQaqULF9Weon7tM" ] && [ ! -e "$T/d243/JensP9UhQaqULF9Weon7tM.rev" ] ||
  check_fail "forget v243 left the mapping or the .rev"
[ "$(find "$T/d243/chunks" -name '*.chunk.lzo' | wc -l)" = 11 ] || check_fail "forget v243 touched chunks"
"$BACKY" -b "$T/d243" status >"$T/status" 2>&1 || check_fail "status after forget: $(cat "$T/status")"
grep -q "^2 revisions" "$T/status" || check_fail "status after forget: $(cat "$T/status")"
[ "$("$BACKY" -b "$T/d243" restore -r last - 2>/dev/null | sha)" = "$(expected_field v243 m2QuChRHZgh9XmDM54T46x 3)" ] ||
  check_fail "restore last after forgetting the newest (dangling last symlink)"

# --- last/last.rev as small files naming their targets (what git checks
# out where symlinks are off): still not revisions.
fixture_copy v243 "$T/lastfiles"
rm "$T/lastfiles/last" "$T/lastfiles/last.rev"
printf 'JensP9UhQaqULF9Weon7tM' >"$T/lastfiles/last"
printf 'JensP9UhQaqULF9Weon7tM.rev' >"$T/lastfiles/last.rev"
"$BACKY" -b "$T/lastfiles" status >"$T/status" 2>&1 || check_fail "status with last as files: $(cat "$T/status")"
grep -q "^3 revisions" "$T/status" || check_fail "status with last as files: $(cat "$T/status")"
[ "$("$BACKY" -b "$T/lastfiles" restore -r last - 2>/dev/null | sha)" = "$(expected_field v243 JensP9UhQaqULF9Weon7tM 3)" ] ||
  check_fail "restore -r last with last as files"

# --- Revisions the helper writes: an incomplete one is not listed or
# served; one after it is; shrunk images restore exactly.
fixture_copy v253 "$T/w253"
rand_bytes inc 6 >"$T/inc.img"
"$WRITER" --version 2.5 --dir "$T/w253" --image "$T/inc.img" --uuid Incomp1eteRevisionXXXa \
  --tags daily --timestamp '2026-12-01 20:00:00.000001+00:00' --incomplete
"$BACKY" -b "$T/w253" status >"$T/status" 2>&1 || check_fail "status with an incomplete revision: $(cat "$T/status")"
if grep -q Incomp1eteRevision "$T/status"; then check_fail "incomplete revision listed: $(cat "$T/status")"; fi
if "$BACKY" -b "$T/w253" restore -r Incomp1eteRevisionXXXa - >/dev/null 2>&1; then
  check_fail "incomplete revision restored"
fi
[ "$("$BACKY" -b "$T/w253" find -r daily 2>/dev/null)" = bRE8tzxPYvk9V64VpALFMo ] ||
  check_fail "find -r daily picked the incomplete revision"
truncate -s 9M "$T/inc.img"
printf 'changed' | dd of="$T/inc.img" bs=1 seek=5000000 conv=notrunc status=none
"$WRITER" --version 2.5 --dir "$T/w253" --image "$T/inc.img" --uuid AfterIncomp1eteXXXXXXa \
  --tags daily --timestamp '2026-12-01 20:10:00+00:00'
[ "$("$BACKY" -b "$T/w253" restore -r daily - 2>/dev/null | sha)" = "$(sha <"$T/inc.img")" ] ||
  check_fail "restore of a revision whose parent never completed"
if serve "$T/w253"; then
  list=$(nbdinfo --list "$(uri "")" 2>&1)
  if grep -q Incomp1eteRevision <<<"$list"; then check_fail "incomplete revision served"; fi
  [ "$(grep -c '^export=' <<<"$list")" = 4 ] || check_fail "nbd w253: not 4 exports"
  if nbdinfo "$(uri Incomp1eteRevisionXXXa)" >/dev/null 2>&1; then check_fail "incomplete revision opened"; fi
  stop
fi

# 2.4 shrinking an image: the last chunk file keeps the old tail, and a
# slot starting at the new size stays in the mapping.
rand_bytes big 12 >"$T/big.img"
"$WRITER" --version 2.4 --dir "$T/w24" --image "$T/big.img" --uuid BigRevisionXXXXXXXXXXa \
  --timestamp '2026-11-01 10:00:00+00:00' --tags daily
head -c $((10 * 1024 * 1024 + 12345)) "$T/big.img" >"$T/small.img"
"$WRITER" --version 2.4 --dir "$T/w24" --image "$T/small.img" --uuid SmallRevisionXXXXXXXXa \
  --timestamp '2026-11-02 10:00:00+00:00' --tags weekly
head -c $((8 * 1024 * 1024)) "$T/big.img" >"$T/exact.img"
"$WRITER" --version 2.4 --dir "$T/w24" --image "$T/exact.img" --uuid ExactRevisionXXXXXXXXa \
  --timestamp '2026-11-03 10:00:00+00:00' --tags monthly
grep -q '"2": ' "$T/w24/ExactRevisionXXXXXXXXa" || fail "writer: 2.4 boundary slot not kept"
for t in daily:big weekly:small monthly:exact; do
  "$BACKY" -b "$T/w24" restore -r "${t%%:*}" "$T/out/w24-${t#*:}.img" 2>"$T/err" ||
    { check_fail "restore w24 ${t%%:*}: $(cat "$T/err")"; continue; }
  cmp -s "$T/out/w24-${t#*:}.img" "$T/${t#*:}.img" || check_fail "restore w24 ${t%%:*}: differs (size $(stat -c %s "$T/out/w24-${t#*:}.img"))"
done
"$BACKY" -b "$T/w24" verify --all >"$T/verify" 2>&1 || check_fail "verify w24: $(cat "$T/verify")"
if serve "$T/w24"; then
  for t in daily:big weekly:small monthly:exact; do
    [ "$(nbdcopy "$(uri "${t%%:*}")" - 2>"$T/err" | sha)" = "$(sha <"$T/${t#*:}.img")" ] ||
      check_fail "nbdcopy w24 ${t%%:*}: $(tail -1 "$T/err")"
  done
  stop
fi

# A bigger 2.5 repository (11 and then 13 slots: more than a restore or
# NBD read-ahead window), restored and served whole.
rand_bytes bigger 40 >"$T/b1.img"
truncate -s $((42 * 1024 * 1024 + 777)) "$T/b1.img"
"$WRITER" --version 2.5 --dir "$T/w25" --image "$T/b1.img" --uuid BiggerOneXXXXXXXXXXXXa \
  --timestamp '2026-11-01 10:00:00+00:00' --tags daily
cp "$T/b1.img" "$T/b2.img"
rand_bytes bigger2 1 | dd of="$T/b2.img" bs=1K seek=20000 conv=notrunc status=none
truncate -s $((50 * 1024 * 1024)) "$T/b2.img"
"$WRITER" --version 2.5 --dir "$T/w25" --image "$T/b2.img" --uuid BiggerTwoXXXXXXXXXXXXa \
  --timestamp '2026-11-02 10:00:00+00:00' --tags weekly --trust verified
"$BACKY" -b "$T/w25" status 2>&1 | grep BiggerTwo | grep -qw verified ||
  check_fail "a 2.x verified revision does not show as verified"
for t in daily:b1 weekly:b2; do
  [ "$("$BACKY" -b "$T/w25" restore -r "${t%%:*}" - 2>"$T/err" | sha)" = "$(sha <"$T/${t#*:}.img")" ] ||
    check_fail "restore w25 ${t%%:*}: $(cat "$T/err")"
done
if serve "$T/w25"; then
  [ "$(nbdcopy "$(uri weekly)" - | sha)" = "$(sha <"$T/b2.img")" ] || check_fail "nbdcopy w25 weekly"
  [ "$(nbdcopy "$(uri daily)" - | sha)" = "$(sha <"$T/b1.img")" ] || check_fail "nbdcopy w25 daily"
  stop
fi

# --- The helper, given the images backy restored, writes the genuine
# mapping and chunk files again (the CLI path of legacy_writer_test).
for folder in v243 v253; do
  v=2.${folder:2:1}
  while read -r f id sum size tags <&3; do
    [ "$f" = "$folder" ] || continue
    ts=$(sed -n 's/^timestamp: //p' "$FIX/$folder/$id.rev")
    "$WRITER" --version "$v" --dir "$T/re-$folder" --image "$T/out/$folder-$id.img" --uuid "$id" \
      --tags "$tags" --timestamp "$ts" || fail "writer on $folder/$id"
    cmp -s "$T/re-$folder/$id" "$FIX/$folder/$id" || check_fail "writer: mapping of $folder/$id differs"
  done 3<<<"$EXPECTED"
  diff <(cd "$FIX/$folder/chunks" && find . -name '*.lzo' -exec sha256sum {} + | sort) \
    <(cd "$T/re-$folder/chunks" && find . -name '*.lzo' -exec sha256sum {} + | sort) >&2 ||
    check_fail "writer: chunk files of $folder differ"
done

finish
