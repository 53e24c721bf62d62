# TLS credentials for the NBD tests (sourced after functions.sh or lib.sh):
# make_x509 DIR [CLIENT_CN] writes the layout qemu and nbdkit use (ca-cert.pem,
# server-cert.pem, server-key.pem, and client-cert.pem/client-key.pem for
# CLIENT_CN, default alice) with certtool; make_psk FILE USER... writes a
# psktool key file. Keys are 0600.

_certtool_template() {  # FILE LINES...: a certtool template
  local f=$1; shift
  printf '%s\n' "$@" > "$f"
}

make_x509() {
  local dir=$1 cn=${2:-alice}
  mkdir -p "$dir"
  (
    umask 077
    certtool --generate-privkey --outfile "$dir/ca-key.pem" 2>/dev/null
    _certtool_template "$dir/ca.info" "cn = backy test CA" ca cert_signing_key \
      "expiration_days = 2"
    certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" \
      --template "$dir/ca.info" --outfile "$dir/ca-cert.pem" 2>/dev/null
    certtool --generate-privkey --outfile "$dir/server-key.pem" 2>/dev/null
    _certtool_template "$dir/server.info" "cn = localhost" \
      "dns_name = localhost" "ip_address = 127.0.0.1" tls_www_server \
      encryption_key signing_key "expiration_days = 2"
    certtool --generate-certificate --load-privkey "$dir/server-key.pem" \
      --load-ca-certificate "$dir/ca-cert.pem" \
      --load-ca-privkey "$dir/ca-key.pem" --template "$dir/server.info" \
      --outfile "$dir/server-cert.pem" 2>/dev/null
    certtool --generate-privkey --outfile "$dir/client-key.pem" 2>/dev/null
    _certtool_template "$dir/client.info" "cn = $cn" tls_www_client \
      encryption_key signing_key "expiration_days = 2"
    certtool --generate-certificate --load-privkey "$dir/client-key.pem" \
      --load-ca-certificate "$dir/ca-cert.pem" \
      --load-ca-privkey "$dir/ca-key.pem" --template "$dir/client.info" \
      --outfile "$dir/client-cert.pem" 2>/dev/null
  )
  chmod 0644 "$dir"/*-cert.pem
}

make_psk() {
  local file=$1; shift
  local u
  for u in "$@"; do psktool -u "$u" -p "$file" >/dev/null; done
  chmod 0600 "$file"
}
