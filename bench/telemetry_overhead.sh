#!/usr/bin/env bash
# What telemetry costs a run: the default run (cluster.yaml) with TensorBoard files, report.html
# and Prometheus /metrics scraped every second, against the same run with all three off,
# alternated ROUNDS times (default 2) so machine noise falls on both. Prints each wall time and
# the ratio of the sums. Weights must match: telemetry only watches.
#   bash bench/telemetry_overhead.sh [ROUNDS] [RLAIF_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
rlaif=${2:-.build/release/rlaif}
[ -x "$rlaif" ] || swift build -c release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
on=(--set coordinator.tensorboard=true --set coordinator.report=true
  --set "coordinator.metrics_bind=tcp://127.0.0.1:$port")
off=(--set coordinator.tensorboard=false --set coordinator.report=false --set coordinator.metrics_bind=)
scrape() {
  python3 - "$port" >/dev/null 2>&1 <<'PY' &
import sys, time, urllib.request
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=1).read()
    except OSError:
        pass
    time.sleep(1)
PY
  echo $!
}
total_on=0 total_off=0
for round in $(seq "$rounds"); do
  for mode in off on; do
    args=("${off[@]}")
    scraper=""
    if [ "$mode" = on ]; then args=("${on[@]}"); scraper=$(scrape); fi
    start=$(date +%s.%N)
    "$rlaif" launch cluster.yaml --run-dir "$out/$mode" --fresh --quiet "${args[@]}" >"$out/$mode.log"
    end=$(date +%s.%N)
    [ -n "$scraper" ] && kill "$scraper"
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    checksum=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["weights_checksum"])' "$out/$mode/summary.json")
    echo "round $round $mode: $seconds s  weights $checksum"
    if [ "$mode" = on ]; then
      total_on=$(awk -v a="$total_on" -v b="$seconds" 'BEGIN { print a + b }')
    else
      total_off=$(awk -v a="$total_off" -v b="$seconds" 'BEGIN { print a + b }')
    fi
  done
done
awk -v a="$total_on" -v b="$total_off" 'BEGIN { printf "telemetry on / off: %.4f (%.1f s / %.1f s)\n", a / b, a, b }'
