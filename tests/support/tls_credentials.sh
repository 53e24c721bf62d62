# TLS credentials for the tests of `backy nbd-server` (tests/e2e/tls_lib.sh
# and tests/nbd/e2e/tls_core_*.sh source it after their own helpers, which
# define `requires`), made with certtool and psktool (gnutls-bin):
# make_pki DIR        the set of tests/e2e/tls_lib.sh (see there): server,
#                     client, anon, rogue, other-server, other-trust dirs
# make_x509 DIR [CN]  one directory in the layout qemu and nbdkit use, with
#                     a client certificate too: ca-cert.pem, server-cert.pem,
#                     server-key.pem, client-cert.pem, client-key.pem (CN
#                     default alice), each run with its own CA
# make_psk FILE USER... psktool key file with a fresh key per user.
# Private keys are 0600.

# ---- certificates -------------------------------------------------------------
# _cert DIR NAME CA_PREFIX TEMPLATE_LINES...: NAME-key.pem and NAME-cert.pem
# in DIR, signed by CA_PREFIX-{cert,key}.pem.
_cert() {
  local dir=$1 name=$2 ca=$3
  shift 3
  printf '%s\n' "$@" expiration_days=30 > "$dir/$name.info"
  certtool --generate-privkey --key-type=ecdsa --outfile "$dir/$name-key.pem" 2>/dev/null
  certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
    --load-ca-certificate "$ca-cert.pem" --load-ca-privkey "$ca-key.pem" \
    --template "$dir/$name.info" --outfile "$dir/$name-cert.pem" 2>/dev/null
}
_ca() {  # DIR NAME CN
  printf '%s\n' "cn = $3" ca cert_signing_key expiration_days=30 > "$1/$2.info"
  certtool --generate-privkey --key-type=ecdsa --outfile "$1/$2-key.pem" 2>/dev/null
  certtool --generate-self-signed --load-privkey "$1/$2-key.pem" \
    --template "$1/$2.info" --outfile "$1/$2-cert.pem" 2>/dev/null
}

make_pki() {
  requires certtool
  local d=$1 w=$1/work
  mkdir -p "$w" "$d/server" "$d/client" "$d/anon" "$d/rogue" \
    "$d/other-server" "$d/other-trust"
  _ca "$w" ca-a "backy test CA A"
  _ca "$w" ca-b "backy test CA B"
  local server=('cn = localhost' 'dns_name = localhost' 'ip_address = 127.0.0.1'
    tls_www_server signing_key encryption_key)
  _cert "$w" server "$w/ca-a" "${server[@]}"
  _cert "$w" other-server "$w/ca-b" "${server[@]}"
  _cert "$w" alice "$w/ca-a" 'cn = alice' tls_www_client signing_key encryption_key
  _cert "$w" mallory "$w/ca-b" 'cn = mallory' tls_www_client signing_key encryption_key
  cp "$w/ca-a-cert.pem" "$d/server/ca-cert.pem"
  cp "$w/server-cert.pem" "$d/server/server-cert.pem"
  cp "$w/server-key.pem" "$d/server/server-key.pem"
  cp "$w/ca-a-cert.pem" "$d/client/ca-cert.pem"
  cp "$w/alice-cert.pem" "$d/client/client-cert.pem"
  cp "$w/alice-key.pem" "$d/client/client-key.pem"
  cp "$w/ca-a-cert.pem" "$d/anon/ca-cert.pem"
  cp "$w/ca-a-cert.pem" "$d/rogue/ca-cert.pem"
  cp "$w/mallory-cert.pem" "$d/rogue/client-cert.pem"
  cp "$w/mallory-key.pem" "$d/rogue/client-key.pem"
  cp "$w/ca-b-cert.pem" "$d/other-server/ca-cert.pem"
  cp "$w/other-server-cert.pem" "$d/other-server/server-cert.pem"
  cp "$w/other-server-key.pem" "$d/other-server/server-key.pem"
  cp "$w/ca-b-cert.pem" "$d/other-trust/ca-cert.pem"
  chmod 0600 "$d"/*/*-key.pem
}

# make_psk FILE USER...: one random key per user (psktool appends).
make_psk() {
  requires psktool
  local f=$1 u
  shift
  rm -f "$f"
  for u in "$@"; do psktool -u "$u" -p "$f" >/dev/null; done
  chmod 0600 "$f"
}

make_x509() {
  requires certtool
  local d=$1 cn=${2:-alice}
  mkdir -p "$d"
  _ca "$d" ca "backy test CA"
  _cert "$d" server "$d/ca" 'cn = localhost' 'dns_name = localhost' \
    'ip_address = 127.0.0.1' tls_www_server signing_key encryption_key
  _cert "$d" client "$d/ca" "cn = $cn" tls_www_client signing_key encryption_key
  chmod 0600 "$d"/*-key.pem
}
