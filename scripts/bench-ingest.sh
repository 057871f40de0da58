#!/usr/bin/env bash
# Ingest benchmark: the service's POST /api/v1/responses against the plain ceiling of the
# same database, interleaved, in rounds (median of each figure over the rounds):
#   PostgreSQL: pgbench doing one response + 22 answers per transaction into the same tables
#               of the same database, with 8 and 32 clients; the service with 8 and 32
#               connections, and with 32 connections dealt out over 2 and 3 instances of
#               it on the same database (on this one machine, sharing its cores).
#   SQLite:     one writer doing the same inserts, one transaction each, WAL +
#               synchronous=FULL (as the service opens the file); the service with 8 and 32
#               connections.
# Each post is a unique submission (22 answers, a random unit of 300) carrying a survey
# page's signed token, as a citizen's phone sends it; it is stored with its 17 tally cells.
# Rate limits are lifted by configuration for the load generator's single address
# (SIPAS_SUBMIT_PER_MINUTE), and min_fill_seconds is 1 so that one token serves the run.
# Prints, per figure: rate, p50/p99, non-2xx, and rows stored (which must equal the 2xx).
#   scripts/bench-ingest.sh [rounds] [seconds per run]      (default 3 rounds of 10 s)
# PostgreSQL: PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); a database
# sipas_ingest is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
rounds="${1:-3}"
seconds="${2:-10}"
pg="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_bench_db="${pg%/*}/sipas_ingest"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$pg" -qc 'DROP DATABASE IF EXISTS sipas_ingest WITH (FORCE)' >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --quiet --bin sipas --bin sipas-bench
bin="$CARGO_TARGET_DIR/release"

serve() { # database url, port
  SIPAS_DATABASE_URL="$1" SIPAS_PORT="$2" SIPAS_LOG=warn SIPAS_COOKIE_SECURE=false \
    SIPAS_SUBMIT_PER_MINUTE=1000000000 SIPAS_MIN_FILL_SECONDS=1 "$bin/sipas" serve >>"$work/serve-$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$2/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the service on port $2 did not start"; cat "$work/serve-$2.log"; exit 1
}

sqlite_url="sqlite://$work/ingest.db"
"$bin/sipas-bench" --database-url "$sqlite_url" --responses 0 --mode load >/dev/null
serve "$sqlite_url" 18601
have_pg=false
if psql "$pg" -Atqc 'select 1' >/dev/null 2>&1; then
  psql "$pg" -qc 'DROP DATABASE IF EXISTS sipas_ingest WITH (FORCE)' -qc 'CREATE DATABASE sipas_ingest'
  "$bin/sipas-bench" --database-url "$pg_bench_db" --responses 0 --mode load >/dev/null
  "$bin/sipas-bench" --database-url "$pg_bench_db" --mode pgbench-script >"$work/ceiling.sql"
  serve "$pg_bench_db" 18602
  # Two more instances of the same service on the same database, for the instances figures
  # (on this one machine they share its two cores with the database and the load).
  serve "$pg_bench_db" 18603
  serve "$pg_bench_db" 18604
  have_pg=true
else
  echo "PostgreSQL not reachable at $pg: only SQLite is measured"
fi

echo "ingest benchmark: $rounds rounds of ${seconds} s per figure; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
record() { printf '%s|%s\n' "$1" "$2" >>"$results"; echo "  $1: $2"; }
# The machine's CPU per unit of work (all processes: load, service, database), in µs of one
# core, from /proc/stat around each run; and the service processes' own share of it.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
service_cpu() { awk '{t += $14 + $15} END {print t}' $(printf '/proc/%s/stat ' "${pids[@]}"); }
tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu_mark() { cpu0=$(busy); own0=$(service_cpu); }
cpu_per() { # units of work done since cpu_mark
  local n="$1" b o
  b=$(($(busy) - cpu0)); o=$(($(service_cpu) - own0))
  [ "${n:-0}" -gt 0 ] || { echo "cpu n/a"; return; }
  echo "cpu $((b * tick_us / n)) us, service $((o * tick_us / n)) us"
}
served() { # runs the load generator, prints its line and the CPU per 201
  local out; cpu_mark
  out="$("$bin/sipas-bench" "$@" | sed 's/^[^:]*: //')"
  echo "$out; $(cpu_per "$(sed -n 's/.*; 201 \([0-9]*\).*/\1/p' <<<"$out")")"
}
for round in $(seq "$rounds"); do
  echo "round $round"
  for c in 8 32; do
    if $have_pg; then
      cpu_mark
      out="$(pgbench -n -M prepared -c "$c" -j 2 -T "$seconds" -f "$work/ceiling.sql" "$pg_bench_db" 2>&1)"
      tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)"
      lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out" | head -1)"
      tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
      record "pg-ceiling-$c" "$tps/s latency average $lat ms; $(cpu_per "$tx")"
      record "pg-service-$c" "$(served --database-url "$pg_bench_db" --mode ingest \
        --target 127.0.0.1:18602 --connections "$c" --seconds "$seconds")"
    fi
  done
  if $have_pg; then
    for n in 2 3; do
      targets="$(seq -s, -f '127.0.0.1:%g' 18602 $((18601 + n)))"
      record "pg-instances-$n" "$(served --database-url "$pg_bench_db" --mode ingest \
        --target "$targets" --connections 32 --seconds "$seconds")"
    done
  fi
  record "sqlite-ceiling" "$(served --database-url "$sqlite_url" --mode sqlite-ceiling \
    --seconds "$seconds")"
  for c in 8 32; do
    record "sqlite-service-$c" "$(served --database-url "$sqlite_url" --mode ingest \
      --target 127.0.0.1:18601 --connections "$c" --seconds "$seconds")"
  done
done

echo
echo "medians over $rounds rounds (load average now: $(cut -d' ' -f1-3 /proc/loadavg)); RSS of the services:"
for p in "${pids[@]}"; do
  echo "  pid $p: $(awk '/VmHWM/ {printf "peak %.0f MiB", $2/1024}' "/proc/$p/status" 2>/dev/null)"
done
python3 - "$results" <<'EOF'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, text = line.rstrip("\n").split("|", 1)
    runs.setdefault(name, []).append(text)
def num(text, pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else float("nan")
def med(name, pattern):
    return statistics.median(num(t, pattern) for t in runs[name])
def service(name):
    rate, p50, p99 = med(name, r"^([0-9.]+)/s"), med(name, r"p50 ([0-9.]+)"), med(name, r"p99 ([0-9.]+)")
    bad = sum(num(t, r"non-2xx ([0-9]+)") for t in runs[name])
    ok = sum(num(t, r"201 ([0-9]+)") + num(t, r"other 2xx ([0-9]+)") for t in runs[name])
    stored = sum(num(t, r"rows stored ([0-9]+)") for t in runs[name])
    return rate, p50, p99, bad, ok, stored
print(f"{'figure':34} {'service/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} {'2xx = stored':>16} {'ceiling/s':>10} {'ratio':>6} {'cpu us':>7} {'of it service':>13} {'ceiling cpu us':>14}")
rows = []
for c in (8, 32):
    if f"pg-service-{c}" in runs:
        rows.append((f"PostgreSQL, {c} connections", f"pg-service-{c}", f"pg-ceiling-{c}", "pgbench"))
for n in (2, 3):
    if f"pg-instances-{n}" in runs:
        rows.append((f"PostgreSQL, 32 conns, {n} instances", f"pg-instances-{n}", "pg-ceiling-32", "pgbench"))
for c in (8, 32):
    rows.append((f"SQLite, {c} connections", f"sqlite-service-{c}", "sqlite-ceiling", "raw loop"))
for label, s, ceiling, _ in rows:
    rate, p50, p99, bad, ok, stored = service(s)
    top = med(ceiling, r"^([0-9.]+)/s")
    same = "yes" if ok == stored else "NO"
    cpu, own, top_cpu = med(s, r"cpu ([0-9]+) us"), med(s, r"service ([0-9]+) us"), med(ceiling, r"cpu ([0-9]+) us")
    print(f"{label:34} {rate:10.0f} {p50:7.1f} {p99:7.1f} {bad:8.0f} {ok:7.0f} {stored:7.0f} {same:>3} {top:10.0f} {rate / top:6.2f} {cpu:7.0f} {own:13.0f} {top_cpu:14.0f}")
print("cpu us: the machine's CPU time per stored submission (or ceiling transaction), in µs of one core, all")
print("processes counted (load generator, service, database, kernel); 'of it service': the sipas processes' own.")
EOF
