#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and writes a URL the tests can
# use (with a superuser that may create and drop databases) to $CARGO_TARGET_DIR/.pg-url,
# with TLS on (the tests connect with sslmode=require and verify-full).
set -euo pipefail
out="${CARGO_TARGET_DIR:?}/.pg-url"
url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! ready; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ -z "$version" ]; then
    echo "no PostgreSQL cluster found" >&2
    exit 1
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

if ! psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password over TCP: give the superuser one.
  su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'sipas-ci'\"" >/dev/null
  url="postgres://postgres:sipas-ci@127.0.0.1:5432/postgres"
  psql "$url" -Atqc 'select 1' >/dev/null
fi
if [ "$(psql "$url" -Atqc 'show ssl')" != on ]; then
  # The TLS tests need a server that speaks TLS: a self-signed certificate for localhost,
  # in the data directory, readable by the tests (they use it as the CA for verify-full).
  echo "turning on TLS with a self-signed certificate for localhost"
  data="$(psql "$url" -Atqc 'show data_directory')"
  # CA:FALSE, like Debian's snake-oil certificate: rustls refuses a CA certificate as the
  # server's own.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    -keyout "$data/sipas-ci.key" -out "$data/sipas-ci.crt" 2>/dev/null
  chown postgres:postgres "$data/sipas-ci.key" "$data/sipas-ci.crt"
  chmod 600 "$data/sipas-ci.key"
  chmod 644 "$data/sipas-ci.crt"
  psql "$url" -qc "ALTER SYSTEM SET ssl_cert_file = '$data/sipas-ci.crt'" \
    -c "ALTER SYSTEM SET ssl_key_file = '$data/sipas-ci.key'" -c "ALTER SYSTEM SET ssl = on" \
    -c "SELECT pg_reload_conf()" >/dev/null
  sleep 1
  [ "$(psql "$url" -Atqc 'show ssl')" = on ] || { echo "PostgreSQL did not turn TLS on" >&2; exit 1; }
fi
echo "$url" > "$out"
echo "PostgreSQL ready: $(psql "$url" -Atqc 'show server_version')"
