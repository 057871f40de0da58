#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and writes a URL the tests can
# use (with a superuser that may create and drop databases) to $CARGO_TARGET_DIR/.pg-url.
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
echo "$url" > "$out"
echo "PostgreSQL ready: $(psql "$url" -Atqc 'show server_version')"
