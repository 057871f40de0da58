#!/usr/bin/env bash
# Export benchmark: the anonymised microdata of N responses (default 100,000) as CSV and XLSX,
# on SQLite and on PostgreSQL, beside the raw read of the same joined rows in the same run
# (`sqlite3 -csv`, `psql \copy ... TO '/dev/null' CSV`: every response of the year with its
# quasi-identifiers, comment and answers folded into one column, in id order), interleaved,
# medians of ROUNDS. Prints rows per second, the ratios (service / raw read, XLSX / CSV) and
# the export process's peak memory. The data is loaded by one process and exported by a fresh
# one, so the peak memory shown is the export's.
#   scripts/bench-exports.sh [responses] [rounds]
#   BENCH_PG=postgres://postgres@127.0.0.1:5432/postgres  (the server to create a database on)
#   BENCH_BACKENDS="sqlite postgres"  BENCH_NO_BUILD=1 (use the release binary as built)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
n="${1:-100000}"
rounds="${2:-3}"
pg_admin="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
backends="${BENCH_BACKENDS:-sqlite postgres}"
work="$(mktemp -d)"
pg_db="sipas_bench_exports_$$"
cleanup() {
  rm -rf "$work"
  psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

command -v sqlite3 >/dev/null || { apt-get install -y -qq sqlite3 >/dev/null 2>&1 || sudo apt-get install -y -qq sqlite3; }
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --quiet --bin sipas-bench
bench="$CARGO_TARGET_DIR/release/sipas-bench"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# The joined rows the export reads, without the service: id order, the year of the export.
columns="r.id, r.unit_id, r.survey_date, r.respondent_type, r.channel, r.service, r.gender, r.age_band, \
r.education, r.occupation, r.comment"
where="r.flagged = false AND r.form_id = 'sipas-2017' AND r.survey_date BETWEEN '2025-01-01' AND '2025-12-31'"
sqlite_raw="SELECT $columns, (SELECT group_concat(item_code || ':' || value, ',') FROM answers a \
WHERE a.response_id = r.id) FROM responses r WHERE ${where//false/0} ORDER BY r.id;"
pg_raw="SELECT $columns, (SELECT string_agg(item_code || ':' || value::text, ',') FROM answers a \
WHERE a.response_id = r.id) FROM responses r WHERE $where ORDER BY r.id"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
now() { date +%s.%N; }

for backend in $backends; do
  if [ "$backend" = sqlite ]; then
    url="sqlite://$work/bench.db"
    raw() { sqlite3 -csv "$work/bench.db" "$sqlite_raw" >/dev/null; }
  else
    psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db" >/dev/null
    url="${pg_admin%/*}/$pg_db"
    raw() { psql -q "$url" -c "\\copy ($pg_raw) TO '/dev/null' WITH CSV"; }
  fi
  "$bench" --database-url "$url" --responses "$n" --mode load >/dev/null
  : > "$work/csv" ; : > "$work/xlsx"; : > "$work/raw"; : > "$work/mem"
  for round in $(seq "$rounds"); do
    t0=$(now); raw; t1=$(now)
    out="$("$bench" --database-url "$url" --responses "$n" --mode exports --reuse)"
    # The export's rows (the responses of 2025) are the rows the raw read read.
    rows=$(echo "$out" | awk '$1 == "csv:" {print $2}')
    awk -v n="$rows" -v a="$t0" -v b="$t1" 'BEGIN {print n / (b - a)}' >> "$work/raw"
    echo "$out" | awk '$1 == "csv:" {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^rows\/s/) print $i}' | tr -d ',' >> "$work/csv"
    echo "$out" | awk '$1 == "xlsx:" {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^rows\/s/) print $i}' | tr -d ',' >> "$work/xlsx"
    echo "$out" | awk '/peak memory so far/ {print $(NF-1)}' | tail -1 >> "$work/mem"
  done
  raw_rate=$(median < "$work/raw"); csv_rate=$(median < "$work/csv"); xlsx_rate=$(median < "$work/xlsx")
  printf '%s, %s responses loaded, %s in the exported year, medians of %s rounds (load average now %s):\n' "$backend" "$n" "$rows" "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '  raw read of the same rows   %10.0f rows/s\n' "$raw_rate"
  printf '  microdata CSV               %10.0f rows/s   ratio to the raw read %.2f (goal 0.8)\n' "$csv_rate" "$(awk -v a="$csv_rate" -v b="$raw_rate" 'BEGIN {print a / b}')"
  printf '  microdata XLSX              %10.0f rows/s   ratio to the CSV %.2f (goal 0.5)\n' "$xlsx_rate" "$(awk -v a="$xlsx_rate" -v b="$csv_rate" 'BEGIN {print a / b}')"
  printf '  peak memory of the export process: %s MiB\n' "$(sort -g "$work/mem" | tail -1)"
done
