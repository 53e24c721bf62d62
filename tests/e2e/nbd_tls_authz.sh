#!/bin/bash
# nbd-server --authz FILE: who may read which disk. A directory of two jobs
# (vm1, vm7) served over TLS with PSK users alice: [vm1], bob: "*" and carol
# (not in the file):
# - nbdinfo --list shows alice only vm1's exports, bob both jobs', carol
#   none, and a plaintext client under --tls on none;
# - alice cannot open vm7/last, and is told exactly what she is told for a
#   job that does not exist (the server's reply text, and nbdinfo's error);
# - alice's vm1/last is `backy restore -r last -` byte for byte;
# - with client certificates (--tls-verify-peer) the common name decides;
# - refused at startup, with one line and exit 2: a single repository,
#   --tls off, certificates without --tls-verify-peer, a bad authz file
#   (and --authz '' exits 2 too).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires psktool certtool nbdinfo nbdcopy

# Two jobs, as the scheduler keeps them: $T/jobs/vm1 (two revisions), vm7.
mixed_image "$T/vm1.img" authz1
mixed_image "$T/vm7.img" authz7
for j in vm1 vm7; do
  "$BACKY" -b "$T/jobs/$j" init file "$T/$j.img" >/dev/null
  "$BACKY" -b "$T/jobs/$j" backup daily >/dev/null
done
rand_bytes authz1b 1 | dd of="$T/vm1.img" bs=1M seek=3 conv=notrunc status=none
"$BACKY" -b "$T/jobs/vm1" backup hourly >/dev/null
VM1_LAST=$("$BACKY" -b "$T/jobs/vm1" find -r last)
VM1_OLD=$("$BACKY" -b "$T/jobs/vm1" find -r 1)
VM7_LAST=$("$BACKY" -b "$T/jobs/vm7" find -r last)
SHA_VM1=$("$BACKY" -b "$T/jobs/vm1" restore -r last - | sha)
REPO=$T/jobs

make_psk "$T/server.psk" alice bob carol
for u in alice bob carol; do
  mkdir -m 0700 "$T/$u"
  grep "^$u:" "$T/server.psk" > "$T/$u/keys.psk"
  chmod 0600 "$T/$u/keys.psk"
done
cat > "$T/authz.yaml" <<'EOF'
# who may read which disk
alice: [vm1]
bob: "*"
EOF
chmod 0644 "$T/authz.yaml"

# list USER: the export names nbdinfo --list shows USER, sorted.
list() {
  bounded nbdinfo --list "nbds://$1@127.0.0.1:$port/?tls-psk-file=$T/$1/keys.psk" \
    >"$T/list.$1" 2>&1 || fail "nbdinfo --list as $1: $(cat "$T/list.$1")"
  sed -n 's/^export="\([^"]*\)":$/\1/p' "$T/list.$1" | sort
}

log "PSK: LIST per identity"
start_backy --tls on --tls-psk "$T/server.psk" --authz "$T/authz.yaml"
grep -q "authz.yaml: 2 TLS identities" "$slog" || fail "startup log: $(cat "$slog")"
[ "$(list alice)" = "$(printf '%s\n' "vm1/$VM1_LAST" "vm1/$VM1_OLD" | sort)" ] ||
  fail "alice's list: $(cat "$T/list.alice")"
[ "$(list bob)" = "$(printf '%s\n' "vm1/$VM1_LAST" "vm1/$VM1_OLD" "vm7/$VM7_LAST" | sort)" ] ||
  fail "bob's list: $(cat "$T/list.bob")"
[ -z "$(list carol)" ] || fail "carol (not in the file) lists: $(cat "$T/list.carol")"
grep -q '^export="vm7/' "$T/list.alice" && fail "alice's list names vm7: $(cat "$T/list.alice")"
# --tls on: a plaintext client has no identity, so it sees nothing.
bounded nbdinfo --list "nbd://127.0.0.1:$port/" >"$T/list.plain" 2>&1 ||
  fail "plaintext nbdinfo --list: $(cat "$T/list.plain")"
grep -q '^export=' "$T/list.plain" && fail "a plaintext client lists: $(cat "$T/list.plain")"

log "PSK: opening another job's export looks like opening no job at all"
alice_uri() { echo "nbds://alice@127.0.0.1:$port/$1?tls-psk-file=$T/alice/keys.psk"; }
# try NAME: nbdinfo of NAME as alice must fail; its stderr (with the
# server's reply text, LIBNBD_DEBUG) in $T/try.JOB, the job renamed to JOB.
try() {
  local name=$1 job=${1%%/*}
  if LIBNBD_DEBUG=1 bounded nbdinfo "$(alice_uri "$name")" >"$T/try.out" 2>&1; then
    fail "alice opened $name: $(cat "$T/try.out")"
  fi
  grep -q "export-size" "$T/try.out" && fail "alice learnt the size of $name"
  # Only the lines about the option replies: the rest (timestamps, the
  # handle's name, TLS details) differs between any two runs.
  grep -E "server replied with error|export .*not available|nbdinfo:" "$T/try.out" |
    sed -e 's/^libnbd: debug: [^:]*: //' -e "s|$job/|JOB/|g" -e "s|'$job'|'JOB'|g" \
      -e 's/nbd[0-9]*:/nbd:/g' > "$T/try.${job}"
  [ -s "$T/try.${job}" ] || fail "no reply text for $name: $(cat "$T/try.out")"
}
try vm7/last
try nosuchjob/last
grep -q "not available" "$T/try.vm7" || fail "no server message for vm7/last: $(cat "$T/try.vm7")"
diff "$T/try.vm7" "$T/try.nosuchjob" >&2 ||
  fail "vm7/last (refused) and nosuchjob/last (absent) are answered differently"
try "vm7/$VM7_LAST"
try "nosuchjob/$VM7_LAST"
diff "$T/try.vm7" "$T/try.nosuchjob" >&2 ||
  fail "vm7/ID (refused) and nosuchjob/ID (absent) are answered differently"
if bounded nbdcopy "$(alice_uri vm7/last)" - 2>/dev/null | head -c 1 | grep -q .; then
  fail "nbdcopy of vm7/last as alice got data"
fi
grep -q "TLS 'alice', may not open 'vm7/last'" "$slog" ||
  fail "the log does not say alice was refused vm7: $(cat "$slog")"

log "PSK: granted reads are exact"
[ "$(bounded nbdcopy "$(alice_uri vm1/last)" - | sha)" = "$SHA_VM1" ] ||
  fail "alice's vm1/last differs from restore -r last -"
[ "$(bounded nbdcopy "nbds://bob@127.0.0.1:$port/vm7/last?tls-psk-file=$T/bob/keys.psk" - | sha)" = \
  "$("$BACKY" -b "$T/jobs/vm7" restore -r last - | sha)" ] || fail "bob's vm7/last differs"
if bounded nbdinfo "nbds://carol@127.0.0.1:$port/vm1/last?tls-psk-file=$T/carol/keys.psk" >/dev/null 2>&1; then
  fail "carol opened vm1/last"
fi
if bounded nbdinfo "nbd://127.0.0.1:$port/vm1/last" >/dev/null 2>&1; then
  fail "a plaintext client opened vm1/last"
fi
alive
stop_backy

log "x509 with --tls-verify-peer: the certificate's CN (alice) decides"
make_pki "$T/pki"
start_backy --tls-certificates "$T/pki/server" --tls-verify-peer --authz "$T/authz.yaml"
bounded nbdinfo --list "nbds://localhost:$port/?tls-certificates=$T/pki/client" >"$T/list.cert" 2>&1 ||
  fail "nbdinfo --list with alice's certificate: $(cat "$T/list.cert")"
grep -q "^export=\"vm1/$VM1_LAST\":" "$T/list.cert" || fail "alice's cert list: $(cat "$T/list.cert")"
grep -q '^export="vm7/' "$T/list.cert" && fail "alice's certificate lists vm7: $(cat "$T/list.cert")"
if bounded nbdinfo "nbds://localhost:$port/vm7/last?tls-certificates=$T/pki/client" >/dev/null 2>&1; then
  fail "alice's certificate opened vm7/last"
fi
[ "$(bounded nbdcopy "nbds://localhost:$port/vm1/last?tls-certificates=$T/pki/client" - | sha)" = "$SHA_VM1" ] ||
  fail "vm1/last with alice's certificate differs"
alive
stop_backy

log "refusals at startup"
# refused DIR PATTERN ARGS...: backy -b DIR nbd-server ARGS must exit 2 with
# one line matching PATTERN (before listening: a server that starts fails
# the test by its timeout).
refused() {
  local dir=$1 pattern=$2 rc=0
  shift 2
  bounded "$BACKY" -b "$dir" nbd-server -p 0 "$@" >/dev/null 2>"$T/err" || rc=$?
  [ $rc -eq 2 ] || fail "nbd-server $* exited $rc, not 2: $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" -eq 1 ] || fail "nbd-server $*: not one line: $(cat "$T/err")"
  grep -Eq -- "$pattern" "$T/err" || fail "nbd-server $*: /$pattern/ not in: $(cat "$T/err")"
  log "refused as expected: $(cat "$T/err")"
}
refused "$T/jobs/vm1" "single repository" --tls-psk "$T/server.psk" --authz "$T/authz.yaml"
refused "$REPO" "needs TLS" --authz "$T/authz.yaml"
refused "$REPO" "needs TLS" --tls off --authz "$T/authz.yaml"
refused "$REPO" "needs TLS" --tls off --tls-psk "$T/server.psk" --authz "$T/authz.yaml"
refused "$REPO" "x509 certificates give none without --tls-verify-peer" \
  --tls-certificates "$T/pki/server" --authz "$T/authz.yaml"
refused "$REPO" "x509 certificates give none without --tls-verify-peer" \
  --tls on --tls-certificates "$T/pki/server" --authz "$T/authz.yaml"
# An empty name is not "no --authz" (everyone would see everything).
rc=0
bounded "$BACKY" -b "$REPO" nbd-server -p 0 --tls-psk "$T/server.psk" --authz "" \
  >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--authz: empty" "$T/err" ||
  fail "--authz '': exit $rc: $(cat "$T/err")"
# Certificates without --tls-verify-peer are fine beside PSK identities.
start_backy --tls-certificates "$T/pki/server" --tls-psk "$T/server.psk" --authz "$T/authz.yaml"
[ "$(list alice)" = "$(printf '%s\n' "vm1/$VM1_LAST" "vm1/$VM1_OLD" | sort)" ] ||
  fail "alice's list beside x509: $(cat "$T/list.alice")"
stop_backy
# The authz file itself.
printf 'alice: [vm1]\nalice: [vm7]\n' > "$T/dup.yaml"
refused "$REPO" "dup.yaml:2: identity 'alice' is given twice" --tls-psk "$T/server.psk" --authz "$T/dup.yaml"
printf 'alice: [../vm7]\n' > "$T/bad.yaml"
refused "$REPO" "bad.yaml:1: .*bad job name" --tls-psk "$T/server.psk" --authz "$T/bad.yaml"
ln -s "$T/authz.yaml" "$T/link.yaml"
refused "$REPO" "symbolic link.*link.yaml" --tls-psk "$T/server.psk" --authz "$T/link.yaml"
cp "$T/authz.yaml" "$T/open.yaml" && chmod 0666 "$T/open.yaml"
refused "$REPO" "writable by group or others.*open.yaml" --tls-psk "$T/server.psk" --authz "$T/open.yaml"
echo PASS
