#!/usr/bin/env bash
# Property-based tests of the HTTP API from its own OpenAPI document (schemathesis, from
# PyPI): starts the service with the demo data on a fresh database, signs in as the demo
# admin, and runs every operation through the examples, coverage, fuzzing and stateful
# phases. Passes only with no 5xx, every status code, content type, header and body as
# documented, and every request that breaks the schema refused.
#   scripts/schemathesis.sh                 # SQLite
#   scripts/schemathesis.sh postgres://...  # a PostgreSQL server: a fresh database on it
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
# Exact versions, so a new release cannot change what passes. One worker: CPython 3.11.7's
# parser is not thread-safe under hypothesis (`AST constructor recursion depth mismatch`).
tools="schemathesis==4.32.5 hypothesis==6.170.17"
venv="${SIPAS_ST_VENV:-$HOME/.cache/sipas-st-venv}"
if [ "$(cat "$venv/.tools" 2>/dev/null)" != "$tools" ] || ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # one word per package
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $tools
  echo "$tools" > "$venv/.tools"
fi
cargo build --quiet --locked --bin sipas

work="$(mktemp -d)"
server=""
database=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$database" ] && psql "$1" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1
  rm -rf "$work"
}
if [ -n "${1:-}" ]; then
  database="sipas_st_$$"
  psql "$1" -qc "CREATE DATABASE $database" >/dev/null
  url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$database")"
else
  url="sqlite://$work/st.db?mode=rwc"
fi
trap 'cleanup "${1:-}"' EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SIPAS_DATABASE_URL="$url" SIPAS_PORT="$port" SIPAS_HOST=127.0.0.1 SIPAS_LOG=warn \
  "$CARGO_TARGET_DIR/debug/sipas" serve --demo > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.5
done
password="$(sed -n 's/^demo admin account: [^ ]* \/ \([^ ]*\) .*/\1/p' "$work/server.log")"
token="$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"admin@demo.sipas.vn\",\"password\":\"$password\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
# Logging out would end the session the run signs in with.
# Run from the scratch directory: schemathesis keeps a cache in the working directory.
(cd "$work" && "$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/openapi.json" \
  -H "Authorization: Bearer $token" --exclude-operation-id logout \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
  --phases examples,coverage,fuzzing,stateful --max-examples "${SIPAS_ST_EXAMPLES:-30}" -w 1 \
  --no-color 2>&1) | tail -n 40
