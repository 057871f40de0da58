#!/usr/bin/env bash
# Index benchmark: rankings from tallies against a scan of the raw answers, on SQLite and
# on PostgreSQL, at 100,000 and 1,000,000 responses (22 answers each, 300 units).
#   scripts/bench-indices.sh                 # both sizes, both databases
#   scripts/bench-indices.sh 200000          # one size
# PostgreSQL: PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); a database
# sipas_bench is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
sizes=("${@:-100000 1000000}")
pg="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin sipas-bench
bench="$CARGO_TARGET_DIR/release/sipas-bench"
for n in ${sizes[*]}; do
  rm -f "$work"/bench.db*
  "$bench" --database-url "sqlite://$work/bench.db" --responses "$n"
  if psql "$pg" -Atqc 'select 1' >/dev/null 2>&1; then
    psql "$pg" -qc 'DROP DATABASE IF EXISTS sipas_bench WITH (FORCE)' -qc 'CREATE DATABASE sipas_bench'
    "$bench" --database-url "${pg%/*}/sipas_bench" --responses "$n"
    psql "$pg" -qc 'DROP DATABASE IF EXISTS sipas_bench WITH (FORCE)'
  else
    echo "PostgreSQL not reachable at $pg: skipped"
  fi
done
