#!/usr/bin/env bash
# Survey page benchmark: GET /s/{unit} (gzip, as phones ask; the 285 units of the benchmark
# province at random) against GET /healthz on the same service, interleaved, in rounds, with
# 32 kept-alive connections; prints requests/s, p50/p99 and the ratio of the medians.
#   scripts/bench-pages.sh [rounds] [seconds per run]     (default 3 rounds of 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
rounds="${1:-3}"
seconds="${2:-10}"
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --quiet --bin sipas --bin sipas-bench
bin="$CARGO_TARGET_DIR/release"
url="sqlite://$work/pages.db"
"$bin/sipas-bench" --database-url "$url" --responses 0 --mode load >/dev/null
SIPAS_DATABASE_URL="$url" SIPAS_PORT=18603 SIPAS_LOG=warn SIPAS_COOKIE_SECURE=false "$bin/sipas" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:18603/readyz >/dev/null && break; sleep 0.1; done
paths="$(printf '/s/BTR.S%02d,' 1 2 3 4 5)$(for h in $(seq 1 14); do for x in $(seq 1 20); do printf '/s/BTR.H%02d.X%02d,' "$h" "$x"; done; done)"
paths="${paths%,}"
echo "survey page benchmark: $rounds rounds of ${seconds} s, 32 connections; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  "$bin/sipas-bench" --database-url "$url" --mode get --target 127.0.0.1:18603 --connections 32 --seconds "$seconds" --paths /healthz | tee -a "$work/healthz"
  "$bin/sipas-bench" --database-url "$url" --mode get --target 127.0.0.1:18603 --connections 32 --seconds "$seconds" --paths "$paths" | tee -a "$work/pages"
done
echo "peak memory of the service: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status")"
python3 - "$work/healthz" "$work/pages" <<'PY'
import re, statistics, sys
def rates(path):
    return [float(re.search(r": ([0-9.]+)/s", l).group(1)) for l in open(path)]
h, p = statistics.median(rates(sys.argv[1])), statistics.median(rates(sys.argv[2]))
print(f"medians: /healthz {h:.0f}/s, survey page {p:.0f}/s, ratio {p / h:.2f} (goal 0.30)")
PY
