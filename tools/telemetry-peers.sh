#!/usr/bin/env bash
# The real readers rlaif's telemetry tests check against: TensorBoard's event reader (PyPI's
# tensorboard), Prometheus and headless Chromium (Debian's prometheus and chromium).
#   tools/telemetry-peers.sh install                     installs what is missing (bounded)
#   tools/telemetry-peers.sh prometheus-start DIR PORT TARGET
#                            Prometheus on 127.0.0.1:PORT scraping TARGET (host:port) every 1 s,
#                            its files in DIR; waits (bounded) for its first scrape
#   tools/telemetry-peers.sh prometheus-stop DIR       stops it and removes DIR
set -euo pipefail

source "$(dirname "$0")/close-inherited.sh"

case "${1:-}" in
install)
  missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v chromium >/dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "telemetry-peers: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    timeout 300 "${sudo_cmd[@]}" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
  fi
  if ! python3 -c "import tensorboard" 2>/dev/null; then
    echo "telemetry-peers: installing tensorboard (pip)"
    timeout 600 python3 -m pip install -q tensorboard
  fi
  ;;
prometheus-start)
  close_inherited
  dir=$2 port=$3 target=$4
  mkdir -p "$dir/data"
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: rlaif
    static_configs:
      - targets: ["$target"]
YAML
  nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$dir/prometheus.pid"
  # Ready, and scraping: target discovery reaches the scrapers only after a few seconds, so
  # wait for the first scrape of the target (up or not) before the caller starts it.
  for _ in $(seq 120); do
    if python3 - "http://127.0.0.1:$port/api/v1/query?query=up" >/dev/null 2>&1 <<'PY'; then exit 0; fi
import json, sys, urllib.request
body = json.load(urllib.request.urlopen(sys.argv[1], timeout=1))
sys.exit(0 if body["data"]["result"] else 1)
PY
    sleep 0.25
  done
  echo "telemetry-peers: Prometheus did not scrape within 30 s:" >&2
  tail -20 "$dir/prometheus.log" >&2
  exit 1
  ;;
prometheus-stop)
  dir=$2
  if [ -f "$dir/prometheus.pid" ]; then
    pid=$(cat "$dir/prometheus.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 install | prometheus-start DIR PORT TARGET | prometheus-stop DIR" >&2
  exit 2
  ;;
esac
