#!/usr/bin/env bash
# Screenshots of the console (overview and a unit page) at phone and laptop widths, in
# Debian's Chromium driven by playwright-core, against a fresh demo database. Writes PNGs
# to ./screenshots (not committed) and prints their paths.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
out="${1:-$PWD/screenshots}"
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
(cd tests/browser && npm ci --no-audit --no-fund --silent)
cargo build --quiet --bin sipas
work="$(mktemp -d)"
db="sqlite://$work/demo.db"
sipas="$CARGO_TARGET_DIR/debug/sipas"
"$sipas" --database-url "$db" demo --responses 3000 >/dev/null 2>&1
printf '%s' 'screenshot password' | "$sipas" --database-url "$db" users add --email shots@demo.sipas.vn --role admin >/dev/null 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SIPAS_COOKIE_SECURE=false "$sipas" --database-url "$db" serve --port "$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
node tests/browser/screenshots.mjs "http://127.0.0.1:$port" shots@demo.sipas.vn 'screenshot password' DN.HAICHAU "$out"
