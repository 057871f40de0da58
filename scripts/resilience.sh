#!/usr/bin/env bash
# Resilience suite: kill -9 ledger (SQLite and PostgreSQL), PostgreSQL stop/start mid-load,
# SQLite write lock by another process, slow exports against the pool, SIGTERM drain,
# slowloris. Prints a table of figures; exits 1 when a guarantee fails.
#   scripts/resilience.sh             # full run (20 kills per database; under 15 minutes)
#   scripts/resilience.sh --short     # CI size (4 kills; under 4 minutes)
#   scripts/resilience.sh --release   # against the release build
# SIPAS_BIN=path uses that binary instead of building one. Other arguments go to
# scripts/resilience.py (--seed N, --only 1,3). PostgreSQL runs as a private cluster on a
# free port (initdb as the postgres user: root, or sudo -u postgres; else that part is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"

profile=debug
args=()
for a in "$@"; do
  case "$a" in
    --release) profile=release ;;
    *) args+=("$a") ;;
  esac
done

if [[ -n "${SIPAS_BIN:-}" ]]; then
  bin="$SIPAS_BIN"
else
  if [[ $profile == release ]]; then
    cargo build --locked --quiet --release --bin sipas
  else
    cargo build --locked --quiet --bin sipas
  fi
  bin="$CARGO_TARGET_DIR/$profile/sipas"
fi
bin="$(readlink -f "$bin")"

as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

work="$(mktemp -d -t sipas-resilience.XXXXXX)"
py=""
# Whatever happens (failure, Ctrl-C, TERM): the Python side is asked to clean up first, then
# anything it left is removed here: its services (by the pids it noted), the private cluster.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $py ]] && kill -0 "$py" 2>/dev/null; then
    kill -TERM "$py" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$py" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py" 2>/dev/null || true
  fi
  if [[ -f $work/pids ]]; then
    while read -r pid; do
      # Only a process still running our binary: a pid may have been reused.
      if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$bin"* ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done <"$work/pids"
  fi
  if [[ -f $work/pgbase ]]; then
    base="$(cat "$work/pgbase")"
    if [[ -f $base/data/postmaster.pid ]]; then
      pgbin="${SIPAS_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
      as_pg "$pgbin/pg_ctl" -D "$base/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    as_pg rm -rf "$base" || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
# In the background so that a signal reaches the trap at once instead of after Python ends.
python3 scripts/resilience.py --bin "$bin" --work "$work" "${args[@]}" &
py=$!
set +e
wait "$py"
rc=$?
set -e
py=""
echo "resilience suite: $((SECONDS - start)) s in all, exit $rc"
exit "$rc"
