#!/usr/bin/env bash
# What the publication gate costs (issue 9, point 9): for the demo province and for the
# 300-unit benchmark province, how many cells are withheld under k and how many to protect
# another group, per dimension and unit level. Prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --bin sipas --bin sipas-bench
bin="$CARGO_TARGET_DIR/release"
export SIPAS_DATABASE_URL="sqlite://$work/demo.db"
"$bin/sipas" demo >/dev/null
echo "== demo province"
for year in $(( $(date +%Y) - 1 )) "$(date +%Y)"; do "$bin/sipas" withheld --year "$year"; done
echo "== benchmark province (300 units, 100,000 responses)"
"$bin/sipas-bench" --database-url "sqlite://$work/bench.db" --responses 100000 | sed -n '/publication gate/,$p'
