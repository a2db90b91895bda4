#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts (/docker-entrypoint.d/).
#
# PROXY_MODE=http: serves zenconn over plain HTTP (zenconn-http.conf).
# PROXY_MODE=tls:  serves it over HTTPS (zenconn-tls.conf) with, in this order:
#   1. the certificate the user mounted: tls.crt and tls.key in PROXY_TLS_MOUNT_DIR;
#   2. the self-signed one made at an earlier start, kept in PROXY_TLS_STATE_DIR (a volume);
#   3. a new self-signed one (EC P-256, 825 days) for the names in PROXY_TLS_NAMES
#      (comma-separated host names and IP addresses; the first is the subject's CN).
# nginx reads the chosen pair through links in PROXY_TLS_ACTIVE_DIR.
#
# The folders can be moved with the variables below (test/deploy runs this script natively).
set -eu

mode=${PROXY_MODE:-http}
conf_dir=${PROXY_CONF_DIR:-/etc/nginx/conf.d}
snippets=${PROXY_SNIPPETS_DIR:-/etc/nginx/zenconn}
mount_dir=${PROXY_TLS_MOUNT_DIR:-/etc/zenconn-proxy/certs}
state_dir=${PROXY_TLS_STATE_DIR:-/var/lib/zenconn-proxy}
active_dir=${PROXY_TLS_ACTIVE_DIR:-/etc/nginx/tls}
names=${PROXY_TLS_NAMES:-localhost,127.0.0.1,::1}

say() { echo "zenconn-proxy: $*"; }
fail() { echo "zenconn-proxy: $*" >&2; exit 1; }

case "$mode" in
  http | tls) ;;
  *) fail "PROXY_MODE must be http or tls, not \"$mode\"" ;;
esac
mkdir -p "$conf_dir"
ln -sf "$snippets/zenconn-$mode.conf" "$conf_dir/zenconn.conf"
say "mode $mode"
[ "$mode" = tls ] || exit 0

# The subjectAltName list: IP: for addresses (a dotted quad, or anything with a colon), DNS: otherwise.
san=''
cn=''
old_ifs=$IFS
IFS=','
for name in $names; do
  name=$(echo "$name" | tr -d ' ')
  [ -n "$name" ] || continue
  [ -n "$cn" ] || cn=$name
  if echo "$name" | grep -Eq '^[0-9]+(\.[0-9]+){3}$|:'; then entry="IP:$name"; else entry="DNS:$name"; fi
  san="${san:+$san,}$entry"
done
IFS=$old_ifs
[ -n "$cn" ] || fail "PROXY_TLS_NAMES is empty"

if [ -f "$mount_dir/tls.crt" ] && [ -f "$mount_dir/tls.key" ]; then
  source_dir=$mount_dir
  say "using the mounted certificate $mount_dir/tls.crt"
elif [ -f "$mount_dir/tls.crt" ] || [ -f "$mount_dir/tls.key" ]; then
  fail "$mount_dir has only one of tls.crt and tls.key: mount both, or neither for a self-signed certificate"
else
  source_dir=$state_dir
  if [ -f "$state_dir/tls.crt" ] && [ -f "$state_dir/tls.key" ]; then
    say "using the self-signed certificate made at first start ($state_dir/tls.crt)"
  else
    mkdir -p "$state_dir"
    work=$(mktemp -d "$state_dir/.new.XXXXXX")
    # A leaf certificate (CA:FALSE, serverAuth): browsers refuse a self-signed CA
    # certificate as a server's, which is what `openssl req -x509` makes by default.
    cat > "$work/openssl.cnf" <<CNF
[req]
distinguished_name = dn
x509_extensions = leaf
prompt = no
[dn]
CN = $cn
O = zenconn self-signed
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = $san
CNF
    (umask 077 && openssl req -x509 -config "$work/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -nodes -days 825 -keyout "$work/tls.key" -out "$work/tls.crt" 2>"$work/openssl.log") \
      || { cat "$work/openssl.log" >&2; rm -rf "$work"; fail "openssl could not make a self-signed certificate"; }
    chmod 644 "$work/tls.crt"
    # Key first, certificate last: a start interrupted in between makes a new pair next time.
    mv "$work/tls.key" "$state_dir/tls.key"
    mv "$work/tls.crt" "$state_dir/tls.crt"
    rm -rf "$work"
    say "made a self-signed certificate for $san ($state_dir/tls.crt); mount tls.crt and tls.key to use your own"
  fi
fi

mkdir -p "$active_dir"
ln -sf "$source_dir/tls.crt" "$active_dir/tls.crt"
ln -sf "$source_dir/tls.key" "$active_dir/tls.key"
