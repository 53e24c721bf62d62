#!/bin/bash
# What nbd-server --tls must refuse, and what it must still allow:
# - with TLS required, a plaintext client gets NBD_REP_ERR_TLS_REQD for
#   every option (EXPORT_NAME: the connection closes) and no data, no size,
#   no export names (nbdinfo, nbdcopy, a raw client), TCP and Unix socket;
# - a wrong PSK, an unknown PSK user: refused, logged, the next client served;
# - a server certificate from another CA: every client refuses it;
# - --tls on: plaintext and TLS clients both work;
# - a non-loopback -H without TLS required: a one-line error, unless
#   --insecure; the Unix socket is 0600, --socket-mode/--socket-group;
# - bad credentials at startup: a one-line error naming the file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
requires certtool psktool nbdinfo nbdcopy qemu-img

make_pki "$T/pki"
make_mixed_repo
CA=$T/pki/anon

# no_data URI: nbdinfo, nbdinfo --list and nbdcopy of URI fail and learn
# neither the size nor a revision id.
no_data() {
  if bounded nbdinfo "$1" >"$T/out" 2>&1; then fail "nbdinfo $1 succeeded: $(cat "$T/out")"; fi
  grep -q "export-size" "$T/out" && fail "nbdinfo $1 learnt the size: $(cat "$T/out")"
  if bounded nbdinfo --list "$1" >"$T/out" 2>&1; then fail "nbdinfo --list $1 succeeded"; fi
  grep -Eq "$REV0|$REV1" "$T/out" && fail "nbdinfo --list $1 saw a revision: $(cat "$T/out")"
  [ -z "$(bounded nbdcopy "$1" - 2>/dev/null | head -c 1)" ] || fail "nbdcopy $1 got data"
}

log "plaintext clients against --tls require"
start_backy --tls-certificates "$T/pki/server"
no_data "nbd://127.0.0.1:$port/$REV1"
no_data "nbd://127.0.0.1:$port/"
bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" plain --export "$REV1" --forbid "$REV1" ||
  fail "raw plaintext options against require (TCP)"
bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" plain --export last --forbid "$REV0" ||
  fail "raw plaintext options against require (TCP, last)"
alive
[ "$(bounded nbdcopy "nbds://localhost:$port/$REV1?tls-certificates=$CA" - | sha)" = "$SHA1" ] ||
  fail "TLS client after the plaintext ones"
stop_backy
start_backy --socket "$T/nbd.sock" --tls-certificates "$T/pki/server"
no_data "nbd+unix:///$REV1?socket=$T/nbd.sock"
bounded python3 "$RAW_CLIENT" "unix:$T/nbd.sock" plain --export "$REV1" --forbid "$REV1" ||
  fail "raw plaintext options against require (Unix socket)"
alive
stop_backy

log "PSK: wrong key, unknown user"
make_psk "$T/server.psk" alice
mkdir -m 0700 "$T/good" "$T/wrong" "$T/unknown"
cp "$T/server.psk" "$T/good/keys.psk"
make_psk "$T/wrong/keys.psk" alice       # alice, another key
make_psk "$T/unknown/keys.psk" carol     # a user the server does not know
start_backy --tls-psk "$T/server.psk"
no_data "nbds://alice@127.0.0.1:$port/$REV1?tls-psk-file=$T/wrong/keys.psk"
no_data "nbds://carol@127.0.0.1:$port/$REV1?tls-psk-file=$T/unknown/keys.psk"
for who in wrong:alice unknown:carol; do
  if bounded qemu-img info --object "tls-creds-psk,id=tls0,dir=$T/${who%:*},username=${who#*:},endpoint=client" \
    --image-opts "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,export=$REV1,tls-creds=tls0" \
    >/dev/null 2>&1; then
    fail "qemu-img got in with the $who PSK"
  fi
done
alive
[ "$(bounded nbdcopy "nbds://alice@127.0.0.1:$port/$REV1?tls-psk-file=$T/good/keys.psk" - | sha)" = "$SHA1" ] ||
  fail "the right PSK does not work after the wrong ones"
grep -q "carol" "$slog" || fail "the unknown PSK user is not logged: $(cat "$slog")"
grep -qi "$(cut -d: -f2 "$T/wrong/keys.psk")" "$slog" && fail "the log shows the wrong key"
stop_backy

log "a server certificate from another CA"
start_backy --tls-certificates "$T/pki/other-server"
no_data "nbds://localhost:$port/$REV1?tls-certificates=$CA"
if bounded qemu-img info --object "tls-creds-x509,id=tls0,dir=$CA,endpoint=client" \
  --image-opts "driver=nbd,server.type=inet,server.host=localhost,server.port=$port,export=$REV1,tls-creds=tls0" \
  >/dev/null 2>&1; then
  fail "qemu-img accepted a server certificate from another CA"
fi
if bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" tls --ca "$CA/ca-cert.pem" --export "$REV1" >"$T/out" 2>&1; then
  fail "the raw TLS client accepted a server certificate from another CA"
fi
if command -v nbd-client >/dev/null; then
  if bounded nbd-client -l localhost "$port" -cacertfile "$CA/ca-cert.pem" >"$T/out" 2>&1 &&
    grep -q "$REV1" "$T/out"; then
    fail "nbd-client listed through a server certificate from another CA"
  fi
fi
alive
# The same server is fine for a client that trusts its CA (B).
bounded nbdinfo "nbds://localhost:$port/$REV1?tls-certificates=$T/pki/other-trust" >/dev/null ||
  fail "a client trusting CA B cannot reach the server B signed"
stop_backy

log "--tls on: plaintext and TLS"
start_backy --tls on --tls-certificates "$T/pki/server"
out=$(bounded nbdinfo "nbd://127.0.0.1:$port/$REV1") || fail "plaintext nbdinfo with --tls on"
grep -q "without TLS" <<<"$out" || fail "plaintext nbdinfo: $out"
out=$(bounded nbdinfo "nbds://localhost:$port/$REV1?tls-certificates=$CA") || fail "TLS nbdinfo with --tls on"
grep -q "with TLS" <<<"$out" || fail "TLS nbdinfo: $out"
[ "$(bounded nbdcopy "nbd://127.0.0.1:$port/$REV1" - | sha)" = "$SHA1" ] || fail "plaintext nbdcopy with --tls on"
[ "$(bounded nbdcopy "nbds://localhost:$port/$REV0?tls-certificates=$CA" - | sha)" = "$SHA0" ] ||
  fail "TLS nbdcopy with --tls on"
bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" plain-ok --export "$REV1" --expect "$T/rev1.img" ||
  fail "raw plaintext client with --tls on"
bounded python3 "$RAW_CLIENT" "127.0.0.1:$port" tls --ca "$CA/ca-cert.pem" --export "$REV1" \
  --expect "$T/rev1.img" || fail "raw TLS client with --tls on"
grep -q "no TLS.*export '$REV1'" "$slog" || fail "the log does not mark the plaintext client: $(cat "$slog")"
stop_backy

# refused_start PATTERN ARGS...: nbd-server ARGS exits non-zero at once with
# one line on stderr matching PATTERN (and never serves).
refused_start() {
  local pattern=$1 rc=0
  shift
  timeout 10 "$BACKY" -b "$T/repo" nbd-server "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ $rc -ne 0 ] || fail "nbd-server $* started and exited 0"
  [ $rc -ne 124 ] || fail "nbd-server $* started serving: $(cat "$T/err")"
  grep -q "serving on" "$T/err" && fail "nbd-server $* was serving"
  [ "$(wc -l < "$T/err")" = 1 ] || fail "nbd-server $*: not one line: $(cat "$T/err")"
  grep -Eq -- "$pattern" "$T/err" || fail "nbd-server $*: /$pattern/ not in: $(cat "$T/err")"
  log "refused as expected: $(cat "$T/err")"
}

log "non-loopback listen addresses"
p=$(free_port)
refused_start "insecure" -H 0.0.0.0 -p "$p"
refused_start "insecure" -H 0.0.0.0 -p "$p" --tls on --tls-certificates "$T/pki/server"
refused_start "insecure" -H :: -p "$p"
# Accepted: loopback plaintext; a wildcard with --insecure, or with TLS required.
start_backy -H 127.0.0.1
bounded nbdinfo "nbd://127.0.0.1:$port/$REV1" >/dev/null || fail "plaintext on loopback"
stop_backy
start_backy -H 0.0.0.0 --insecure
bounded nbdinfo "nbd://127.0.0.1:$port/$REV1" >/dev/null || fail "-H 0.0.0.0 --insecure"
stop_backy
start_backy -H 0.0.0.0 --tls-certificates "$T/pki/server"
bounded nbdinfo "nbds://localhost:$port/$REV1?tls-certificates=$CA" >/dev/null ||
  fail "-H 0.0.0.0 with TLS required"
no_data "nbd://127.0.0.1:$port/$REV1"
stop_backy

log "the Unix socket's mode"
start_backy --socket "$T/s1.sock"
[ "$(stat -c %a "$T/s1.sock")" = 600 ] || fail "socket mode $(stat -c %a "$T/s1.sock"), not 600"
[ "$(stat -c %u "$T/s1.sock")" = "$(id -u)" ] || fail "socket not owned by us"
stop_backy
group=$(getent group daemon >/dev/null && echo daemon || id -gn)
start_backy --socket "$T/s2.sock" --socket-mode 0660 --socket-group "$group"
[ "$(stat -c %a "$T/s2.sock")" = 660 ] || fail "--socket-mode 0660 gave $(stat -c %a "$T/s2.sock")"
[ "$(stat -c %G "$T/s2.sock")" = "$group" ] || fail "--socket-group $group gave $(stat -c %G "$T/s2.sock")"
bounded nbdinfo "nbd+unix:///$REV1?socket=$T/s2.sock" >/dev/null || fail "serving on a 0660 socket"
stop_backy
refused_start "0666" --socket "$T/s3.sock" --socket-mode 0666
refused_start "nosuchgroup" --socket "$T/s3.sock" --socket-group backy-nosuchgroup

log "bad credentials at startup"
refused_start "tls-certificates|tls-psk" --tls require
refused_start "tls-certificates|tls-psk" --tls on
refused_start "off" --tls off --tls-psk "$T/server.psk"
refused_start "nonexistent" --tls-certificates "$T/nonexistent"
refused_start "server-cert.pem" --tls-certificates "$CA"        # a client's directory
refused_start "tls-certificates" --tls-psk "$T/server.psk" --tls-verify-peer
refused_start "nonexistent.psk" --tls-psk "$T/nonexistent.psk"
for bad in 'alice:zz' 'alice' ':00ff' 'alice:' 'alice:00ff\nalice:11ff' '\0\1\2'; do
  printf "$bad\n" > "$T/bad.psk"
  chmod 0600 "$T/bad.psk"
  refused_start "bad.psk" --tls-psk "$T/bad.psk"
done
ln -s "$T/server.psk" "$T/link.psk"
refused_start "link.psk" --tls-psk "$T/link.psk"
cp "$T/server.psk" "$T/open.psk"
chmod 0644 "$T/open.psk"
refused_start "open.psk" --tls-psk "$T/open.psk"
echo PASS
