#!/usr/bin/env bash
# A one-node Slurm on this machine for rlaif's Slurm test: munge, slurmctld and slurmd from
# Debian's slurm-wlm, configured under $RLAIF_SLURM_ROOT (default /tmp/rlaif-slurm), as root.
#   tools/slurm-local.sh start   installs slurm-wlm and munge if missing, starts the daemons,
#                                waits (bounded) for the node; prints the SLURM_CONF to use
#   tools/slurm-local.sh stop    stops what start started and removes its files
set -euo pipefail
root=${RLAIF_SLURM_ROOT:-/tmp/rlaif-slurm}
conf=$root/slurm.conf

# Stops the daemons named by pid files: TERM to all at once (each takes 1-2 s to exit), then
# KILL to any still there after 10 s.
stop_pidfiles() {
  local pids=() pid
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 200); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 1 ] || return 0
    sleep 0.05
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

source "$(dirname "$0")/close-inherited.sh"

case "${1:-}" in
start)
  close_inherited
  [ "$(id -u)" -eq 0 ] || { echo "slurm-local: needs root (slurmd runs jobs as their user)" >&2; exit 1; }
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm-local: installing slurm-wlm and munge"
    timeout 300 apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q slurm-wlm munge >/dev/null
  fi
  "$0" stop >/dev/null 2>&1 || true
  mkdir -p "$root"/{state,spool,log,run} /run/munge
  host=$(hostname -s)
  mem=$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)
  cat > "$conf" <<CONF
ClusterName=rlaif-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool
SlurmctldPidFile=$root/run/slurmctld.pid
SlurmdPidFile=$root/run/slurmd.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
# A requeued job with a begin time is started by a periodic pass, not an event: pass every second.
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
KillWait=30
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  # munge authenticates every Slurm message: one must answer before the daemons start.
  if ! timeout 5 munge -n </dev/null >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || mungekey --create --force >/dev/null 2>&1 || true
    munged --force --socket=/run/munge/munge.socket.2 --pid-file="$root/run/munged.pid" \
      </dev/null >"$root/log/munged.out" 2>&1
    for _ in $(seq 20); do timeout 5 munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.25; done
  fi
  # Daemons must not hold the caller's stdout: a test reading it to its end would wait for ever.
  SLURM_CONF=$conf slurmctld </dev/null >"$root/log/slurmctld.out" 2>&1
  SLURM_CONF=$conf slurmd </dev/null >"$root/log/slurmd.out" 2>&1
  for _ in $(seq 60); do
    if SLURM_CONF=$conf timeout 3 sinfo -h -o %T 2>/dev/null | grep -q idle; then echo "SLURM_CONF=$conf"; exit 0; fi
    sleep 0.5
  done
  echo "slurm-local: the node did not come up" >&2
  tail -n 20 "$root"/log/*.log >&2 || true
  "$0" stop
  exit 1
  ;;
stop)
  stop_pidfiles "$root/run/slurmd.pid" "$root/run/slurmctld.pid" "$root/run/munged.pid"
  pkill -f "munged --force --socket=/run/munge/munge.socket.2 --pid-file=$root/" 2>/dev/null || true
  rm -rf "$root"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
