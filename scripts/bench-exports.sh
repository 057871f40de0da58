#!/usr/bin/env bash
# Export benchmark: streams the anonymised microdata of 100,000 and 1,000,000 responses as
# CSV and XLSX on SQLite, and prints rows per second and peak memory. The data is loaded by
# one process and exported by a fresh one, so the peak memory shown is the export's.
#   scripts/bench-exports.sh            # both sizes
#   scripts/bench-exports.sh 200000     # one size
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
sizes=("${@:-100000 1000000}")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin sipas-bench
bench="$CARGO_TARGET_DIR/release/sipas-bench"
for n in ${sizes[*]}; do
  rm -f "$work"/bench.db*
  "$bench" --database-url "sqlite://$work/bench.db" --responses "$n" --mode load >/dev/null
  "$bench" --database-url "sqlite://$work/bench.db" --responses "$n" --mode exports --reuse
done
