#!/usr/bin/env bash
# Replica benchmark: the rankings of 280 communes and the microdata export (CSV, XLSX) read
# where the service reads figures, first with the primary alone, then with a streaming
# replica as read_database_url. Starts its own primary and a `pg_basebackup -R` replica of it
# (PostgreSQL's server programs under /usr/lib/postgresql, run as the postgres user), loads
# N responses (default 100,000) into the primary, and prints each figure with the number of
# statements that read responses or tallies on each server meanwhile (both log every
# statement). fsync is off on both: this measures reads.
#   scripts/bench-replica.sh [responses]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
n="${1:-100000}"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
base="$(as_pg mktemp -d /tmp/sipas-bench-replica.XXXXXX)"
primary_port=55431
replica_port=55432
cleanup() {
  for which in replica primary; do
    as_pg "$pgbin/pg_ctl" -D "$base/$which" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$base"
}
trap cleanup EXIT
start() { # which port [more settings]
  as_pg "$pgbin/pg_ctl" -D "$base/$1" -w -t 60 -l "$base/$1.log" -o "-c listen_addresses=127.0.0.1 -c port=$2 \
    -c unix_socket_directories=$base -c fsync=off -c hot_standby_feedback=on -c max_connections=60 ${3:-}" \
    start >/dev/null
}
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --quiet --bin sipas-bench
bench="$CARGO_TARGET_DIR/release/sipas-bench"

as_pg "$pgbin/initdb" -D "$base/primary" -U postgres -A trust -E UTF8 --locale=C >/dev/null
start primary "$primary_port"
as_pg "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -R -X stream -c fast -D "$base/replica"
start replica "$replica_port" "-c log_statement=all"
primary="postgres://postgres@127.0.0.1:$primary_port/postgres"
replica="postgres://postgres@127.0.0.1:$replica_port/postgres"

echo "replica benchmark: $n responses; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" --database-url "$primary" --responses "$n" --mode load | sed 's/^/  /'
# Every statement logged from here on (not the load's inserts).
psql -q "$primary" -c "ALTER SYSTEM SET log_statement = 'all'" -c 'SELECT pg_reload_conf()' >/dev/null
# Statements that read figures' tables, in a server's log so far.
reads_in() { grep -E 'statement:|execute ' "$base/$1.log" | grep -E -c 'FROM "?(tallies|responses)' || true; }
measure() { # label, then sipas-bench arguments
  local label="$1"; shift
  local p0 r0
  p0=$(reads_in primary); r0=$(reads_in replica)
  echo "$label:"
  "$bench" --database-url "$primary" "$@" --mode reads --reuse | sed 's/^/  /'
  echo "  statements reading responses or tallies: primary $(( $(reads_in primary) - p0 )), replica $(( $(reads_in replica) - r0 ))"
}
measure "primary alone"
measure "with read_database_url = the replica" --read-database-url "$replica"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
